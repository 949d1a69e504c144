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
  Vec3 roi_centre{0, 0, 0};   // world LPS mm
  float background = 0;       // the image's minimum: the value outside the field of view
};

// Reads WORK/cases/<id>/{case.json,image.nii,labels.nii}. Errors name the file.
TrainCase load_case(const std::filesystem::path& work, const std::string& id);

// ROI finder (no labels needed, so it runs at prediction time): the Circle of Willis sits on the
// head's left-right and anterior-posterior centre line; along S it is taken as the slab centre
// for slabs shorter than 110 mm (MRA slabs are centred on it), 78 mm below the vertex when the
// head's top is inside the field of view, else 60 mm below the top of the field of view.
// Works on the harmonized case image (any modality, any source orientation: the case is RAS).
Vec3 find_roi_centre(const Volume<float>& image);

// The ROI grid: patch_size voxels spanning roi_mm around `centre` (world LPS), axes `direction`
// (RAS: diag(-1, -1, 1)), spacing scaled by `scale`.
Geometry roi_grid(const Vec3& centre, const Configuration& cfg, const Mat3& direction, double scale);
// A volume as a tensor [C, X, Y, Z] (a copy).
torch::Tensor volume_to_tensor(const Volume<float>& v);
// The network input for prediction: the unaugmented ROI around `centre`, as make_sample cuts it
// without augmentation; `grid` receives the ROI grid (tensor index (x, y, z) = grid index).
// `outside`: the value outside the image (its minimum when not given).
torch::Tensor roi_input(const Volume<float>& image, const Vec3& centre, const Configuration& cfg, Geometry* grid = nullptr,
                        std::optional<float> outside = std::nullopt);

struct Sample {
  torch::Tensor image;     // [C, X, Y, Z] float
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
};

// Cuts the plans' ROI around the case's ROI centre, resized to the patch (linear for the image,
// nearest for the labels); with augmentation: centre jitter or aneurysm focus, small rotation and
// scaling, left-right flip, intensity scale/shift, gamma and noise.
Sample make_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug);

// The left/right swap tables as index tensors (long): column -> twin column (14), and aneurysm
// map value (0 background, column + 1) -> the twin's value (14).
const torch::Tensor& label_twin_lut();
const torch::Tensor& aneurysm_value_twin_lut();

// Left-right flip of a sample (patch axis 0 is R-L): mirrors the maps, swaps the twin columns of
// the labels, the left/right cowseg values and the aneurysm map's location values (RSNA.md). Applying it twice is the identity.
void flip_left_right(Sample& s);

}  // namespace aneura
