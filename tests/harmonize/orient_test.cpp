#include "harmonize/orient.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"

namespace aneura {
namespace {

Volume<float> numbered(const Geometry& g) {
  Volume<float> v(g);
  for (size_t n = 0; n < v.data.size(); ++n) v.data[n] = static_cast<float>(n);
  return v;
}

void expect_same_world_values(const Volume<float>& a, const Volume<float>& b) {
  for (int64_t k = 0; k < a.geom.size[2]; ++k)
    for (int64_t j = 0; j < a.geom.size[1]; ++j)
      for (int64_t i = 0; i < a.geom.size[0]; ++i) {
        const Vec3 r = b.geom.world_to_index(a.geom.index_to_world({double(i), double(j), double(k)}));
        const int64_t bi = std::lround(r[0]), bj = std::lround(r[1]), bk = std::lround(r[2]);
        ASSERT_NEAR(r[0], bi, 1e-9);
        ASSERT_NEAR(r[1], bj, 1e-9);
        ASSERT_NEAR(r[2], bk, 1e-9);
        ASSERT_EQ(a.at(i, j, k), b.at(bi, bj, bk));
      }
}

struct Case {
  const char* name;
  Mat3 direction;
  const char* before;
};

class Orient : public ::testing::TestWithParam<Case> {};

TEST_P(Orient, ToRasAndBackIsExact) {
  Geometry g;
  g.size = {4, 5, 3};
  g.spacing = {0.5, 0.8, 2.0};
  g.origin = {10, -20, 30};
  g.direction = GetParam().direction;
  const Volume<float> v = numbered(g);
  EXPECT_EQ(g.orientation_code(), GetParam().before);
  const Volume<float> ras = reorient(v, "RAS");
  EXPECT_EQ(ras.geom.orientation_code(), "RAS");
  expect_same_world_values(v, ras);
  const Volume<float> back = reorient(ras, GetParam().before);
  EXPECT_EQ(back.geom.size, v.geom.size);
  EXPECT_EQ(back.data, v.data);
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(back.geom.origin[r], v.geom.origin[r], 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Planes, Orient,
                         ::testing::Values(Case{"axial", {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}}, "LPS"},
                                           // coronal DICOM: i -> L, j -> I, k -> P
                                           Case{"coronal", {{{1, 0, 0}, {0, 0, 1}, {0, -1, 0}}}, "LIP"},
                                           // sagittal DICOM: i -> P, j -> I, k -> R
                                           Case{"sagittal", {{{0, 0, -1}, {1, 0, 0}, {0, -1, 0}}}, "PIR"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Orient, LpsToRasFlipsTheFirstTwoAxes) {
  Geometry g;
  g.size = {3, 2, 2};
  g.spacing = {1, 1, 1};
  const Volume<float> v = numbered(g);
  const AxisMap m = orientation_map(g, "RAS");
  EXPECT_EQ(m.from[0], 0);
  EXPECT_EQ(m.from[1], 1);
  EXPECT_EQ(m.from[2], 2);
  EXPECT_TRUE(m.flip[0]);
  EXPECT_TRUE(m.flip[1]);
  EXPECT_FALSE(m.flip[2]);
  const Volume<float> r = reorient(v, m);
  // voxel (0,0,0) of RAS is input voxel (2,1,0); origin moved there
  EXPECT_EQ(r.at(0, 0, 0), v.at(2, 1, 0));
  EXPECT_DOUBLE_EQ(r.geom.origin[0], 2.0);
  EXPECT_DOUBLE_EQ(r.geom.origin[1], 1.0);
}

TEST(Orient, BadCodesAreUsageErrors) {
  EXPECT_THROW(orientation_map(Geometry{}, "RA"), Error);
  EXPECT_THROW(orientation_map(Geometry{}, "RAX"), Error);
  EXPECT_THROW(orientation_map(Geometry{}, "RLS"), Error);
}

}  // namespace
}  // namespace aneura
