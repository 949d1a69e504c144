#include "harmonize/resample.hpp"

#include <itkBSplineInterpolateImageFunction.h>
#include <itkIdentityTransform.h>
#include <itkImage.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkResampleImageFilter.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/error.hpp"
#include "io/itk_image.hpp"

namespace aneura {

namespace {

using Image = itk::Image<float, 3>;

// Wraps one 3D volume of `v` as an ITK image without copying.
Image::Pointer wrap(const Volume<float>& v, int64_t t) {
  auto img = make_itk_image<Image>(v.geom);
  const size_t n = static_cast<size_t>(v.geom.voxel_count());
  img->GetPixelContainer()->SetImportPointer(const_cast<float*>(v.data.data()) + t * n, n, false);
  return img;
}

// Target axis o runs along source axis from[o] (sign +1/-1) when both grids are axis-aligned
// with each other (a reorientation); false otherwise.
bool axis_aligned(const Geometry& src, const Geometry& dst, int from[3], int sign[3]) {
  bool used[3] = {false, false, false};
  for (int o = 0; o < 3; ++o) {
    from[o] = -1;
    for (int a = 0; a < 3; ++a) {
      const double d = dot(dst.axis(o), src.axis(a));
      if (!used[a] && std::fabs(std::fabs(d) - 1.0) < 1e-9) {
        from[o] = a;
        sign[o] = d > 0 ? 1 : -1;
        used[a] = true;
        break;
      }
    }
    if (from[o] < 0) return false;
  }
  return true;
}

// Trilinear interpolation of axis-aligned grids as three 1D passes (exactly the trilinear value,
// since the kernel is separable). Same conventions as ITK's linear interpolator: points within
// half a voxel outside the first/last centre take the edge value, farther ones `outside`.
// Measured by bench/bench_preprocess.sh against ITK's ResampleImageFilter; equal results are
// tested in resample_test.
template <class T>
void linear_axis_aligned(const Volume<T>& in, int64_t t, const Geometry& grid, const int from[3], const int sign[3],
                         float outside, float* out) {
  const Geometry& g = in.geom;
  // Source continuous index of target index 0 along each target axis, and its step.
  const Vec3 c0 = g.world_to_index(grid.origin);
  struct Axis {
    std::vector<int64_t> lo;
    std::vector<float> w;
    std::vector<uint8_t> valid;
  };
  Axis axes[3];  // per SOURCE axis: sampling positions for the target axis mapped onto it
  int64_t new_size[3];
  for (int o = 0; o < 3; ++o) {
    const int a = from[o];
    const double step = sign[o] * grid.spacing[o] / g.spacing[a];
    Axis& ax = axes[a];
    new_size[a] = grid.size[o];
    for (int64_t i = 0; i < grid.size[o]; ++i) {
      const double c = c0[a] + i * step;
      const int64_t n = g.size[a];
      if (c < -0.5 || c > n - 0.5) {
        ax.lo.push_back(0), ax.w.push_back(0), ax.valid.push_back(0);
        continue;
      }
      const double cc = std::clamp(c, 0.0, double(n - 1));
      int64_t lo = static_cast<int64_t>(std::floor(cc));
      if (lo >= n - 1) lo = std::max<int64_t>(0, n - 2);
      ax.lo.push_back(lo);
      ax.w.push_back(n == 1 ? 0.f : static_cast<float>(cc - lo));
      ax.valid.push_back(1);
    }
  }
  const int64_t n0 = g.size[0], n1 = g.size[1], n2 = g.size[2];
  const int64_t m0 = new_size[0], m1 = new_size[1], m2 = new_size[2];
  const T* src = in.data.data() + t * static_cast<size_t>(g.voxel_count());
  // The passes run one source slice at a time: a slice through axis 0 then axis 1 becomes a plane
  // of m0 x m1 values, and each target slice along axis 2 blends two planes. Only the source rows
  // the second pass reads are interpolated, and each plane is made once (the slices a target
  // reads only move one way), so the working set is a few planes instead of two copies of the
  // volume; the arithmetic is the same, value for value.
  std::vector<uint8_t> rows(static_cast<size_t>(n1), 0);
  for (int64_t lo : axes[1].lo)
    rows[static_cast<size_t>(lo)] = 1, rows[static_cast<size_t>(std::min(lo + 1, n1 - 1))] = 1;
  std::vector<float> lines(static_cast<size_t>(m0 * n1));  // a slice after pass 0 (the rows read)
  auto make_plane = [&](int64_t k, float* plane) {
    for (int64_t j = 0; j < n1; ++j) {
      if (!rows[static_cast<size_t>(j)]) continue;
      const T* line = src + (k * n1 + j) * n0;
      float* o = lines.data() + j * m0;
      for (int64_t i = 0; i < m0; ++i) {
        const int64_t lo = axes[0].lo[i];
        const float w = axes[0].w[i];
        const float a = static_cast<float>(line[lo]);
        const float b = n0 > 1 ? static_cast<float>(line[lo + 1]) : a;
        o[i] = a + w * (b - a);
      }
    }
    for (int64_t j = 0; j < m1; ++j) {
      const int64_t lo = axes[1].lo[j];
      const float w = axes[1].w[j];
      const float* a = lines.data() + lo * m0;
      const float* b = n1 > 1 ? a + m0 : a;
      float* o = plane + j * m0;
      for (int64_t i = 0; i < m0; ++i) o[i] = a[i] + w * (b[i] - a[i]);
    }
  };
  // Two planes kept, tagged by their source slice.
  std::vector<float> slot_data[2] = {std::vector<float>(static_cast<size_t>(m0 * m1)),
                                     std::vector<float>(static_cast<size_t>(m0 * m1))};
  int64_t slot_slice[2] = {-1, -1};
  auto plane = [&](int64_t k, int64_t keep) -> const float* {
    for (int s = 0; s < 2; ++s)
      if (slot_slice[s] == k) return slot_data[s].data();
    const int s = slot_slice[0] == keep ? 1 : 0;
    make_plane(k, slot_data[s].data());
    slot_slice[s] = k;
    return slot_data[s].data();
  };
  // Pass along source axis 2, writing straight into the target layout.
  const int64_t tn0 = grid.size[0], tn1 = grid.size[1];
  int64_t stride_out[3];  // output stride for a unit step along each SOURCE axis
  for (int o = 0; o < 3; ++o) stride_out[from[o]] = o == 0 ? 1 : o == 1 ? tn0 : tn0 * tn1;
  for (int64_t k = 0; k < m2; ++k) {
    const int64_t lo = axes[2].lo[k];
    const float w = axes[2].w[k];
    const bool vk = axes[2].valid[k];
    const float* a = vk ? plane(lo, n2 > 1 ? lo + 1 : -1) : nullptr;
    const float* b = vk ? (n2 > 1 ? plane(lo + 1, lo) : a) : nullptr;
    for (int64_t j = 0; j < m1; ++j) {
      const bool vj = vk && axes[1].valid[j];
      for (int64_t i = 0; i < m0; ++i) {
        const size_t idx = static_cast<size_t>(i * stride_out[0] + j * stride_out[1] + k * stride_out[2]);
        const size_t s = static_cast<size_t>(j * m0 + i);
        out[idx] = (vj && axes[0].valid[i]) ? a[s] + w * (b[s] - a[s]) : outside;
      }
    }
  }
}

}  // namespace

Geometry resampled_grid(const Geometry& in, const Vec3& spacing) {
  Geometry g = in;
  for (int a = 0; a < 3; ++a) {
    if (!(spacing[a] > 0)) throw Error(ErrorCode::Usage, "target spacing must be positive");
    g.spacing[a] = spacing[a];
    g.size[a] = std::max<int64_t>(1, std::llround(in.size[a] * in.spacing[a] / spacing[a]));
  }
  return g;
}

Volume<float> resample_to(const Volume<float>& in, const Geometry& grid, Interp interp, float outside, bool itk_only) {
  Volume<float> out(grid, in.volumes);
  const size_t n = static_cast<size_t>(grid.voxel_count());
  int from[3], sign[3];
  const bool aligned = !itk_only && interp == Interp::Linear && axis_aligned(in.geom, grid, from, sign);
  for (int64_t t = 0; t < in.volumes; ++t) {
    if (aligned) {
      linear_axis_aligned(in, t, grid, from, sign, outside, out.data.data() + t * n);
      continue;
    }
    auto filter = itk::ResampleImageFilter<Image, Image>::New();
    filter->SetInput(wrap(in, t));
    filter->SetTransform(itk::IdentityTransform<double, 3>::New());
    switch (interp) {
      case Interp::Nearest:
        filter->SetInterpolator(itk::NearestNeighborInterpolateImageFunction<Image, double>::New());
        break;
      case Interp::Linear:
        filter->SetInterpolator(itk::LinearInterpolateImageFunction<Image, double>::New());
        break;
      case Interp::BSpline: {
        auto b = itk::BSplineInterpolateImageFunction<Image, double, double>::New();
        b->SetSplineOrder(3);
        filter->SetInterpolator(b);
        break;
      }
    }
    Image::SizeType size;
    Image::SpacingType spacing;
    Image::PointType origin;
    Image::DirectionType dir;
    for (unsigned a = 0; a < 3; ++a) {
      size[a] = static_cast<itk::SizeValueType>(grid.size[a]);
      spacing[a] = grid.spacing[a];
      origin[a] = grid.origin[a];
      for (unsigned r = 0; r < 3; ++r) dir[r][a] = grid.direction[r][a];
    }
    filter->SetSize(size);
    filter->SetOutputSpacing(spacing);
    filter->SetOutputOrigin(origin);
    filter->SetOutputDirection(dir);
    filter->SetDefaultPixelValue(outside);
    filter->Update();
    const float* res = filter->GetOutput()->GetBufferPointer();
    std::copy(res, res + n, out.data.begin() + t * n);
  }
  return out;
}

namespace {
bool anisotropic(const Geometry& g, double ratio) {
  const auto& s = g.spacing;
  return *std::max_element(s.begin(), s.end()) > ratio * *std::min_element(s.begin(), s.end());
}
}  // namespace

template <class T>
Volume<float> resample_onto(const Volume<T>& in, const Geometry& grid, Interp interp, float outside,
                            double anisotropy_ratio, const Geometry* region) {
  if constexpr (!std::is_same_v<T, float>) {
    int from[3], sign[3];
    if (interp == Interp::Linear && !anisotropic(in.geom, anisotropy_ratio) &&
        axis_aligned(in.geom, grid, from, sign)) {
      Volume<float> out(grid, in.volumes);
      const size_t n = static_cast<size_t>(grid.voxel_count());
      for (int64_t t = 0; t < in.volumes; ++t)
        linear_axis_aligned(in, t, grid, from, sign, outside, out.data.data() + t * n);
      return out;
    }
    Volume<float> f(in.geom, in.volumes);  // every other case runs on float
    std::copy(in.data.begin(), in.data.end(), f.data.begin());
    return resample_onto(f, grid, interp, outside, anisotropy_ratio, region);
  } else {
    const auto& s = in.geom.spacing;
    const int thick = static_cast<int>(std::max_element(s.begin(), s.end()) - s.begin());
    if (interp == Interp::Nearest || !anisotropic(in.geom, anisotropy_ratio))
      return resample_to(in, grid, interp, outside);
    // Pass 1: in-plane only, on the input's own axes (the thick axis keeps its slices, so no
    // kernel reaches across them).
    const double fine = *std::min_element(grid.spacing.begin(), grid.spacing.end());
    Vec3 mid_spacing{fine, fine, fine};
    mid_spacing[thick] = s[thick];
    const Volume<float> in_plane =
        resample_to(in, resampled_grid(region ? *region : in.geom, mid_spacing), interp, outside);
    // Pass 2: onto the target grid, linearly.
    return resample_to(in_plane, grid, Interp::Linear, outside);
  }
}

template Volume<float> resample_onto(const Volume<float>&, const Geometry&, Interp, float, double, const Geometry*);
template Volume<float> resample_onto(const Volume<int16_t>&, const Geometry&, Interp, float, double, const Geometry*);

Volume<float> resample(const Volume<float>& in, const ResampleOptions& o) {
  return resample_onto(in, resampled_grid(in.geom, o.spacing), o.interp, o.outside, o.anisotropy_ratio);
}

}  // namespace aneura
