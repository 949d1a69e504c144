// One place where a Geometry becomes an ITK image's grid: size, spacing, origin and direction
// (both are in LPS world space, so they copy over unchanged). A 4D image's fourth axis holds the
// volumes (spacing 1, origin 0).
#pragma once
#include <itkImage.h>

#include <algorithm>

#include "core/volume.hpp"

namespace aneura {

// An ITK image on `g`'s grid (not allocated: Allocate() it, or import a buffer).
template <class Image>
typename Image::Pointer make_itk_image(const Geometry& g, int64_t volumes = 1) {
  constexpr unsigned D = Image::ImageDimension;
  auto img = Image::New();
  typename Image::SizeType size;
  typename Image::SpacingType spacing;
  typename Image::PointType origin;
  typename Image::DirectionType dir;
  dir.SetIdentity();
  for (unsigned a = 0; a < D; ++a) {
    size[a] = static_cast<itk::SizeValueType>(a < 3 ? g.size[a] : volumes);
    spacing[a] = a < 3 ? g.spacing[a] : 1.0;
    origin[a] = a < 3 ? g.origin[a] : 0.0;
  }
  for (unsigned r = 0; r < 3; ++r)
    for (unsigned c = 0; c < 3; ++c) dir[r][c] = g.direction[r][c];
  img->SetRegions(size);
  img->SetSpacing(spacing);
  img->SetOrigin(origin);
  img->SetDirection(dir);
  return img;
}

// A copy of the first volume of `v` as an ITK image on its grid.
template <class Pixel>
typename itk::Image<Pixel, 3>::Pointer to_itk(const Volume<Pixel>& v) {
  auto img = make_itk_image<itk::Image<Pixel, 3>>(v.geom);
  img->Allocate();
  std::copy(v.data.begin(), v.data.begin() + v.geom.voxel_count(), img->GetBufferPointer());
  return img;
}

}  // namespace aneura
