#include "model/input.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "harmonize/resample.hpp"

#include <itkHessianRecursiveGaussianImageFilter.h>
#include <itkHessianToObjectnessMeasureImageFilter.h>
#include <itkImage.h>
#include <itkSymmetricSecondRankTensor.h>

namespace aneura {

bool windowed(const Configuration& cfg) {
  for (int k = 0; k < 3; ++k)
    if (cfg.patch_size[k] * cfg.target_spacing_mm[k] * 1.1 < cfg.roi_mm[k]) return true;
  return false;
}

Vec3 window_spacing(const Configuration& cfg) {
  const bool w = windowed(cfg);
  Vec3 s;
  for (int k = 0; k < 3; ++k) s[k] = w ? cfg.target_spacing_mm[k] : cfg.roi_mm[k] / cfg.patch_size[k];
  return s;
}

namespace {

Geometry centred_grid(const Vec3& centre, const std::array<int64_t, 3>& size, const Vec3& spacing,
                      const Mat3& direction) {
  Geometry grid;
  grid.direction = direction;
  grid.size = size;
  grid.spacing = spacing;
  const Vec3 half{(size[0] - 1) / 2.0, (size[1] - 1) / 2.0, (size[2] - 1) / 2.0};
  grid.origin = {0, 0, 0};
  grid.origin = centre - grid.index_to_world(half);
  return grid;
}

}  // namespace

Geometry window_grid(const Vec3& centre, const Configuration& cfg, const Mat3& direction, double scale) {
  const Vec3 sp = window_spacing(cfg);
  return centred_grid(centre, {cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]},
                      {sp[0] * scale, sp[1] * scale, sp[2] * scale}, direction);
}

Geometry roi_grid(const Vec3& centre, const Configuration& cfg) {
  if (!windowed(cfg)) return window_grid(centre, cfg, kRasDirection, 1.0);
  std::array<int64_t, 3> n{};
  for (int k = 0; k < 3; ++k)
    n[k] = std::max<int64_t>(cfg.patch_size[k],
                             static_cast<int64_t>(std::ceil(cfg.roi_mm[k] / cfg.target_spacing_mm[k] - 1e-6)));
  return centred_grid(centre, n, {cfg.target_spacing_mm[0], cfg.target_spacing_mm[1], cfg.target_spacing_mm[2]},
                      kRasDirection);
}

std::vector<std::array<int64_t, 3>> window_starts(const std::array<int64_t, 3>& roi, const std::array<int, 3>& patch,
                                                  double overlap) {
  std::array<std::vector<int64_t>, 3> axis;
  for (int k = 0; k < 3; ++k) {
    const int64_t d = std::max<int64_t>(0, roi[k] - patch[k]);
    const double stride = std::max(1.0, patch[k] * (1 - overlap));  // at most
    const int64_t n = d == 0 ? 1 : static_cast<int64_t>(std::ceil(static_cast<double>(d) / stride - 1e-9)) + 1;
    axis[k].assign(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t m = n - 1 - i;  // mirrored partner: the starts are symmetric about the ROI centre
      axis[k][static_cast<size_t>(i)] = i <= m ? (i * d) / std::max<int64_t>(1, n - 1) : d - (m * d) / (n - 1);
    }
  }
  std::vector<std::array<int64_t, 3>> out;
  for (int64_t x : axis[0])
    for (int64_t y : axis[1])
      for (int64_t z : axis[2]) out.push_back({x, y, z});
  return out;
}

std::vector<std::array<int64_t, 3>> focus_windows(const std::vector<std::array<int64_t, 3>>& starts,
                                                  const std::array<int, 3>& patch,
                                                  const std::vector<std::array<int64_t, 3>>& focus) {
  std::array<std::vector<int64_t>, 3> axis;  // the distinct starts per axis (a grid)
  for (const auto& s : starts)
    for (int k = 0; k < 3; ++k) axis[k].push_back(s[k]);
  for (auto& a : axis) {
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
  }
  std::set<std::array<int64_t, 3>> chosen;
  for (const auto& f : focus) {
    std::array<int64_t, 3> w{};
    for (int k = 0; k < 3; ++k) {
      // nearest window centre; 2 x distance keeps it integral: |2 f - (2 s + patch - 1)|
      int64_t best = axis[k].front();
      for (int64_t s : axis[k])
        if (std::llabs(2 * f[k] - (2 * s + patch[k] - 1)) < std::llabs(2 * f[k] - (2 * best + patch[k] - 1))) best = s;
      w[k] = best;
    }
    chosen.insert(w);
  }
  std::vector<std::array<int64_t, 3>> out;
  for (const auto& s : starts)
    if (chosen.count(s)) out.push_back(s);
  return out;
}

