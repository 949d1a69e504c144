// Resampling onto a new voxel grid with ITK's ResampleImageFilter.
//
// Direction of the transform: for every OUTPUT voxel centre p (world, LPS mm) the value is the
// INPUT image interpolated at p (identity transform; the grids differ only in spacing/size/origin).
// Use Linear or BSpline for intensities and Nearest for label maps. Points outside the input get
// `outside` (e.g. -1024 for CT HU, 0 for labels).
#pragma once
#include "core/volume.hpp"

namespace aneura {

enum class Interp { Nearest, Linear, BSpline };

// Same origin and direction, new spacing; size = round(old size * old spacing / new spacing).
Geometry resampled_grid(const Geometry& in, const Vec3& spacing);

// Resamples onto any grid (volumes stacked along t are resampled one by one).
Volume<float> resample_to(const Volume<float>& in, const Geometry& grid, Interp interp, float outside = 0);

struct ResampleOptions {
  Vec3 spacing{1, 1, 1};            // target spacing, mm
  Interp interp = Interp::Linear;
  // Anisotropy-aware (seed 003, as nnU-Net): when the largest input spacing exceeds the smallest
  // by this factor, resample in-plane with `interp` first, then along the thick axis linearly, so
  // a smooth kernel never reaches across widely spaced slices.
  double anisotropy_ratio = 3.0;
  float outside = 0;
};

Volume<float> resample(const Volume<float>& in, const ResampleOptions& o);

}  // namespace aneura
