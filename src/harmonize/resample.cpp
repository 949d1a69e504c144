#include "harmonize/resample.hpp"

#include <itkBSplineInterpolateImageFunction.h>
#include <itkIdentityTransform.h>
#include <itkImage.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkResampleImageFilter.h>

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace aneura {

namespace {

using Image = itk::Image<float, 3>;

// Wraps one 3D volume of `v` as an ITK image without copying.
Image::Pointer wrap(const Volume<float>& v, int64_t t) {
  auto img = Image::New();
  Image::SizeType size;
  Image::SpacingType spacing;
  Image::PointType origin;
  Image::DirectionType dir;
  for (unsigned a = 0; a < 3; ++a) {
    size[a] = static_cast<itk::SizeValueType>(v.geom.size[a]);
    spacing[a] = v.geom.spacing[a];
    origin[a] = v.geom.origin[a];
    for (unsigned r = 0; r < 3; ++r) dir[r][a] = v.geom.direction[r][a];
  }
  img->SetRegions(size);
  img->SetSpacing(spacing);
  img->SetOrigin(origin);
  img->SetDirection(dir);
  const size_t n = static_cast<size_t>(v.geom.voxel_count());
  img->GetPixelContainer()->SetImportPointer(const_cast<float*>(v.data.data()) + t * n, n, false);
  return img;
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

Volume<float> resample_to(const Volume<float>& in, const Geometry& grid, Interp interp, float outside) {
  Volume<float> out(grid, in.volumes);
  const size_t n = static_cast<size_t>(grid.voxel_count());
  for (int64_t t = 0; t < in.volumes; ++t) {
    auto filter = itk::ResampleImageFilter<Image, Image>::New();
    filter->SetInput(wrap(in, t));
    filter->SetTransform(itk::IdentityTransform<double, 3>::New());
    switch (interp) {
      case Interp::Nearest: filter->SetInterpolator(itk::NearestNeighborInterpolateImageFunction<Image, double>::New()); break;
      case Interp::Linear: filter->SetInterpolator(itk::LinearInterpolateImageFunction<Image, double>::New()); break;
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

Volume<float> resample(const Volume<float>& in, const ResampleOptions& o) {
  const Geometry target = resampled_grid(in.geom, o.spacing);
  const auto& s = in.geom.spacing;
  const int thick = static_cast<int>(std::max_element(s.begin(), s.end()) - s.begin());
  const double thin = *std::min_element(s.begin(), s.end());
  if (o.interp == Interp::Nearest || s[thick] <= o.anisotropy_ratio * thin)
    return resample_to(in, target, o.interp, o.outside);
  // Pass 1: in-plane only (the thick axis keeps its slices, so no kernel crosses them).
  Geometry mid = target;
  mid.size[thick] = in.geom.size[thick];
  mid.spacing[thick] = in.geom.spacing[thick];
  const Volume<float> in_plane = resample_to(in, mid, o.interp, o.outside);
  // Pass 2: along the thick axis, linearly.
  return resample_to(in_plane, target, Interp::Linear, o.outside);
}

}  // namespace aneura
