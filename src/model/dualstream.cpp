#include "model/dualstream.hpp"

#include <algorithm>
#include <cmath>

namespace aneura {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

ResidualBlock2dImpl::ResidualBlock2dImpl(int in, int out, int stride) {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
  norm1 = register_module("norm1", nn::InstanceNorm2d(nn::InstanceNorm2dOptions(out).affine(true)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
  norm2 = register_module("norm2", nn::InstanceNorm2d(nn::InstanceNorm2dOptions(out).affine(true)));
  if (in != out || stride != 1) {
    skip = register_module("skip", nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
    skip_norm = register_module("skip_norm", nn::InstanceNorm2d(nn::InstanceNorm2dOptions(out).affine(true)));
  }
}

torch::Tensor ResidualBlock2dImpl::forward(const torch::Tensor& x) {
  auto y = torch::leaky_relu(norm1(conv1(x)), 0.01);
  y = norm2(conv2(y));
  const auto s = skip ? skip_norm(skip(x)) : x;
  return torch::leaky_relu(y + s, 0.01);
}

Backbone2dImpl::Backbone2dImpl(int in_channels, int stages, int base_channels, int max_channels) {
  auto ch = [&](int s) { return std::min(base_channels << s, max_channels); };
  blocks = register_module("blocks", nn::ModuleList());
  for (int s = 0; s < stages; ++s) blocks->push_back(ResidualBlock2d(s == 0 ? in_channels : ch(s - 1), ch(s), 2));
  out_channels = ch(stages - 1);
}

torch::Tensor Backbone2dImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (const auto& b : *blocks) h = b->as<ResidualBlock2d>()->forward(h);
  return torch::cat({h.mean({2, 3}), h.amax({2, 3})}, 1);
}

DualStream2p5dImpl::DualStream2p5dImpl(int window, int stages, int base_channels, int max_channels, int labels) {
  full_stream = register_module("full_stream", Backbone2d(window, stages, base_channels, max_channels));
  roi_stream = register_module("roi_stream", Backbone2d(window, stages, base_channels, max_channels));
  coord = register_module("coord", nn::Linear(2, kCoordFeatures));
  head = register_module("head", nn::Linear(2 * full_stream->features() + kCoordFeatures, labels));
}

torch::Tensor DualStream2p5dImpl::forward(const torch::Tensor& full, const torch::Tensor& roi,
                                          const torch::Tensor& coords) {
  return head(torch::cat({full_stream(full), roi_stream(roi), torch::relu(coord(coords))}, 1));
}

torch::Tensor raw_slices(const Volume<float>& image, int64_t from, int64_t count) {
  const auto& n = image.geom.size;
  return torch::from_blob(const_cast<float*>(image.data.data()) + from * n[0] * n[1], {count, n[1], n[0]},
                          torch::kFloat);
}

torch::Tensor resize_slices(const torch::Tensor& slices, int64_t size) {
  return F::interpolate(slices.unsqueeze(1), F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{size, size})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(true))
      .squeeze(1)
      .contiguous();
}

torch::Tensor axial_slices(const Volume<float>& image, int64_t size, int64_t from, int64_t count) {
  return resize_slices(raw_slices(image, from, count), size);
}

torch::Tensor axial_slices(const Volume<float>& image, int64_t size) {
  return axial_slices(image, size, 0, image.geom.size[2]);
}

std::vector<int64_t> window_centres(int64_t slices, int window, int stride) {
  const int64_t h = window / 2;
  std::vector<int64_t> c;
  if (slices < window) return {slices / 2};
  for (int64_t k = h; k + h < slices; k += std::max(1, stride)) c.push_back(k);
  if (c.back() != slices - 1 - h) c.push_back(slices - 1 - h);
  return c;
}

torch::Tensor window_at(const torch::Tensor& slices, int64_t centre, int window) {
  const int64_t z = slices.size(0), h = window / 2;
  std::vector<int64_t> idx;
  for (int64_t k = centre - h; k < centre - h + window; ++k) idx.push_back(std::clamp<int64_t>(k, 0, z - 1));
  return slices.index_select(0, torch::tensor(idx, torch::kLong));
}

int slice_stride(const Configuration& c) {
  return std::max(1, static_cast<int>(std::floor(c.patch_size[2] * (1 - c.window_overlap) + 1e-9)));
}

std::array<double, kNumLabels> slice_probabilities(std::vector<DualStream2p5d>& nets, const torch::Tensor& slices,
                                                   int window, int stride, bool flip, int batch) {
  torch::NoGradGuard ng;
  std::vector<int64_t> twin(kNumLabels);
  for (int c = 0; c < kNumLabels; ++c) twin[static_cast<size_t>(c)] = label_twin(c);
  const auto twins = torch::tensor(twin, torch::kLong);
  const auto centres = window_centres(slices.size(0), window, stride);
  torch::Tensor best;
  for (size_t b = 0; b < centres.size(); b += static_cast<size_t>(batch)) {
    std::vector<torch::Tensor> w;
    for (size_t i = b; i < std::min(centres.size(), b + static_cast<size_t>(batch)); ++i)
      w.push_back(window_at(slices, centres[i], window));
    const auto x = torch::stack(w);
    const auto zeros = torch::zeros({x.size(0), 2});
    torch::Tensor sum;
    int n = 0;
    for (auto& net : nets) {
      const auto dev = net->head->weight.device();
      for (int f = 0; f < (flip ? 2 : 1); ++f) {
        const auto in = (f ? x.flip({3}) : x).to(dev);
        auto p = torch::sigmoid(net->forward(in, in, zeros.to(dev))).to(torch::kCPU, torch::kDouble);
        if (f) p = p.index_select(1, twins);  // the mirror's left columns are the series' right ones
        sum = sum.defined() ? sum + p : p;
        ++n;
      }
    }
    const auto m = (sum / n).amax(0);
    best = best.defined() ? torch::maximum(best, m) : m;
  }
  std::array<double, kNumLabels> p{};
  for (int c = 0; c < kNumLabels; ++c) p[c] = best[c].item<double>();
  return p;
}

std::array<double, kNumLabels> image_slice_probabilities(std::vector<DualStream2p5d>& nets, const Volume<float>& image,
                                                         const Configuration& c, bool flip, int64_t* windows) {
  const auto slices = axial_slices(image, c.patch_size[0]);
  const int window = c.patch_size[2], stride = slice_stride(c);
  if (windows) *windows = static_cast<int64_t>(window_centres(slices.size(0), window, stride).size());
  return slice_probabilities(nets, slices, window, stride, flip);
}

}  // namespace aneura
