// What the network sees: the ROI and its windows, the input channels (image, blob features,
// coordinates), the left/right mirror of an input and the label swap tables that go with it.
// Training cuts its samples from these and prediction builds its inputs with them, so both see
// exactly the same input for the same ROI.
#pragma once
#include <torch/torch.h>

#include <array>
#include <optional>
#include <vector>

#include "core/geometry.hpp"
#include "core/volume.hpp"
#include "plan/plans.hpp"

namespace aneura {

// The axes of every ROI and window grid: RAS voxel order (diag(-1, -1, 1) in LPS world space).
inline const Mat3 kRasDirection{{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};

// Windows. A configuration whose patch covers its ROI (patch x target spacing >= the ROI, within
// 10 %) sees the whole ROI at once, resized to the patch. One whose patch is smaller is windowed:
// training cuts patches (windows) at the target spacing inside the ROI, and prediction slides
// overlapping windows over the whole ROI (src/infer/sliding_window.hpp roi_forward).
bool windowed(const Configuration& cfg);
// A candidate stage that finds its own candidates (candidate_source "dots"): no coarse model.
bool finds_own_candidates(const Configuration& cfg);
// mm between voxels of a window: the target spacing when windowed, else ROI / patch.
Vec3 window_spacing(const Configuration& cfg);
// A window: patch_size voxels at window_spacing x `scale` around `centre` (world LPS), axes
// `direction` (kRasDirection unrotated).
Geometry window_grid(const Vec3& centre, const Configuration& cfg, const Mat3& direction, double scale);
// The whole ROI around `centre` on the window spacing, RAS axes (= the window when not windowed).
Geometry roi_grid(const Vec3& centre, const Configuration& cfg);
// First voxel of each window along the ROI grid (`roi` voxels): neighbours share at least
// `overlap` of a patch (the stride is at most patch x (1 - overlap)), the first starts at 0 and the
// last ends at the ROI's end; symmetric, so a left-right mirrored ROI is covered by the mirrored windows.
std::vector<std::array<int64_t, 3>> window_starts(const std::array<int64_t, 3>& roi, const std::array<int, 3>& patch,
                                                  double overlap = 0.5);
// The windows of `starts` (window_starts) that look at `focus` (ROI voxel indices): for each focus
// point, the window whose centre is nearest to it along every axis; each window once, in the order
// of `starts`. A point mirrored left-right picks the mirrored window (the starts are symmetric).
std::vector<std::array<int64_t, 3>> focus_windows(const std::vector<std::array<int64_t, 3>>& starts,
                                                  const std::array<int, 3>& patch,
                                                  const std::vector<std::array<int64_t, 3>>& focus);
// Local maxima of one channel [X, Y, Z] (the largest value in their neighbourhood of `window` voxels
// a side, odd, and > 0), the strongest first, at most `max_count`.
std::vector<std::array<int64_t, 3>> channel_maxima(const torch::Tensor& f, int64_t max_count, int64_t window = 5);

// Blob features (configuration blob_features): the multi-scale Hessian objectness of ITK for
// 0-dimensional objects (blobs; Frangi's measure, sigma 1.5 and 3 mm), bright and dark, of the first
// image channel [X, Y, Z] sampled at `spacing` mm -> [2, X, Y, Z]. An aneurysm is a blob on a tube:
// the measure is high on it and low along vessels (tubes) and on flat tissue; dark blobs are the
// flow voids of T2. Classic aneurysm CAD's "dot enhancement filter", given to the network as input.
constexpr int kBlobChannels = 2;
// `threads`: ITK work units (1 in loader threads; 0: ITK's default, every core).
torch::Tensor blob_channels(const torch::Tensor& image, const Vec3& spacing, int threads = 1);
// The same through ITK's HessianToObjectnessMeasureImageFilter (one eigen analysis per voxel and
// channel, twice blob_channels' work): the reference blob_channels is tested and benchmarked against.
torch::Tensor blob_channels_itk(const torch::Tensor& image, const Vec3& spacing, int threads = 1);
// The dot-enhancement filter of classic aneurysm and nodule CAD (Li, Sone & Doi 2003): where the
// three Hessian eigenvalues are negative (a bright blob), |l3|^2 / |l1| (l1 the largest in magnitude,
// l3 the smallest; scale-normalised, the largest over sigma 0.6, 0.9, 1.3 and 1.8 mm: blobs of radius
// ~1-3 mm), of an image [X, Y, Z] sampled at `spacing` mm. High on a blob, low along a tube (l3 ~ 0)
// and on a plate. The Hessian by separable sampled Gaussian derivatives, its eigenvalues in closed
// form. `threads`: 0 = every core.
torch::Tensor dot_filter(const torch::Tensor& image, const Vec3& spacing, int threads = 0);
// f [X, Y, Z] (float) resized to `size` by trilinear interpolation, as LibTorch's interpolate
// (mode trilinear, align_corners false) computes it, in three separable passes; where `into` is
// given (float, of `size`), each of its voxels becomes the larger of itself and the result,
// which is not allocated.
torch::Tensor upsample_trilinear(const torch::Tensor& f, const std::array<int64_t, 3>& size,
                                 torch::Tensor into = torch::Tensor());
// The same through ITK's recursive Gaussian Hessian and eigen analysis: the reference dot_filter is
// tested and benchmarked against (`threads`: ITK work units).
torch::Tensor dot_filter_itk(const torch::Tensor& image, const Vec3& spacing, int threads = 0);
// A candidate stage's own candidates (configuration candidate_source "dots"): the local maxima of
// dot_filter (the largest within 2 mm) of the first image channel over the ROI around `centre`
// (roi_grid: the window spacing), strongest first, at most `count`: world LPS and filter value.
inline constexpr const char* kDotCandidatesVersion =
    "dots v2 (sampled Gaussian Hessian, sigma 0.6 0.9 1.3 1.8 mm, maxima 2 mm apart)";
struct DotCandidate {
  Vec3 world_lps;
  double strength = 0;
};
// `itk`: through dot_filter_itk (the reference, for bench/bench_dots).
std::vector<DotCandidate> dot_candidates(const Volume<float>& image, const Vec3& centre, const Configuration& cfg,
                                         int count, int threads = 0, bool itk = false);
// Image channels + blob channels (when configured) + coordinate channels: the network's input
// channel count for cases of `image_channels` channels (dualstream_2p5d: its window of slices).
int input_channels(const Configuration& cfg, int image_channels);
// Where a windowed prediction looks when the configuration's focus_windows is N > 0: the N strongest
// maxima of the bright-blob channel and the N strongest of the dark-blob channel of a network input
// [C, X, Y, Z] (the blob channels are those after the image channels). Aneurysms are blobs on
// vessels, bright in CTA/TOF/T1post, dark in T2; windows far from every blob are not run.
std::vector<std::array<int64_t, 3>> blob_focus(const torch::Tensor& x, int focus_per_channel);

// The network sees, after the image (and blob) channels, 3 coordinate channels: the voxel's world LPS
// position minus the ROI centre, / 64 mm. They tell a window where it lies (locations are
// anatomical), and are part of every input (kCoordinateChannels).
constexpr int kCoordinateChannels = 3;
torch::Tensor coordinate_channels(const Geometry& grid, const Vec3& roi_centre);  // [3, X, Y, Z]
// The network input from image channels [C, X, Y, Z] sampled on `grid`: + blob channels (when
// configured; `blob_threads` ITK work units, 0 = all cores) + coordinate channels.
torch::Tensor network_input(const torch::Tensor& image, const Geometry& grid, const Vec3& roi_centre,
                            const Configuration& cfg, int blob_threads);
// Left-right mirror of a network input [..., C, X, Y, Z] (image + coordinate channels): flips X
// and negates the L coordinate, so the mirrored input is that of a mirrored head.
torch::Tensor mirror_input(const torch::Tensor& x);

// A volume as a tensor [C, X, Y, Z] (a copy).
torch::Tensor volume_to_tensor(const Volume<float>& v);

// The value outside an image's field of view when it is resampled: its minimum (0 when empty).
float outside_value(const Volume<float>& image);
// The network input of `image` resampled (linear, `outside` beyond it) onto `grid`, coordinate
// channels relative to `roi_centre`: a ROI's (roi_input) or one window's (a candidate stage's).
torch::Tensor grid_input(const Volume<float>& image, const Geometry& grid, const Vec3& roi_centre,
                         const Configuration& cfg, float outside, int blob_threads);

// The network input for prediction: the unaugmented ROI around `centre` (resized to the patch
// when not windowed) with its coordinate channels, as make_sample cuts it without augmentation.
// `outside`: the value outside the image (its minimum when not given).
struct RoiInput {
  torch::Tensor x;  // [input_channels, X, Y, Z]; tensor index (x, y, z) = grid index
  Geometry grid;
};
RoiInput roi_input(const Volume<float>& image, const Vec3& centre, const Configuration& cfg,
                   std::optional<float> outside = std::nullopt, int blob_threads = 0);

// The left/right swap tables as index tensors (long): column -> twin column (14), and aneurysm
// map value (0 background, column + 1) -> the twin's value (14), cowseg value -> its twin (14).
const torch::Tensor& label_twin_lut();
const torch::Tensor& aneurysm_value_twin_lut();
const torch::Tensor& cowseg_twin_lut();

}  // namespace aneura
