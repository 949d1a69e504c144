// Training data: cases from the cache, the ROI every sample is cut around, samples with
// augmentation, and the left/right flip with its label swap.
#pragma once
#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/labels.hpp"
#include "core/volume.hpp"
#include "harmonize/roi.hpp"
#include "model/input.hpp"
#include "plan/plans.hpp"

namespace aneura {

struct TrainCase {
  std::string id, modality;
  int modality_id = -1;
  std::array<int, kNumLabels> labels{};
  bool labelled = false, has_vessels = false;
  Volume<float> image;       // channels stacked along t
  Volume<float> label_maps;  // [0] vessels (cowseg 0..13), [1] aneurysm (column + 1); empty: all background
  std::vector<std::pair<Vec3, int>> points;  // world LPS mm, location column
  RoiAnchor roi_anchor;  // case.json's (preprocess) when made by this finder version, else find_roi_anchor of the image
  Vec3 roi_centre{0, 0, 0};      // world LPS mm: the anchor plus the default offsets, or the learned ones (CaseStore)
  float background = 0;          // the image's minimum: the value outside the field of view
  std::vector<Vec3> candidates;  // a candidate stage's: the coarse model's heatmap maxima (world LPS)
  std::vector<double> candidate_weights;  // their sampling weights (mined); empty: uniform
};

// What a case's label maps hold: its labels (training), or for pre-training the voxels its
// defacing removed (deface.nii.gz) as the first map, 1 there, so that its windows carry them
// through every augmentation as they carry vessels (no deface file: all 0).
enum class CaseMaps { Labels, Deface };

// Reads WORK/cases/<id>/{case.json,image.nii,labels.nii or deface.nii.gz}. Errors name the file.
TrainCase load_case(const std::filesystem::path& work, const std::string& id, CaseMaps maps = CaseMaps::Labels);

struct Sample {
  torch::Tensor image;     // [input_channels, X, Y, Z] float: image, blob (when configured), coordinate channels
  torch::Tensor vessel;    // [X, Y, Z] long, 0..13
  torch::Tensor aneurysm;  // [X, Y, Z] long, 0 background, else location column + 1
  torch::Tensor labels;    // [14] float
  torch::Tensor coords;    // dualstream_2p5d: [2] float, the ROI stream's crop centre (0, 0: none)
  int64_t modality = -1;   // -1: unknown (ignored by the loss)
  bool has_vessels = false, labelled = false;
  int64_t candidate = -1;  // the index of the case's candidate the window was centred near; -1: none
};

struct AugmentOptions {
  bool enabled = true;
  double jitter_mm = 6, rotate_deg = 10, scale = 0.1, flip_probability = 0.5;
  double focus_on_aneurysm = 0.5;        // probability of centring a positive case's sample near a point
  double focus_on_candidate = 0.5;       // ROI windows not focused on a point: probability of centring on a
                                         // blob candidate (hard negatives; make_roi_sample)
  double roi_spatial_probability = 0.5;  // make_roi_sample: probability of a rotated (rotate_deg) and
                                         // scaled (scale) window instead of a plain crop
  double coordinate_jitter_mm = 8;       // sd of a per-sample shift (mm, per axis) of the coordinate channels
};

// Adds one N(0, sd_mm) shift per axis (/ 64 mm, as coordinate_channels scales) to the coordinate
// channels of a network input [..., C, X, Y, Z]: the network must not learn aneurysm positions to
// the millimetre from a few dozen training cases (the ROI centre is exact to ~1.4 mm on synthetic
// heads, so without it the coordinates let a 240 s run memorise where the training aneurysms lie).
// sd_mm <= 0: nothing, and no random draw.
void jitter_coordinates(torch::Tensor& x, double sd_mm, std::mt19937_64& rng);

// Intensity augmentation of image channels [C, X, Y, Z] (a new tensor): scale and shift, gamma on
// the min-max range (p 0.3), Gaussian noise (p 0.2).
torch::Tensor augment_intensity(const torch::Tensor& image, std::mt19937_64& rng);

// Cuts a sample (linear for the image, nearest for the labels). Not windowed: the plans' ROI
// around the case's ROI centre, resized to the patch; labels are the case's. Windowed: a window
// inside the ROI (without augmentation at the ROI centre); labels are the window's: a location
// is positive when one of its points lies inside the window (a positive case without points
// keeps the case's labels). With augmentation: centre jitter (windowed: anywhere in the ROI) or
// aneurysm focus (the point min(8 mm, a quarter of the window) inside), or, for a case with
// candidates, a candidate's focus with the same freedom (focus_on_candidate; the candidate drawn
// by pick_candidate), small rotation and scaling, left-right flip, intensity scale/shift, gamma
// and noise.
Sample make_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug);

// The candidate of `c` a uniform draw r in [0, 1) picks: uniformly, or in proportion to
// candidate_weights when there is one per candidate.
size_t pick_candidate(const TrainCase& c, double r);
// The same for `n` candidates with `weights`.
size_t pick_candidate(size_t n, const std::vector<double>& weights, double r);