std::vector<std::array<int64_t, 3>> channel_maxima(const torch::Tensor& f, int64_t max_count) {
  std::vector<std::array<int64_t, 3>> out;
  if (max_count <= 0) return out;
  const auto pooled =
      torch::max_pool3d(f.unsqueeze(0).unsqueeze(0), {5, 5, 5}, {1, 1, 1}, {2, 2, 2}).squeeze(0).squeeze(0);
  const auto at = torch::nonzero((f == pooled) & (f > 0));  // [K, 3]
  if (at.size(0) == 0) return out;
  const auto v = f.index({at.select(1, 0), at.select(1, 1), at.select(1, 2)});
  const auto top = std::get<1>(v.topk(std::min<int64_t>(max_count, v.size(0))));
  const auto sel = at.index_select(0, top).contiguous();
  const auto* p = sel.data_ptr<int64_t>();
  for (int64_t i = 0; i < sel.size(0); ++i) out.push_back({p[3 * i], p[3 * i + 1], p[3 * i + 2]});
  return out;
}

std::vector<std::array<int64_t, 3>> blob_focus(const torch::Tensor& x, int focus_per_channel) {
  const int64_t bright = x.size(0) - kCoordinateChannels - kBlobChannels;
  if (bright < 1) throw Error(ErrorCode::Usage, "focus windows need the blob feature channels (blob_features)");
  auto out = channel_maxima(x[bright], focus_per_channel);
  const auto dark = channel_maxima(x[bright + 1], focus_per_channel);
  out.insert(out.end(), dark.begin(), dark.end());
  return out;
}

torch::Tensor coordinate_channels(const Geometry& grid, const Vec3& roi_centre) {
  // world[r] = origin[r] + sum_c direction[r][c] * spacing[c] * index[c], - centre, / 64 mm
  const auto& n = grid.size;
  std::vector<torch::Tensor> idx;
  for (int c = 0; c < 3; ++c) {
    std::vector<int64_t> shape{1, 1, 1};
    shape[static_cast<size_t>(c)] = n[c];
    idx.push_back(torch::arange(n[c], torch::kFloat).reshape(shape));
  }
  std::vector<torch::Tensor> out;
  for (int r = 0; r < 3; ++r) {
    auto w = torch::full({n[0], n[1], n[2]}, static_cast<float>((grid.origin[r] - roi_centre[r]) / 64.0));
    for (int c = 0; c < 3; ++c) w = w + idx[c] * static_cast<float>(grid.direction[r][c] * grid.spacing[c] / 64.0);
    out.push_back(w);
  }
  return torch::stack(out);
}

