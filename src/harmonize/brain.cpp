#include "harmonize/brain.hpp"

#include <itkBinaryDilateImageFilter.h>
#include <itkBinaryErodeImageFilter.h>
#include <itkBinaryFillholeImageFilter.h>
#include <itkConnectedComponentImageFilter.h>
#include <itkFlatStructuringElement.h>
#include <itkSmoothingRecursiveGaussianImageFilter.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "harmonize/normalize.hpp"
#include "io/itk_image.hpp"

namespace aneura {

namespace {

using Mask = itk::Image<uint8_t, 3>;
using Image = itk::Image<float, 3>;
using Labels = itk::Image<uint32_t, 3>;
using Ball = itk::FlatStructuringElement<3>;

Ball ball(const Geometry& g, double mm) {
  Ball::RadiusType r;
  for (unsigned a = 0; a < 3; ++a) r[a] = static_cast<itk::SizeValueType>(std::max(1L, std::lround(mm / g.spacing[a])));
  return Ball::Ball(r);
}

// The mode of `values` from a 256-bin histogram between their 1st and 99th percentiles, smoothed by
// a Gaussian of 2 bins.
double histogram_mode(const std::vector<float>& values) {
  const double lo = percentile(values, 1), hi = percentile(values, 99);
  if (!(hi > lo)) return lo;
  constexpr int kBins = 256;
  const std::vector<double> s = smoothed_histogram(values, lo, hi, kBins, 2.0);
  const int best = static_cast<int>(std::max_element(s.begin(), s.end()) - s.begin());
  return lo + (best + 0.5) * (hi - lo) / kBins;
}

}  // namespace

double mask_dice(const Volume<uint8_t>& a, const Volume<uint8_t>& b) {
  if (a.geom.size != b.geom.size) throw Error(ErrorCode::Internal, "Dice of masks on different grids");
  const size_t n = static_cast<size_t>(a.geom.voxel_count());
  size_t both = 0, na = 0, nb = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool x = a.data[i] != 0, y = b.data[i] != 0;
    both += x && y, na += x, nb += y;
  }
  return na + nb == 0 ? 1.0 : 2.0 * static_cast<double>(both) / static_cast<double>(na + nb);
}

