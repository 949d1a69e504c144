// Training data: cases from the cache, the ROI every sample is cut around, samples with
// augmentation, and the left/right flip with its label swap.
#pragma once
#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/labels.hpp"
#include "core/volume.hpp"
#include "harmonize/roi.hpp"
#include "plan/plans.hpp"

namespace aneura {

const std::array<std::string, 4>& modality_names();  // CTA, MRA, MRI T2, MRI T1post
int modality_index(const std::string& name);          // -1 when unknown (e.g. unlabelled sources)

struct TrainCase {
  std::string id, modality;
  int modality_id = -1;
  std::array<int, kNumLabels> labels{};
  bool labelled = false, has_vessels = false;
  Volume<float> image;        // channels stacked along t
  Volume<float> label_maps;   // [0] vessels (cowseg 0..13), [1] aneurysm (column + 1)
  std::vector<std::pair<Vec3, int>> points;  // world LPS mm, location column
  RoiAnchor roi_anchor;       // case.json's (preprocess) when made by this finder version, else find_roi_anchor of the image
  Vec3 roi_centre{0, 0, 0};   // world LPS mm: the anchor plus the default offsets, or the learned ones (CaseStore)
  float background = 0;       // the image's minimum: the value outside the field of view
};

// Reads WORK/cases/<id>/{case.json,image.nii,labels.nii}. Errors name the file.
TrainCase load_case(const std::filesystem::path& work, const std::string& id);

// Windows. A configuration whose patch covers its ROI (patch x target spacing >= the ROI, within
// 10 %) sees the whole ROI at once, resized to the patch. One whose patch is smaller is windowed:
// training cuts patches (windows) at the target spacing inside the ROI, and prediction slides
// overlapping windows over the whole ROI (src/train/trainer.hpp roi_forward).
bool windowed(const Configuration& cfg);
// mm between voxels of a window: the target spacing when windowed, else ROI / patch.
Vec3 window_spacing(const Configuration& cfg);
// A window: patch_size voxels at window_spacing x `scale` around `centre` (world LPS), axes
// `direction` (RAS: diag(-1, -1, 1)).
Geometry window_grid(const Vec3& centre, const Configuration& cfg, const Mat3& direction, double scale);
// The whole ROI around `centre` on the window spacing, RAS axes (= the window when not windowed).
Geometry roi_grid(const Vec3& centre, const Configuration& cfg);
// First voxel of each window along the ROI grid (`roi` voxels): neighbours share at least
// `overlap` of a patch (the stride is at most patch x (1 - overlap)), the first starts at 0 and the
// last ends at the ROI's end; symmetric, so a left-right mirrored ROI is covered by the mirrored windows.
std::vector<std::array<int64_t, 3>> window_starts(const std::array<int64_t, 3>& roi, const std::array<int, 3>& patch,
                                                  double overlap = 0.5);

// Blob features (configuration blob_features): the multi-scale Hessian objectness of ITK for
// 0-dimensional objects (blobs; Frangi's measure, sigma 1.5 and 3 mm), bright and dark, of the first
// image channel [X, Y, Z] sampled at `spacing` mm -> [2, X, Y, Z]. An aneurysm is a blob on a tube:
// the measure is high on it and low along vessels (tubes) and on flat tissue; dark blobs are the
// flow voids of T2. Classic aneurysm CAD's "dot enhancement filter", given to the network as input.
constexpr int kBlobChannels = 2;
// `threads`: ITK work units (1 in loader threads; 0: ITK's default, every core).
torch::Tensor blob_channels(const torch::Tensor& image, const Vec3& spacing, int threads = 1);
// Image channels + blob channels (when configured) + coordinate channels: the network's input
// channel count for cases of `image_channels` channels.
int input_channels(const Configuration& cfg, int image_channels);

// The network sees, after the image (and blob) channels, 3 coordinate channels: the voxel's world LPS
// position minus the ROI centre, / 64 mm. They tell a window where it lies (locations are
// anatomical), and are part of every input (kCoordinateChannels).
constexpr int kCoordinateChannels = 3;
torch::Tensor coordinate_channels(const Geometry& grid, const Vec3& roi_centre);  // [3, X, Y, Z]
// The network input from image channels [C, X, Y, Z] sampled on `grid`: + blob channels (when
// configured; `blob_threads` ITK work units, 0 = all cores) + coordinate channels.
torch::Tensor network_input(const torch::Tensor& image, const Geometry& grid, const Vec3& roi_centre, const Configuration& cfg,
                            int blob_threads);
// Left-right mirror of a network input [..., C, X, Y, Z] (image + coordinate channels): flips X
// and negates the L coordinate, so the mirrored input is that of a mirrored head.
torch::Tensor mirror_input(const torch::Tensor& x);

// A volume as a tensor [C, X, Y, Z] (a copy).
torch::Tensor volume_to_tensor(const Volume<float>& v);

// The network input for prediction: the unaugmented ROI around `centre` (resized to the patch
// when not windowed) with its coordinate channels, as make_sample cuts it without augmentation.
// `outside`: the value outside the image (its minimum when not given).
struct RoiInput {
  torch::Tensor x;  // [input_channels, X, Y, Z]; tensor index (x, y, z) = grid index
  Geometry grid;
};
RoiInput roi_input(const Volume<float>& image, const Vec3& centre, const Configuration& cfg,
                   std::optional<float> outside = std::nullopt, int blob_threads = 0);

struct Sample {
  torch::Tensor image;     // [input_channels, X, Y, Z] float: image, blob (when configured), coordinate channels
  torch::Tensor vessel;    // [X, Y, Z] long, 0..13
  torch::Tensor aneurysm;  // [X, Y, Z] long, 0 background, else location column + 1
  torch::Tensor labels;    // [14] float
  int64_t modality = -1;   // -1: unknown (ignored by the loss)
  bool has_vessels = false, labelled = false;
};

struct AugmentOptions {
  bool enabled = true;
  double jitter_mm = 6, rotate_deg = 10, scale = 0.1, flip_probability = 0.5;
  double focus_on_aneurysm = 0.5;  // probability of centring a positive case's sample near a point
  double focus_on_candidate = 0.5;  // ROI windows not focused on a point: probability of centring on a
                                    // blob candidate (hard negatives; make_roi_sample)
  double roi_spatial_probability = 0.5;  // make_roi_sample: probability of a rotated (rotate_deg) and
                                        // scaled (scale) window instead of a plain crop
  double coordinate_jitter_mm = 8;  // sd of a per-sample shift (mm, per axis) of the coordinate channels
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
// aneurysm focus, small rotation and scaling, left-right flip, intensity scale/shift, gamma and
// noise.
Sample make_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug);

// A windowed configuration's training case prepared once per run: its whole ROI input (as
// prediction makes it: roi_input, blob and coordinate channels included) and label maps on the ROI
// grid, so that a training window is a crop of them, or (roi_spatial_probability) a rotated and
// scaled resampling of them; either is cheap, so a run sees several times more windows in the same time.
constexpr int kRoiCandidates = 16;
struct RoiCase {
  torch::Tensor x;                              // [input_channels, X, Y, Z] float
  torch::Tensor vessel, aneurysm;               // [X, Y, Z] uint8 (values as in Sample)
  std::vector<std::pair<std::array<double, 3>, int>> points;  // ROI voxel index (continuous), column
  std::vector<std::array<int64_t, 3>> candidates;  // the strongest bright-blob maxima (voxel index), up to kRoiCandidates
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

// The left/right swap tables as index tensors (long): column -> twin column (14), and aneurysm
// map value (0 background, column + 1) -> the twin's value (14), cowseg value -> its twin (14).
const torch::Tensor& label_twin_lut();
const torch::Tensor& aneurysm_value_twin_lut();
const torch::Tensor& cowseg_twin_lut();

// Left-right flip of a sample (patch axis 0 is R-L): mirrors the maps, swaps the twin columns of
// the labels, the left/right cowseg values and the aneurysm map's location values (RSNA.md). Applying it twice is the identity.
void flip_left_right(Sample& s);

}  // namespace aneura
