#include "core/geometry.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/volume.hpp"

namespace aneura {
namespace {

Geometry coronal_geometry() {
  Geometry g;
  g.size = {4, 3, 5};
  g.spacing = {0.5, 2.0, 1.5};
  g.origin = {10, -20, 30};
  // i -> +x (L), j -> -z (I), k -> +y (P): a coronal DICOM stack
  g.direction = {{{1, 0, 0}, {0, 0, 1}, {0, -1, 0}}};
  return g;
}

TEST(Geometry, RotationXyzTurnsAboutXThenYThenZ) {
  const double q = M_PI / 2;
  const auto near = [](const Vec3& a, const Vec3& b) { return norm(a - b) < 1e-12; };
  EXPECT_TRUE(near(rotation_xyz(0, 0, q) * Vec3{1, 0, 0}, {0, 1, 0}));  // about z: x -> y
  EXPECT_TRUE(near(rotation_xyz(q, 0, 0) * Vec3{0, 1, 0}, {0, 0, 1}));  // about x: y -> z
  EXPECT_TRUE(near(rotation_xyz(0, q, 0) * Vec3{0, 0, 1}, {1, 0, 0}));  // about y: z -> x
  // x first, then z: y -> z (about x) stays z (about z)
  EXPECT_TRUE(near(rotation_xyz(q, 0, q) * Vec3{0, 1, 0}, {0, 0, 1}));
  // z after x: x stays x (about x), then -> y (about z)
  EXPECT_TRUE(near(rotation_xyz(q, 0, q) * Vec3{1, 0, 0}, {0, 1, 0}));
}

TEST(Geometry, IndexToWorldMatchesHandComputation) {
  const Geometry g = coronal_geometry();
  const Vec3 p = g.index_to_world({2, 1, 3});
  // origin + 2*0.5*(1,0,0) + 1*2*(0,0,-1) + 3*1.5*(0,1,0)
  EXPECT_DOUBLE_EQ(p[0], 11.0);
  EXPECT_DOUBLE_EQ(p[1], -15.5);
  EXPECT_DOUBLE_EQ(p[2], 28.0);
}

TEST(Geometry, WorldToIndexInvertsIndexToWorld) {
  const Geometry g = coronal_geometry();
  const Vec3 ijk{1.25, 2.5, -0.75};
  const Vec3 back = g.world_to_index(g.index_to_world(ijk));
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(back[a], ijk[a], 1e-12);
}

TEST(Geometry, RasAffineNegatesXAndYRows) {
  const Mat4 a = coronal_geometry().affine_ras();
  // column 0: i axis (1,0,0)*0.5 in LPS -> (-0.5, 0, 0) in RAS
  EXPECT_DOUBLE_EQ(a[0][0], -0.5);
  EXPECT_DOUBLE_EQ(a[2][1], -2.0);
  EXPECT_DOUBLE_EQ(a[1][2], -1.5);
  EXPECT_DOUBLE_EQ(a[0][3], -10.0);
  EXPECT_DOUBLE_EQ(a[1][3], 20.0);
  EXPECT_DOUBLE_EQ(a[2][3], 30.0);
  const Geometry back = Geometry::from_affine_ras(a, {4, 3, 5});
  for (int r = 0; r < 3; ++r) {
    EXPECT_NEAR(back.origin[r], coronal_geometry().origin[r], 1e-12);
    EXPECT_NEAR(back.spacing[r], coronal_geometry().spacing[r], 1e-12);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(back.direction[r][c], coronal_geometry().direction[r][c], 1e-12);
  }
}

TEST(Geometry, OrientationCode) {
  EXPECT_EQ(Geometry{}.orientation_code(), "LPS");
  EXPECT_EQ(coronal_geometry().orientation_code(), "LIP");
}

TEST(Volume, FlipKeepsEveryVoxelAtItsWorldPosition) {
  Volume<float> v(coronal_geometry());
  for (size_t n = 0; n < v.data.size(); ++n) v.data[n] = static_cast<float>(n);
  for (int axis = 0; axis < 3; ++axis) {
    const Volume<float> f = flip_axis(v, axis);
    for (int64_t k = 0; k < 5; ++k)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t i = 0; i < 4; ++i) {
          const Vec3 w = f.geom.index_to_world({double(i), double(j), double(k)});
          const Vec3 src = v.geom.world_to_index(w);
          const float expected = v.at(std::lround(src[0]), std::lround(src[1]), std::lround(src[2]));
          ASSERT_EQ(f.at(i, j, k), expected);
        }
    const Volume<float> twice = flip_axis(f, axis);
    EXPECT_EQ(twice.data, v.data);
  }
}

}  // namespace
}  // namespace aneura