BrainMask brain_mask(const Volume<float>& image, const Volume<uint8_t>& head, bool ct, const BrainMaskOptions& o) {
  const Geometry& g = image.geom;
  if (head.geom.size != g.size) throw Error(ErrorCode::Internal, "brain mask: head mask on another grid");
  const auto& n = g.size;
  const size_t nv = static_cast<size_t>(g.voxel_count());
  BrainMask out;
  out.mask = Volume<uint8_t>(g);
  std::fill(out.mask.data.begin(), out.mask.data.end(), uint8_t{0});

  // The head's core: the ellipsoid of half its extent around its centroid.
  Vec3 centre{0, 0, 0};
  std::array<int64_t, 3> lo{n[0], n[1], n[2]}, hi{-1, -1, -1};
  size_t head_voxels = 0;
  for (int64_t k = 0; k < n[2]; ++k)
    for (int64_t j = 0; j < n[1]; ++j)
      for (int64_t i = 0; i < n[0]; ++i)
        if (head.data[head.offset(i, j, k)]) {
          const int64_t idx[3] = {i, j, k};
          for (int a = 0; a < 3; ++a)
            centre[a] += static_cast<double>(idx[a]), lo[a] = std::min(lo[a], idx[a]), hi[a] = std::max(hi[a], idx[a]);
          ++head_voxels;
        }
  if (head_voxels == 0) {
    out.note = "the head mask is empty";
    return out;
  }
  Vec3 half;
  for (int a = 0; a < 3; ++a)
    centre[a] /= static_cast<double>(head_voxels), half[a] = std::max(1.0, 0.25 * static_cast<double>(hi[a] - lo[a]));
  auto in_core = [&](int64_t i, int64_t j, int64_t k) {
    const double x = (i - centre[0]) / half[0], y = (j - centre[1]) / half[1], z = (k - centre[2]) / half[2];
    return x * x + y * y + z * z <= 1.0;
  };

  auto smooth = itk::SmoothingRecursiveGaussianImageFilter<Image, Image>::New();
  smooth->SetInput(to_itk(image));
  smooth->SetSigma(o.sigma_mm);
  smooth->Update();
  const float* s = smooth->GetOutput()->GetBufferPointer();

  double range_lo = o.ct_lo, range_hi = o.ct_hi;
  if (!ct) {
    std::vector<float> core;
    for (int64_t k = 0; k < n[2]; ++k)
      for (int64_t j = 0; j < n[1]; ++j)
        for (int64_t i = 0; i < n[0]; ++i)
          if (head.data[head.offset(i, j, k)] && in_core(i, j, k)) core.push_back(s[head.offset(i, j, k)]);
    if (core.size() < 1000) {
      out.note = "the head's core holds " + std::to_string(core.size()) + " voxels, too few for an intensity mode";
      return out;
    }
    out.reference = histogram_mode(core);
    if (!(out.reference > 0)) {
      out.note = "the brain's intensity mode is not positive";
      return out;
    }
    range_lo = o.mr_lo * out.reference, range_hi = o.mr_hi * out.reference;
  }

  auto candidate = make_itk_image<Mask>(g);
  candidate->Allocate();
  uint8_t* c = candidate->GetBufferPointer();
  for (size_t i = 0; i < nv; ++i) c[i] = head.data[i] && s[i] >= range_lo && s[i] <= range_hi ? 1 : 0;

  const Ball kernel = ball(g, o.erode_mm);
  auto erode = itk::BinaryErodeImageFilter<Mask, Mask, Ball>::New();
  erode->SetInput(candidate);
  erode->SetKernel(kernel);
  erode->SetForegroundValue(1);
  erode->SetBackgroundValue(0);
  auto components = itk::ConnectedComponentImageFilter<Mask, Labels>::New();
  components->SetInput(erode->GetOutput());
  components->SetFullyConnected(false);
  components->Update();
  const uint32_t* label = components->GetOutput()->GetBufferPointer();
  std::vector<size_t> in_core_count(components->GetObjectCount() + 1, 0);
  for (int64_t k = 0; k < n[2]; ++k)
    for (int64_t j = 0; j < n[1]; ++j)
      for (int64_t i = 0; i < n[0]; ++i) {
        const uint32_t l = label[out.mask.offset(i, j, k)];
        if (l && in_core(i, j, k)) ++in_core_count[l];
      }
  const auto best = std::max_element(in_core_count.begin() + 1, in_core_count.end());
  if (best == in_core_count.end() || *best == 0) {
    out.note = "no brain-like tissue at the head's centre";
    return out;
  }
  const uint32_t keep = static_cast<uint32_t>(best - in_core_count.begin());

  auto seed = make_itk_image<Mask>(g);
  seed->Allocate();
  uint8_t* sd = seed->GetBufferPointer();
  for (size_t i = 0; i < nv; ++i) sd[i] = label[i] == keep ? 1 : 0;
  auto dilate = itk::BinaryDilateImageFilter<Mask, Mask, Ball>::New();
  dilate->SetInput(seed);
  dilate->SetKernel(kernel);
  dilate->SetForegroundValue(1);
  dilate->SetBackgroundValue(0);
  dilate->Update();
  auto grown = dilate->GetOutput();
  uint8_t* gr = grown->GetBufferPointer();
  for (size_t i = 0; i < nv; ++i) gr[i] = gr[i] && c[i] ? 1 : 0;
  auto fill = itk::BinaryFillholeImageFilter<Mask>::New();
  fill->SetInput(grown);
  fill->SetForegroundValue(1);
  fill->SetFullyConnected(false);
  fill->Update();
  const uint8_t* f = fill->GetOutput()->GetBufferPointer();
  size_t count = 0;
  for (size_t i = 0; i < nv; ++i) count += (out.mask.data[i] = f[i] ? 1 : 0);
  out.volume_ml = static_cast<double>(count) * g.spacing[0] * g.spacing[1] * g.spacing[2] / 1000.0;
  if (out.volume_ml < o.min_ml) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "the brain found holds %.1f ml, under %.0f ml", out.volume_ml, o.min_ml);
    out.note = buf;
    return out;
  }
  out.found = true;
  return out;
}

}  // namespace aneura