torch::Tensor blob_channels(const torch::Tensor& image, const Vec3& spacing, int threads) {
  using Image = itk::Image<float, 3>;
  using Hessian = itk::Image<itk::SymmetricSecondRankTensor<double, 3>, 3>;
  const auto zyx = image.permute({2, 1, 0}).contiguous();  // ITK: x fastest
  auto in = Image::New();
  Image::RegionType region;
  Image::SizeType size;
  for (int a = 0; a < 3; ++a) size[a] = static_cast<itk::SizeValueType>(image.size(a));
  region.SetSize(size);
  in->SetRegions(region);
  const double sp[3] = {spacing[0], spacing[1], spacing[2]};
  in->SetSpacing(sp);
  in->Allocate();
  std::copy(zyx.data_ptr<float>(), zyx.data_ptr<float>() + zyx.numel(), in->GetBufferPointer());
  // One Hessian per scale (scale-normalised, as ITK's multi-scale filter does), both measures on
  // it, the maximum over the scales 1.5 and 3 mm (blobs of radius ~2.6 and ~5 mm: sigma = r / sqrt 3).
  std::array<torch::Tensor, 2> best;
  for (int k = 0; k < 2; ++k) {
    const double sigma = 1.5 * (k + 1);
    using HessianFilter = itk::HessianRecursiveGaussianImageFilter<Image, Hessian>;
    auto h = HessianFilter::New();
    h->SetInput(in);
    h->SetSigma(sigma);
    h->SetNormalizeAcrossScale(true);
    if (threads > 0) h->SetNumberOfWorkUnits(static_cast<itk::ThreadIdType>(threads));
    h->Update();
    for (int bright = 0; bright < 2; ++bright) {
      using Objectness = itk::HessianToObjectnessMeasureImageFilter<Hessian, Image>;
      auto obj = Objectness::New();
      obj->SetInput(h->GetOutput());
      obj->SetObjectDimension(0);
      obj->SetBrightObject(bright == 0);
      obj->SetScaleObjectnessMeasure(true);
      obj->SetAlpha(0.5);
      obj->SetBeta(0.5);
      obj->SetGamma(0.5);  // z-scored images: vessel contrast ~1 .. 8, so structures above noise pass
      if (threads > 0) obj->SetNumberOfWorkUnits(static_cast<itk::ThreadIdType>(threads));
      obj->Update();
      const float* o = obj->GetOutput()->GetBufferPointer();
      auto t = torch::from_blob(const_cast<float*>(o), {image.size(2), image.size(1), image.size(0)}, torch::kFloat)
                   .permute({2, 1, 0})
                   .clone();
      best[static_cast<size_t>(bright)] = k == 0 ? t : torch::maximum(best[static_cast<size_t>(bright)], t);
    }
  }
  return torch::stack({best[0], best[1]});
}

int input_channels(const Configuration& cfg, int image_channels) {
  return image_channels + (cfg.blob_features ? kBlobChannels : 0) + kCoordinateChannels;
}

torch::Tensor network_input(const torch::Tensor& image, const Geometry& grid, const Vec3& roi_centre,
                            const Configuration& cfg, int blob_threads) {
  std::vector<torch::Tensor> parts{image};
  if (cfg.blob_features) parts.push_back(blob_channels(image[0], grid.spacing, blob_threads));
  parts.push_back(coordinate_channels(grid, roi_centre));
  return torch::cat(parts);
}

torch::Tensor mirror_input(const torch::Tensor& x) {
  auto y = x.flip({-3});
  y.select(-4, x.size(-4) - kCoordinateChannels).mul_(-1);
  return y;
}

torch::Tensor volume_to_tensor(const Volume<float>& v) {
  // Volume is i-fastest [t][k][j][i]; the tensor is [C, X, Y, Z] = permute of [C, Z, Y, X].
  const auto& n = v.geom.size;
  return torch::from_blob(const_cast<float*>(v.data.data()), {v.volumes, n[2], n[1], n[0]}, torch::kFloat)
      .permute({0, 3, 2, 1})
      .contiguous();
}

RoiInput roi_input(const Volume<float>& image, const Vec3& centre, const Configuration& cfg,
                   std::optional<float> outside, int blob_threads) {
  RoiInput r;
  r.grid = roi_grid(centre, cfg);
  if (!outside) outside = image.data.empty() ? 0.f : *std::min_element(image.data.begin(), image.data.end());
  r.x = network_input(volume_to_tensor(resample_to(image, r.grid, Interp::Linear, *outside)), r.grid, centre, cfg,
                      blob_threads);
  return r;
}

namespace {

// A long tensor t[v] = f(v), v = 0..n-1.
template <class F>
torch::Tensor make_lut(int n, F f) {
  auto t = torch::zeros({n}, torch::kLong);
  for (int v = 0; v < n; ++v) t[v] = f(v);
  return t;
}

}  // namespace

const torch::Tensor& label_twin_lut() {
  static const torch::Tensor lut = make_lut(kNumLabels, label_twin);
  return lut;
}

const torch::Tensor& aneurysm_value_twin_lut() {
  static const torch::Tensor lut = make_lut(kNumLabels, [](int v) { return v == 0 ? 0 : label_twin(v - 1) + 1; });
  return lut;
}

const torch::Tensor& cowseg_twin_lut() {
  static const torch::Tensor lut = make_lut(14, cowseg_twin);
  return lut;
}

}  // namespace aneura
