// Volume comparisons shared by the tests.
#pragma once
#include <gtest/gtest.h>

#include <cmath>

#include "core/volume.hpp"
#include "harmonize/orient.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"

namespace aneura::test {

// Compares two volumes in world space: each voxel centre of `ours` must be a voxel centre of
// `ref` within 1e-3 mm, holding the same value. Works whatever the axis order and flips.
inline void expect_same_world_grid(const Volume<float>& ours, const Volume<float>& ref, double tol = 0) {
  ASSERT_EQ(ours.geom.voxel_count() * ours.volumes, ref.geom.voxel_count() * ref.volumes);
  ASSERT_EQ(ours.volumes, ref.volumes);
  const auto& n = ours.geom.size;
  // The grid: every corner maps onto a corner within 1e-3 mm.
  for (int c = 0; c < 8; ++c) {
    const Vec3 ijk{double((c & 1) ? n[0] - 1 : 0), double((c & 2) ? n[1] - 1 : 0), double((c & 4) ? n[2] - 1 : 0)};
    const Vec3 w = ours.geom.index_to_world(ijk);
    const Vec3 r = ref.geom.world_to_index(w);
    const Vec3 snapped{std::round(r[0]), std::round(r[1]), std::round(r[2])};
    EXPECT_LT(norm(ref.geom.index_to_world(snapped) - w), 1e-3) << "corner " << c;
  }
  const size_t nvox = static_cast<size_t>(ours.geom.voxel_count());
  size_t bad = 0;
  for (int64_t v = 0; v < ours.volumes; ++v)
    for (int64_t k = 0; k < n[2]; ++k)
      for (int64_t j = 0; j < n[1]; ++j)
        for (int64_t i = 0; i < n[0]; ++i) {
          const Vec3 r = ref.geom.world_to_index(ours.geom.index_to_world({double(i), double(j), double(k)}));
          const int64_t ri = std::lround(r[0]), rj = std::lround(r[1]), rk = std::lround(r[2]);
          if (ri < 0 || rj < 0 || rk < 0 || ri >= ref.geom.size[0] || rj >= ref.geom.size[1] ||
              rk >= ref.geom.size[2]) {
            ++bad;
            continue;
          }
          const float a = ours.data[v * nvox + ours.offset(i, j, k)];
          const float b = ref.data[v * nvox + ref.offset(ri, rj, rk)];
          if (std::fabs(a - b) > tol) ++bad;
        }
  EXPECT_EQ(bad, 0u);
}

// A read series in the voxel order dcm2niix writes: rows flipped, and 3D acquisitions turned to
// their nearest canonical orientation (what `aneura convert --layout dcm2niix` writes).
inline Volume<float> dcm2niix_layout(const DicomSeries& s) {
  const Volume<float> v = to_dcm2niix_layout(s.image);
  return dcm2niix_rotates(s.plan) ? reorient(v, dcm2niix_rotation(v.geom)) : v;
}

// Max abs difference of the two RAS affines (rows 0..2).
inline double affine_diff(const Geometry& a, const Geometry& b) {
  const Mat4 x = a.affine_ras(), y = b.affine_ras();
  double worst = 0;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) worst = std::max(worst, std::fabs(x[r][c] - y[r][c]));
  return worst;
}

}  // namespace aneura::test
