// The seeds' 2.5D baseline (seed 002, "hybrid dual-stream"), as a second model family
// (`dualstream_2p5d` in the plans): a window of W consecutive axial slices (W = patch_size[2], 5 in
// the seed) of the case's first channel resized to S x S in-plane (patch_size[0], 224 in the seed)
// goes through two 2D backbones:
//   full stream   the whole window
//   ROI stream    in training, sometimes a crop around a point (box_fraction of the slice, resized
//                 to S x S); at inference the same window as the full stream (the seed's "identical
//                 streams": no coordinates are known)
// The two streams' pooled features and the crop centre through a small MLP ((x, y) in [0, 1],
// zeros when the streams are identical) are concatenated and a linear layer gives 14 logits
// (13 locations + Aneurysm Present), trained with BCE. A series' probabilities are the largest
// over its windows. The seed's backbone is EfficientNet-B0 (timm, ImageNet weights); LibTorch has
// neither, so each stream is a residual 2D CNN sized by the plans (stages, base/max channels).
#pragma once
#include <torch/torch.h>

#include <array>
#include <vector>

#include "core/labels.hpp"
#include "core/volume.hpp"
#include "plan/plans.hpp"

namespace aneura {

inline constexpr const char* kDualStreamModel = "dualstream_2p5d";
inline bool slice_model(const Configuration& c) { return c.model == kDualStreamModel; }

// Conv2d 3x3 -> InstanceNorm (affine) -> LeakyReLU, twice, with a residual connection (1x1
// projection when the shape changes): the 3D network's block in 2D.
struct ResidualBlock2dImpl : torch::nn::Module {
  ResidualBlock2dImpl(int in, int out, int stride);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  torch::nn::InstanceNorm2d norm1{nullptr}, norm2{nullptr}, skip_norm{nullptr};
};
TORCH_MODULE(ResidualBlock2d);

// A stride-2 stem and stages-1 residual stages of stride 2; global average and max pooling.
struct Backbone2dImpl : torch::nn::Module {
  Backbone2dImpl(int in_channels, int stages, int base_channels, int max_channels);
  torch::Tensor forward(const torch::Tensor& x);  // [N, in, S, S] -> [N, features()]
  int features() const { return 2 * out_channels; }
  torch::nn::ModuleList blocks{nullptr};
  int out_channels = 0;
};
TORCH_MODULE(Backbone2d);

struct DualStream2p5dImpl : torch::nn::Module {
  DualStream2p5dImpl(int window, int stages, int base_channels, int max_channels, int labels = kNumLabels);
  // full, roi [N, window, S, S]; coords [N, 2] -> logits [N, labels]
  torch::Tensor forward(const torch::Tensor& full, const torch::Tensor& roi, const torch::Tensor& coords);
  Backbone2d full_stream{nullptr}, roi_stream{nullptr};
  torch::nn::Linear coord{nullptr}, head{nullptr};
};
TORCH_MODULE(DualStream2p5d);

inline constexpr int kCoordFeatures = 64;     // the seed's coordinate MLP width
inline constexpr double kBoxFraction = 0.15;  // the seed's ROI box: 15 % of the slice

// Axial slices [from, from + count) of the first channel of `image` (RAS voxel order) as they are,
// [count, Y, X] (rows: y, columns: x): a view of the volume's memory, valid while `image` lives.
torch::Tensor raw_slices(const Volume<float>& image, int64_t from, int64_t count);
// Slices [N, H, W] resized to [N, S, S] (bilinear, corners aligned).
torch::Tensor resize_slices(const torch::Tensor& slices, int64_t size);
// The first channel's axial slices, every one or [from, from + count), resized to S x S.
torch::Tensor axial_slices(const Volume<float>& image, int64_t size);
torch::Tensor axial_slices(const Volume<float>& image, int64_t size, int64_t from, int64_t count);

// The centres of the windows of a series of `slices` slices: every `stride`-th of those with a full
// window, and the last one (a series shorter than the window: the middle slice, edges repeated).
std::vector<int64_t> window_centres(int64_t slices, int window, int stride);
// The window of `slices` [Z, S, S] around `centre`, slices beyond the ends repeated: [window, S, S].
torch::Tensor window_at(const torch::Tensor& slices, int64_t centre, int window);

// Slices between window centres in prediction (and validation): the largest whole number of
// slices <= W x (1 - window_overlap), at least 1, so neighbouring windows overlap by at least that share.
int slice_stride(const Configuration& c);

// A series' 14 probabilities: per window (centres every `stride` slices) the sigmoid averaged over
// the networks (and, with `flip`, each network's left-right mirror with its twin columns swapped),
// then the largest over the windows; identical streams and zero coordinates, as the seed predicts.
// `slices` from axial_slices.
std::array<double, kNumLabels> slice_probabilities(std::vector<DualStream2p5d>& nets, const torch::Tensor& slices,
                                                   int window, int stride, bool flip, int batch = 16);
// The same for a harmonized image as configuration `c` reads it (axial_slices, slice_stride): what
// prediction and validation compute. `windows`: the number of windows run, when given.
std::array<double, kNumLabels> image_slice_probabilities(std::vector<DualStream2p5d>& nets, const Volume<float>& image,
                                                         const Configuration& c, bool flip, int64_t* windows = nullptr);

}  // namespace aneura