// A dualstream_2p5d training window (model/dualstream.hpp; make_sample calls it for that model):
// image [2W, S, S] = the full stream's W slices then the ROI stream's, coords [2], labels: the
// locations whose aneurysm spheres reach into the window's slices (a positive case without label
// maps: the case's labels); vessel and aneurysm maps empty. The centre slice is near a point with
// probability focus_on_aneurysm, else anywhere (unaugmented: a point's slice, else the middle one).
// With augmentation, half the windows get a ROI stream cropped around a point in the window (or a
// random place: negatives get crops too) with the crop centre as coordinates; the others (and all
// unaugmented ones) the full window twice and zero coordinates, as at inference; intensity
// augmentation and a left-right mirror with the twin labels swapped.
Sample make_slice_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug);

// A windowed configuration's training case prepared once per run: its whole ROI input's image (and
// blob) channels (as prediction makes them: roi_input) and label maps on the ROI grid, so that a
// training window is a crop of them, or (roi_spatial_probability) a rotated and scaled resampling
// of them; either is cheap, so a run sees several times more windows in the same time. The
// coordinate channels are not kept (3 of the 4-6 channels: at 0.5 mm a ROI is ~15 M voxels): each
// window computes its own from the ROI grid and centre, the values prediction's input holds there.
constexpr int kRoiCandidates = 16;
struct RoiCase {
  torch::Tensor x;                                            // [image (+ blob) channels, X, Y, Z] float
  torch::Tensor vessel, aneurysm;                             // [X, Y, Z] uint8 (values as in Sample)
  Geometry grid;                                              // the ROI grid
  Vec3 centre{0, 0, 0};                                       // the ROI centre (world LPS) of the coordinates
  std::vector<std::pair<std::array<double, 3>, int>> points;  // ROI voxel index (continuous), column
  // Hard-negative candidates: the strongest bright-blob maxima (voxel index), up to kRoiCandidates; without
  // blob features, those of the blob measure on a ~2 mm copy of the image
  std::vector<std::array<int64_t, 3>> candidates;
  int image_channels = 1;
  std::array<int, kNumLabels> labels{};
  int64_t modality = -1;
  bool has_vessels = false, labelled = false;
};
// `threads`: ITK work units of the blob features (0: all cores).
RoiCase make_roi_case(const TrainCase& c, const Configuration& cfg, int threads = 0);
// A training window cut from a RoiCase: centred near a point (probability focus_on_aneurysm, with the
// point at least 8 mm inside), else on a blob candidate (focus_on_candidate), else anywhere; labels:
// the points inside the window (a positive case without points keeps the case's labels); rotation
// and scaling about the window centre (trilinear image, nearest maps, points moved with them),
// intensity augmentation on the image channels, left-right flip. Without augmentation: the ROI's centre window.
Sample make_roi_sample(const RoiCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug);

// A candidate stage's training case as crops around its sites, made once when the cases do not fit
// in memory (CaseStore::cache_sites): at fine spacing a case is tens of MB, read per window, while the
// windows a candidate stage learns from lie around its candidates and its aneurysm points. Each
// site's crop is a TrainCase of the case's own voxels (no resampling) within site_half_extent_mm of
// it, with the case's points, labels and ROI centre, the site as its only candidate, and its label
// maps only where they hold a label; a window cut from it equals the window cut from the whole case.
struct SiteCase {
  std::vector<std::shared_ptr<const TrainCase>> sites;  // the candidates' crops, then the points'
  size_t candidates = 0;                                // how many of `sites` are candidates
  std::vector<double> candidate_weights;                // mined (pick_candidate's); empty: uniform
  size_t bytes = 0;                                     // the crops' voxels
};

// How far (mm, along each world axis) from its centre a window focused on a site can reach: the
// focus jitter plus the half window, rotated (rotate_deg about each axis, |R| row sums <= 1 + 2 sin)
// and scaled (1 + scale).
double site_half_extent_mm(const Configuration& cfg, const AugmentOptions& aug);

// The crops of `c`'s candidates and points; a case with neither gets one site at its ROI centre.
SiteCase make_site_case(const TrainCase& c, double half_extent_mm);

// A training window of a SiteCase: with probability focus_on_aneurysm a point's crop (when the case
// has points), else a candidate's (pick_candidate); then make_sample on that crop, focused on its
// site. Needs augmentation (an unaugmented window is the ROI centre's, not in a crop).
Sample make_site_sample(const SiteCase& s, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug);

// Left-right flip of a sample (patch axis 0 is R-L): mirrors the maps, swaps the twin columns of
// the labels, the left/right cowseg values and the aneurysm map's location values (the twin columns of
// core/labels.hpp). Applying it twice is the identity.
void flip_left_right(Sample& s);

}  // namespace aneura
