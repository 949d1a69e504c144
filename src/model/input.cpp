#include "model/input.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/parallel.hpp"
#include "harmonize/resample.hpp"
#include "model/dualstream.hpp"

#include <itkHessianRecursiveGaussianImageFilter.h>
#include <itkHessianToObjectnessMeasureImageFilter.h>
#include <itkImage.h>
#include <itkSymmetricEigenAnalysis.h>
#include <itkSymmetricSecondRankTensor.h>

namespace aneura {

bool windowed(const Configuration& cfg) {
  if (slice_model(cfg)) return false;  // 2D slices, not 3D windows
  for (int k = 0; k < 3; ++k)
    if (cfg.patch_size[k] * cfg.target_spacing_mm[k] * 1.1 < cfg.roi_mm[k]) return true;
  return false;
}

bool finds_own_candidates(const Configuration& cfg) { return cfg.candidates > 0 && cfg.candidate_source == "dots"; }

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

namespace {

// A contiguous [n0, n1, n2] array seen along `axis`: [outer, len, inner] (inner 1: the
// contiguous axis), for the one-dimensional passes below.
struct AxisView {
  int64_t outer = 1, len = 1, inner = 1;
};

AxisView axis_view(const std::array<int64_t, 3>& n, int axis) {
  AxisView v;
  v.len = n[static_cast<size_t>(axis)];
  for (int a = 0; a < axis; ++a) v.outer *= n[static_cast<size_t>(a)];
  for (int a = axis + 1; a < 3; ++a) v.inner *= n[static_cast<size_t>(a)];
  return v;
}

// One pass of separable_max_pool over a contiguous [n0, n1, n2] float array: `out` = the largest
// of `in` within h voxels along `axis` (the neighbourhood cut at the edges).
void max_axis(const float* in, float* out, const std::array<int64_t, 3>& n, int axis, int64_t h) {
  const AxisView v = axis_view(n, axis);
  const int64_t outer = v.outer, len = v.len, inner = v.inner;
  if (inner == 1) {  // along the contiguous axis: one line per task
    parallel_for(static_cast<size_t>(outer), 0, [&](size_t o) {
      const float* src = in + static_cast<int64_t>(o) * len;
      float* dst = out + static_cast<int64_t>(o) * len;
      for (int64_t i = 0; i < len; ++i) {
        float m = src[i];
        for (int64_t k = std::max<int64_t>(0, i - h), end = std::min(len - 1, i + h); k <= end; ++k)
          m = src[k] > m ? src[k] : m;
        dst[i] = m;
      }
    });
    return;
  }
  // across lines: each output row of `inner` voxels the largest of whole input rows
  parallel_for(static_cast<size_t>(outer * len), 0, [&](size_t t) {
    const int64_t o = static_cast<int64_t>(t) / len, i = static_cast<int64_t>(t) % len;
    float* dst = out + (o * len + i) * inner;
    const int64_t first = std::max<int64_t>(0, i - h), last = std::min(len - 1, i + h);
    std::copy_n(in + (o * len + first) * inner, inner, dst);
    for (int64_t k = first + 1; k <= last; ++k) {
      const float* src = in + (o * len + k) * inner;
      for (int64_t j = 0; j < inner; ++j) dst[j] = src[j] > dst[j] ? src[j] : dst[j];
    }
  });
}

// The local maxima's neighbourhood as three 1-D passes (max is separable): w^3 -> 3 w comparisons.
// By hand for float (LibTorch's max_pool3d takes ~1 s for the three passes over a 0.55 mm ROI on
// 2 cores, these ~0.1 s), as max_pool3d with padding w / 2 otherwise; both exact.
torch::Tensor separable_max_pool(const torch::Tensor& f, int64_t w) {
  const int64_t h = w / 2;
  if (f.scalar_type() == torch::kFloat && f.dim() == 3) {
    const auto x = f.contiguous();
    const std::array<int64_t, 3> n{x.size(0), x.size(1), x.size(2)};
    auto a = torch::empty_like(x), b = torch::empty_like(x);
    max_axis(x.data_ptr<float>(), a.data_ptr<float>(), n, 0, h);
    max_axis(a.data_ptr<float>(), b.data_ptr<float>(), n, 1, h);
    max_axis(b.data_ptr<float>(), a.data_ptr<float>(), n, 2, h);
    return a;
  }
  auto x = f.unsqueeze(0).unsqueeze(0);
  x = torch::max_pool3d(x, {w, 1, 1}, {1, 1, 1}, {h, 0, 0});
  x = torch::max_pool3d(x, {1, w, 1}, {1, 1, 1}, {0, h, 0});
  x = torch::max_pool3d(x, {1, 1, w}, {1, 1, 1}, {0, 0, h});
  return x.squeeze(0).squeeze(0);
}

}  // namespace

std::vector<std::array<int64_t, 3>> channel_maxima(const torch::Tensor& f, int64_t max_count, int64_t window) {
  std::vector<std::array<int64_t, 3>> out;
  if (max_count <= 0) return out;
  const int64_t w = std::max<int64_t>(1, window | 1);
  const auto pooled = separable_max_pool(f, w);
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

namespace {

using BlobImage = itk::Image<float, 3>;
using HessianImage = itk::Image<itk::SymmetricSecondRankTensor<double, 3>, 3>;
constexpr double kBlobAlpha = 0.5, kBlobGamma = 0.5;    // z-scored images: vessel contrast ~1 .. 8
constexpr double kBlobSigmas[2] = {1.5, 3.0};           // blobs of radius ~2.6 and ~5 mm: sigma = r / sqrt 3
constexpr double kDotSigmas[4] = {0.6, 0.9, 1.3, 1.8};  // dot_filter: blobs of radius ~1 to ~3 mm
constexpr double kDotSeparationMm = 2;                  // dot_candidates: maxima at least this far apart

BlobImage::Pointer to_itk(const torch::Tensor& image, const Vec3& spacing) {
  const auto zyx = image.permute({2, 1, 0}).contiguous();  // ITK: x fastest
  auto in = BlobImage::New();
  BlobImage::RegionType region;
  BlobImage::SizeType size;
  for (int a = 0; a < 3; ++a) size[a] = static_cast<itk::SizeValueType>(image.size(a));
  region.SetSize(size);
  in->SetRegions(region);
  const double sp[3] = {spacing[0], spacing[1], spacing[2]};
  in->SetSpacing(sp);
  in->Allocate();
  std::copy(zyx.data_ptr<float>(), zyx.data_ptr<float>() + zyx.numel(), in->GetBufferPointer());
  return in;
}

// The scale-normalised Hessian at `sigma` mm (as ITK's multi-scale filter computes it).
HessianImage::Pointer hessian(const BlobImage::Pointer& in, double sigma, int threads) {
  using HessianFilter = itk::HessianRecursiveGaussianImageFilter<BlobImage, HessianImage>;
  auto h = HessianFilter::New();
  h->SetInput(in);
  h->SetSigma(sigma);
  h->SetNormalizeAcrossScale(true);
  if (threads > 0) h->SetNumberOfWorkUnits(static_cast<itk::ThreadIdType>(threads));
  h->Update();
  return h->GetOutput();
}

torch::Tensor from_itk(const float* o, const torch::Tensor& like) {
  return torch::from_blob(const_cast<float*>(o), {like.size(2), like.size(1), like.size(0)}, torch::kFloat)
      .permute({2, 1, 0})
      .clone();
}

}  // namespace

torch::Tensor blob_channels(const torch::Tensor& image, const Vec3& spacing, int threads) {
  const auto in = to_itk(image, spacing);
  const size_t n = static_cast<size_t>(image.numel());
  std::vector<float> best[2] = {std::vector<float>(n, 0.f), std::vector<float>(n, 0.f)};
  for (const double sigma : kBlobSigmas) {
    const auto h = hessian(in, sigma, threads);
    const auto* t = h->GetBufferPointer();
    // Frangi's blob measure (ITK's HessianToObjectnessMeasureImageFilter, object dimension 0,
    // scaled by the largest eigenvalue): one eigen analysis per voxel serves both channels, since
    // a voxel is a bright candidate (no eigenvalue > 0) or a dark one (none < 0), never both with
    // a non-zero measure.
    const size_t chunk = 1 << 16;
    parallel_for((n + chunk - 1) / chunk, static_cast<unsigned>(std::max(threads, 0)), [&](size_t c) {
      using Eigen = itk::SymmetricEigenAnalysisFixedDimension<3, HessianImage::PixelType, itk::FixedArray<double, 3>>;
      Eigen eigen;
      for (size_t i = c * chunk, end = std::min(n, (c + 1) * chunk); i < end; ++i) {
        itk::FixedArray<double, 3> e;
        eigen.ComputeEigenValues(t[i], e);
        std::sort(e.Begin(), e.End(), [](double a, double b) { return std::fabs(a) < std::fabs(b); });
        const bool bright = e[0] <= 0 && e[1] <= 0 && e[2] <= 0, dark = e[0] >= 0 && e[1] >= 0 && e[2] >= 0;
        if (!bright && !dark) continue;
        const double a0 = std::fabs(e[0]), a1 = std::fabs(e[1]), a2 = std::fabs(e[2]);
        const double denominator = a1 * a2;
        if (!(denominator > 0)) continue;
        const double ra = a0 / std::sqrt(denominator);
        const double m = (1 - std::exp(-0.5 * ra * ra / (kBlobAlpha * kBlobAlpha))) *
                         (1 - std::exp(-0.5 * (a0 * a0 + a1 * a1 + a2 * a2) / (kBlobGamma * kBlobGamma))) * a2;
        float& out = best[bright ? 0 : 1][i];
        out = std::max(out, static_cast<float>(m));
      }
    });
  }
  return torch::stack({from_itk(best[0].data(), image), from_itk(best[1].data(), image)});
}

namespace {

// dot_filter at one scale on the image's own grid through ITK's recursive Gaussian Hessian and
// eigen analysis (the reference): 0 where the Hessian is not negative definite.
torch::Tensor dot_response_itk(const torch::Tensor& image, const Vec3& spacing, double sigma, int threads) {
  const auto h = hessian(to_itk(image, spacing), sigma, threads);
  const auto* t = h->GetBufferPointer();
  const size_t n = static_cast<size_t>(image.numel());
  std::vector<float> out(n, 0.f);
  const size_t chunk = 1 << 16;
  parallel_for((n + chunk - 1) / chunk, static_cast<unsigned>(std::max(threads, 0)), [&](size_t c) {
    using Eigen = itk::SymmetricEigenAnalysisFixedDimension<3, HessianImage::PixelType, itk::FixedArray<double, 3>>;
    Eigen eigen;  // eigenvalues in ascending order: e[0] the most negative
    for (size_t i = c * chunk, end = std::min(n, (c + 1) * chunk); i < end; ++i) {
      // A negative definite Hessian has a negative diagonal: most voxels fail this before the analysis.
      if (t[i](0, 0) >= 0 || t[i](1, 1) >= 0 || t[i](2, 2) >= 0) continue;
      itk::FixedArray<double, 3> e;
      eigen.ComputeEigenValues(t[i], e);
      if (e[2] < 0) out[i] = static_cast<float>(e[2] * e[2] / -e[0]);
    }
  });
  return from_itk(out.data(), image);
}

// Sampled Gaussian derivative kernels of orders 0, 1 and 2 at `s` voxels (radius ceil(4 s)), as
// cross-correlation weights (weight k at offset k - radius): order 0 sums to 1, order 1 gives 1 on
// f(x) = x, order 2 gives 0 on a constant and 1 on f(x) = x^2 / 2.
std::array<std::vector<double>, 3> gaussian_kernels(double s) {
  const int r = std::max(1, static_cast<int>(std::ceil(4 * s)));
  std::array<std::vector<double>, 3> w;
  for (auto& v : w) v.assign(static_cast<size_t>(2 * r + 1), 0.0);
  double sum0 = 0, m1 = 0, mean2 = 0;
  for (int k = -r; k <= r; ++k) {
    const double g = std::exp(-0.5 * k * k / (s * s));
    const auto i = static_cast<size_t>(k + r);
    w[0][i] = g;
    w[1][i] = k * g;
    w[2][i] = (k * k / (s * s) - 1) * g;
    sum0 += g;
    m1 += k * k * g;
    mean2 += w[2][i];
  }
  mean2 /= static_cast<double>(w[2].size());
  double m2 = 0;
  for (int k = -r; k <= r; ++k) {
    auto& v = w[2][static_cast<size_t>(k + r)];
    v -= mean2;
    m2 += v * k * k / 2;
  }
  for (size_t i = 0; i < w[0].size(); ++i) {
    w[0][i] /= sum0;
    w[1][i] /= m1;
    w[2][i] /= m2;
  }
  return w;
}

// dst[j] += w x src[j], j < n: the inner loop of filter_axis, also compiled for AVX2 and chosen at
// run time where the processor has it (8 floats per instruction instead of SSE2's 4; the same
// products and sums, no fused multiply-add)
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
void add_scaled(float* dst, const float* src, float w, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] += w * src[j];
}

// One separable pass over a contiguous [n0, n1, n2] array: `out` = `in` correlated with `w` along
// `axis`, the border voxels repeated beyond the edges.
void filter_axis(const float* in, float* out, const std::array<int64_t, 3>& n, int axis, const std::vector<double>& w,
                 int threads) {
  const int64_t r = static_cast<int64_t>(w.size() / 2);
  const AxisView v = axis_view(n, axis);
  const int64_t outer = v.outer, len = v.len, inner = v.inner;
  std::vector<float> wf(w.begin(), w.end());
  const auto clamp = [&](int64_t i) { return std::min(std::max<int64_t>(i, 0), len - 1); };
  if (inner == 1) {  // along the contiguous axis: one line per task
    // interior voxels [lo, hi) weight by weight over the whole run (vectorised; the same sums in
    // the same order as voxel by voxel), the border voxels with the edge repeated
    const int64_t lo = std::min(r, len), hi = std::max(lo, len - r);
    parallel_for(static_cast<size_t>(outer), static_cast<unsigned>(std::max(threads, 0)), [&](size_t o) {
      const float* src = in + static_cast<int64_t>(o) * len;
      float* dst = out + static_cast<int64_t>(o) * len;
      const auto border = [&](int64_t i) {
        float acc = 0;
        for (int64_t k = 0; k < 2 * r + 1; ++k) acc += wf[static_cast<size_t>(k)] * src[clamp(i + k - r)];
        dst[i] = acc;
      };
      for (int64_t i = 0; i < lo; ++i) border(i);
      for (int64_t i = hi; i < len; ++i) border(i);
      std::fill(dst + lo, dst + hi, 0.f);
      for (int64_t k = 0; k < 2 * r + 1; ++k)
        add_scaled(dst + lo, src + lo + k - r, wf[static_cast<size_t>(k)], hi - lo);
    });
    return;
  }
  // across lines: each output row of `inner` voxels is a weighted sum of whole input rows
  parallel_for(static_cast<size_t>(outer * len), static_cast<unsigned>(std::max(threads, 0)), [&](size_t t) {
    const int64_t o = static_cast<int64_t>(t) / len, i = static_cast<int64_t>(t) % len;
    float* dst = out + (o * len + i) * inner;
    std::fill(dst, dst + inner, 0.f);
    for (int64_t k = 0; k < 2 * r + 1; ++k)
      add_scaled(dst, in + (o * len + clamp(i + k - r)) * inner, wf[static_cast<size_t>(k)], inner);
  });
}

// dot_filter at one scale on the image's own grid: the scale-normalised Hessian by separable
// sampled Gaussian derivatives (15 passes), each voxel's eigenvalues in closed form (the
// trigonometric solution of the characteristic cubic) where the diagonal is negative; 0 where the
// Hessian is not negative definite. Measured against dot_response_itk (the same filter through
// ITK's recursive Gaussian and eigen analysis) in tests/model and bench/bench_dots.
// The buffers of dot_response, kept between its scales (fresh pages cost more than the passes).
struct DotWorkspace {
  std::vector<float> src, z, y;
  std::array<std::vector<float>, 6> h;
};

torch::Tensor dot_response(const torch::Tensor& image, const Vec3& spacing, double sigma, int threads,
                           DotWorkspace& w) {
  const auto x = image.to(torch::kFloat).contiguous();
  const std::array<int64_t, 3> n{x.size(0), x.size(1), x.size(2)};
  const size_t count = static_cast<size_t>(x.numel());
  std::array<std::array<std::vector<double>, 3>, 3> k;  // per axis, per derivative order
  for (int a = 0; a < 3; ++a) k[static_cast<size_t>(a)] = gaussian_kernels(sigma / spacing[a]);
  auto pass = [&](const std::vector<float>& in, std::vector<float>& out, int axis, int order) {
    out.resize(count);
    filter_axis(in.data(), out.data(), n, axis, k[static_cast<size_t>(axis)][static_cast<size_t>(order)], threads);
  };
  w.src.assign(x.data_ptr<float>(), x.data_ptr<float>() + count);
  // H[ab] = d2 / (da db): along z, then y, then x, sharing the partial passes
  auto& h = w.h;  // xx, yy, zz, xy, xz, yz
  pass(w.src, w.z, 2, 0);
  pass(w.z, w.y, 1, 0);
  pass(w.y, h[0], 0, 2);
  pass(w.z, w.y, 1, 1);
  pass(w.y, h[3], 0, 1);
  pass(w.z, w.y, 1, 2);
  pass(w.y, h[1], 0, 0);
  pass(w.src, w.z, 2, 1);
  pass(w.z, w.y, 1, 0);
  pass(w.y, h[4], 0, 1);
  pass(w.z, w.y, 1, 1);
  pass(w.y, h[5], 0, 0);
  pass(w.src, w.z, 2, 2);
  pass(w.z, w.y, 1, 0);
  pass(w.y, h[2], 0, 0);
  // per mm, normalised across scale (x sigma^2, as ITK's NormalizeAcrossScale)
  const double s2 = sigma * sigma;
  const double f[6] = {s2 / (spacing[0] * spacing[0]), s2 / (spacing[1] * spacing[1]), s2 / (spacing[2] * spacing[2]),
                       s2 / (spacing[0] * spacing[1]), s2 / (spacing[0] * spacing[2]), s2 / (spacing[1] * spacing[2])};
  auto out = torch::zeros({n[0], n[1], n[2]}, torch::kFloat);
  float* o = out.data_ptr<float>();
  const size_t chunk = 1 << 16;
  parallel_for((count + chunk - 1) / chunk, static_cast<unsigned>(std::max(threads, 0)), [&](size_t c) {
    for (size_t i = c * chunk, end = std::min(count, (c + 1) * chunk); i < end; ++i) {
      const double a = h[0][i] * f[0], b = h[1][i] * f[1], cc = h[2][i] * f[2];
      if (a >= 0 || b >= 0 || cc >= 0) continue;
      const double d = h[3][i] * f[3], e = h[4][i] * f[4], g = h[5][i] * f[5];
      // the largest eigenvalue is negative only where the Hessian is negative definite (Sylvester:
      // a < 0, the leading 2x2 minor > 0, the determinant < 0): elsewhere 0, without the eigenvalues
      if (a * b - d * d <= 0 || a * (b * cc - g * g) - d * (d * cc - g * e) + e * (d * g - b * e) >= 0) continue;
      // eigenvalues of [[a d e] [d b g] [e g cc]]: largest l1 and smallest l3
      const double p1 = d * d + e * e + g * g, q = (a + b + cc) / 3;
      const double p2 = (a - q) * (a - q) + (b - q) * (b - q) + (cc - q) * (cc - q) + 2 * p1;
      const double p = std::sqrt(p2 / 6);
      double largest = q, smallest = q;
      if (p > 0) {
        const double ba = (a - q) / p, bb = (b - q) / p, bc = (cc - q) / p, bd = d / p, be = e / p, bg = g / p;
        const double det = ba * (bb * bc - bg * bg) - bd * (bd * bc - bg * be) + be * (bd * bg - bb * be);
        const double phi = std::acos(std::clamp(det / 2, -1.0, 1.0)) / 3;
        largest = q + 2 * p * std::cos(phi);
        smallest = q + 2 * p * std::cos(phi + 2 * M_PI / 3);
      }
      if (largest < 0) o[i] = static_cast<float>(largest * largest / -smallest);
    }
  });
  return out;
}

// upsample_trilinear's source voxels and weights along one axis of m voxels resized to n:
// LibTorch's area_pixel_compute_source_index (align_corners false, no scale factor).
struct LinearTaps {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};

LinearTaps linear_taps(int64_t m, int64_t n) {
  LinearTaps t;
  const double scale = static_cast<double>(m) / static_cast<double>(n);
  for (int64_t d = 0; d < n; ++d) {
    const double src = std::max(0.0, scale * (static_cast<double>(d) + 0.5) - 0.5);
    const auto i0 = std::min(static_cast<int64_t>(src), m - 1);
    const double l1 = std::min(1.0, src - static_cast<double>(i0));
    t.i0.push_back(i0);
    t.i1.push_back(i0 < m - 1 ? i0 + 1 : i0);
    t.w0.push_back(static_cast<float>(1 - l1));
    t.w1.push_back(static_cast<float>(l1));
  }
  return t;
}

// dot_filter by a response at one scale (image, spacing, sigma)
torch::Tensor dot_filter_with(const std::function<torch::Tensor(const torch::Tensor&, const Vec3&, double)>& response,
                              const torch::Tensor& image, const Vec3& spacing) {
  torch::Tensor best;
  torch::Tensor half;  // the image on a grid twice as coarse (2^3 mean), for the scales it resolves
  const double finest = std::min({spacing[0], spacing[1], spacing[2]});
  for (const double sigma : kDotSigmas) {
    torch::Tensor r;
    if (sigma >= 2 * finest && image.size(0) >= 8 && image.size(1) >= 8 && image.size(2) >= 8) {
      if (!half.defined())
        half = torch::avg_pool3d(image.unsqueeze(0).unsqueeze(0), {2, 2, 2}, {2, 2, 2}, {0, 0, 0}, true)
                   .squeeze(0)
                   .squeeze(0)
                   .contiguous();
      const Vec3 coarse{spacing[0] * 2, spacing[1] * 2, spacing[2] * 2};
      // back on the image grid (voxel centres of the coarse grid sit between the fine ones), into
      // the maximum over the scales
      const std::array<int64_t, 3> size{image.size(0), image.size(1), image.size(2)};
      if (best.defined()) {
        best = best.to(torch::kFloat).contiguous();
        upsample_trilinear(response(half, coarse, sigma), size, best);
        continue;
      }
      r = upsample_trilinear(response(half, coarse, sigma), size);
    } else {
      r = response(image, spacing, sigma);
    }
    best = best.defined() ? torch::maximum(best, r) : r;
  }
  return best;
}

}  // namespace

torch::Tensor upsample_trilinear(const torch::Tensor& f, const std::array<int64_t, 3>& size, torch::Tensor into) {
  const auto x = f.to(torch::kFloat).contiguous();
  const std::array<int64_t, 3> m{x.size(0), x.size(1), x.size(2)};
  const LinearTaps t0 = linear_taps(m[0], size[0]), t1 = linear_taps(m[1], size[1]), t2 = linear_taps(m[2], size[2]);
  // along z (contiguous): [m0, m1, m2] -> [m0, m1, n2]
  std::vector<float> a(static_cast<size_t>(m[0] * m[1] * size[2]));
  const float* src = x.data_ptr<float>();
  parallel_for(static_cast<size_t>(m[0] * m[1]), 0, [&](size_t line) {
    const float* in = src + static_cast<int64_t>(line) * m[2];
    float* out = a.data() + static_cast<int64_t>(line) * size[2];
    for (int64_t d = 0; d < size[2]; ++d) {
      const auto k = static_cast<size_t>(d);
      out[d] = t2.w0[k] * in[t2.i0[k]] + t2.w1[k] * in[t2.i1[k]];
    }
  });
  // along y: rows of n2 -> [m0, n1, n2]
  std::vector<float> b(static_cast<size_t>(m[0] * size[1] * size[2]));
  parallel_for(static_cast<size_t>(m[0] * size[1]), 0, [&](size_t task) {
    const int64_t o = static_cast<int64_t>(task) / size[1], d = static_cast<int64_t>(task) % size[1];
    const auto k = static_cast<size_t>(d);
    const float* r0 = a.data() + (o * m[1] + t1.i0[k]) * size[2];
    const float* r1 = a.data() + (o * m[1] + t1.i1[k]) * size[2];
    float* out = b.data() + (o * size[1] + d) * size[2];
    for (int64_t j = 0; j < size[2]; ++j) out[j] = t1.w0[k] * r0[j] + t1.w1[k] * r1[j];
  });
  // along x: planes of n1 x n2 -> [n0, n1, n2], or into `into` as the larger
  const bool keep_larger = into.defined();
  if (keep_larger && (into.scalar_type() != torch::kFloat || !into.is_contiguous() ||
                      into.sizes() != torch::IntArrayRef(size.data(), size.size())))
    throw Error(ErrorCode::Internal, "upsample_trilinear: `into` must be a contiguous float tensor of the output size");
  if (!keep_larger) into = torch::empty({size[0], size[1], size[2]}, torch::kFloat);
  float* dst = into.data_ptr<float>();
  const int64_t plane = size[1] * size[2];
  parallel_for(static_cast<size_t>(size[0] * size[1]), 0, [&](size_t task) {
    const int64_t d = static_cast<int64_t>(task) / size[1], row = static_cast<int64_t>(task) % size[1];
    const auto k = static_cast<size_t>(d);
    const float* p0 = b.data() + t0.i0[k] * plane + row * size[2];
    const float* p1 = b.data() + t0.i1[k] * plane + row * size[2];
    float* out = dst + d * plane + row * size[2];
    for (int64_t j = 0; j < size[2]; ++j) {
      const float v = t0.w0[k] * p0[j] + t0.w1[k] * p1[j];
      out[j] = keep_larger ? std::max(out[j], v) : v;
    }
  });
  return into;
}

torch::Tensor dot_filter(const torch::Tensor& image, const Vec3& spacing, int threads) {
  DotWorkspace w;
  return dot_filter_with(
      [&](const torch::Tensor& x, const Vec3& sp, double sigma) { return dot_response(x, sp, sigma, threads, w); },
      image, spacing);
}

torch::Tensor dot_filter_itk(const torch::Tensor& image, const Vec3& spacing, int threads) {
  return dot_filter_with(
      [&](const torch::Tensor& x, const Vec3& sp, double sigma) { return dot_response_itk(x, sp, sigma, threads); },
      image, spacing);
}

std::vector<DotCandidate> dot_candidates(const Volume<float>& image, const Vec3& centre, const Configuration& cfg,
                                         int count, int threads, bool itk) {
  const Geometry grid = roi_grid(centre, cfg);
  const auto roi = volume_to_tensor(resample_to(image, grid, Interp::Linear, outside_value(image)));
  const auto dots = itk ? dot_filter_itk(roi[0], grid.spacing, threads) : dot_filter(roi[0], grid.spacing, threads);
  const double mm = std::min({grid.spacing[0], grid.spacing[1], grid.spacing[2]});
  const auto window = 2 * static_cast<int64_t>(std::lround(kDotSeparationMm / mm)) + 1;
  std::vector<DotCandidate> out;
  for (const auto& v : channel_maxima(dots, count, window))
    out.push_back(
        {grid.index_to_world({static_cast<double>(v[0]), static_cast<double>(v[1]), static_cast<double>(v[2])}),
         dots[v[0]][v[1]][v[2]].item<double>()});
  return out;
}

torch::Tensor blob_channels_itk(const torch::Tensor& image, const Vec3& spacing, int threads) {
  const auto in = to_itk(image, spacing);
  std::array<torch::Tensor, 2> best;
  for (size_t k = 0; k < 2; ++k) {
    const auto h = hessian(in, kBlobSigmas[k], threads);
    for (int bright = 0; bright < 2; ++bright) {
      using Objectness = itk::HessianToObjectnessMeasureImageFilter<HessianImage, BlobImage>;
      auto obj = Objectness::New();
      obj->SetInput(h);
      obj->SetObjectDimension(0);
      obj->SetBrightObject(bright == 0);
      obj->SetScaleObjectnessMeasure(true);
      obj->SetAlpha(kBlobAlpha);
      obj->SetBeta(0.5);  // unused for blobs
      obj->SetGamma(kBlobGamma);
      if (threads > 0) obj->SetNumberOfWorkUnits(static_cast<itk::ThreadIdType>(threads));
      obj->Update();
      const auto t = from_itk(obj->GetOutput()->GetBufferPointer(), image);
      best[static_cast<size_t>(bright)] = k == 0 ? t : torch::maximum(best[static_cast<size_t>(bright)], t);
    }
  }
  return torch::stack({best[0], best[1]});
}

int input_channels(const Configuration& cfg, int image_channels) {
  if (slice_model(cfg)) return cfg.patch_size[2];  // a window of the first channel's slices
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

float outside_value(const Volume<float>& image) {
  return image.data.empty() ? 0.f : *std::min_element(image.data.begin(), image.data.end());
}

torch::Tensor grid_input(const Volume<float>& image, const Geometry& grid, const Vec3& roi_centre,
                         const Configuration& cfg, float outside, int blob_threads) {
  return network_input(volume_to_tensor(resample_to(image, grid, Interp::Linear, outside)), grid, roi_centre, cfg,
                       blob_threads);
}

RoiInput roi_input(const Volume<float>& image, const Vec3& centre, const Configuration& cfg,
                   std::optional<float> outside, int blob_threads) {
  RoiInput r;
  r.grid = roi_grid(centre, cfg);
  r.x = grid_input(image, r.grid, centre, cfg, outside ? *outside : outside_value(image), blob_threads);
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
