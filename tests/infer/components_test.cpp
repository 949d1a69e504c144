// Connected-component post-processing of the maps: components, their size and centre, dropping the
// small ones, points at the centre of mass, and the vessel stage's clean-up.
#include "infer/components.hpp"

#include <gtest/gtest.h>

#include "core/labels.hpp"
#include "infer/vessels.hpp"
#include "model/input.hpp"

namespace aneura {
namespace {

Geometry grid(std::array<int64_t, 3> n, Vec3 mm) {
  Geometry g;
  g.size = n;
  g.spacing = mm;
  g.direction = kRasDirection;
  return g;
}

// Aneurysm maps [14, X, Y, Z]: background 1 everywhere but where `any` (1 - p(background)) is set,
// which goes to location class `column` + 1.
torch::Tensor maps_from(const torch::Tensor& any, int column) {
  auto m = torch::zeros({14, any.size(0), any.size(1), any.size(2)});
  m[0] = 1 - any;
  m[column + 1] = any;
  return m;
}

TEST(Components, SizesAndWeightedCentresOfKnownBlobs) {
  const Geometry g = grid({12, 10, 8}, {1, 2, 0.5});
  auto v = torch::zeros({12, 10, 8});
  v.slice(0, 2, 5).slice(1, 3, 6).slice(2, 1, 4).fill_(0.8f);  // 3 x 3 x 3 cube, centre (3, 4, 2)
  v[3][4][3] = 0.9f;                                           // heavier on one side: centre moves up z
  v[10][1][6] = 0.7f;                                          // a single voxel
  v[10][1][7] = 0.4f;                                          // under the threshold: not part of it
  const Components c = connected_components(v, 0.5, g);
  ASSERT_EQ(c.volume_mm3.size(), 2u);
  const int32_t cube = c.labels[3][4][2].item<int32_t>(), speck = c.labels[10][1][6].item<int32_t>();
  ASSERT_GT(cube, 0);
  ASSERT_GT(speck, 0);
  ASSERT_NE(cube, speck);
  EXPECT_EQ(c.labels[10][1][7].item<int32_t>(), 0);
  EXPECT_EQ(c.labels[0][0][0].item<int32_t>(), 0);
  EXPECT_NEAR(c.volume_mm3[cube - 1], 27 * 1.0, 1e-9);  // voxels of 1 x 2 x 0.5 mm
  EXPECT_NEAR(c.volume_mm3[speck - 1], 1.0, 1e-9);
  const double total = 26 * 0.8 + 0.9;
  EXPECT_NEAR(c.centre[cube - 1][0], 3.0, 1e-5);
  EXPECT_NEAR(c.centre[cube - 1][1], 4.0, 1e-5);
  EXPECT_NEAR(c.centre[cube - 1][2], (2 * total + 0.1 * 1) / total, 1e-5);
  EXPECT_NEAR(c.peak[cube - 1], 0.9f, 1e-6);
  EXPECT_NEAR(c.centre[speck - 1][0], 10, 1e-6);
  // face connectivity: two voxels touching at an edge are two components
  auto e = torch::zeros({4, 4, 4});
  e[1][1][1] = 1;
  e[2][2][1] = 1;
  EXPECT_EQ(connected_components(e, 0.5, grid({4, 4, 4}, {1, 1, 1})).volume_mm3.size(), 2u);
}

TEST(Components, SmallComponentsAreDroppedAndTheSeriesProbabilityFollows) {
  const Geometry g = grid({16, 16, 16}, {1, 1, 1});
  auto any = torch::zeros({16, 16, 16});
  any.slice(0, 2, 5).slice(1, 2, 5).slice(2, 2, 5).fill_(0.7f);  // 27 mm^3
  any[12][12][12] = 0.95f;                                       // 1 mm^3: the series' peak
  any[12][12][13] = 0.3f;                                        // its rim, under the threshold
  auto maps = maps_from(any, 4);
  auto before = maps.clone();
  EXPECT_EQ(drop_small_components(maps, g, 0.5, 0), 0);  // off: nothing changes
  EXPECT_TRUE(torch::equal(maps, before));
  EXPECT_NEAR(heatmap_probabilities(maps)[kPresentColumn].item<double>(), 0.95, 1e-6);
  EXPECT_EQ(drop_small_components(maps, g, 0.5, 8), 1);
  EXPECT_NEAR(heatmap_probabilities(maps)[kPresentColumn].item<double>(), 0.7, 1e-6);
  EXPECT_NEAR(heatmap_probabilities(maps)[4].item<double>(), 0.7, 1e-6);
  EXPECT_EQ(maps[0][12][12][12].item<float>(), 1.0f);          // the speck is background now
  EXPECT_NEAR(maps[0][12][12][13].item<float>(), 0.7f, 1e-6);  // the rest untouched
  EXPECT_TRUE(torch::allclose(maps.sum(0), torch::ones({16, 16, 16})));
  // everything small: the series keeps only what is under the threshold
  EXPECT_EQ(drop_small_components(maps, g, 0.5, 100), 1);
  EXPECT_NEAR(heatmap_probabilities(maps)[kPresentColumn].item<double>(), 0.3, 1e-6);
}

TEST(Components, PointsMoveToTheirComponentsCentreOfMass) {
  const Geometry g = grid({16, 16, 16}, {1, 1, 1});
  auto any = torch::zeros({16, 16, 16});
  any.slice(0, 4, 9).slice(1, 6, 7).slice(2, 6, 7).fill_(0.6f);  // a rod x 4..8 at (6, 6): centre x = 6
  any[4][6][6] = 0.9f;                                           // its peak at one end
  auto maps = maps_from(any, 2);
  PointOptions po;
  po.max_points = 2;
  po.min_probability = 0.0;
  const auto field = torch::ones({16, 16, 16}, torch::kDouble);
  auto pts = heatmap_points(maps, field, g, po);
  ASSERT_EQ(pts.size(), 2u);
  const Vec3 peak = g.index_to_world({4, 6, 6});
  EXPECT_NEAR(norm(pts[0].world_lps - peak), 0, 1e-9);
  const Vec3 second = pts[1].world_lps;  // outside every component: stays where it is
  points_to_centres(pts, maps, g, 0.5);
  const double x = (0.9 * 4 + 0.6 * (5 + 6 + 7 + 8)) / (0.9 + 4 * 0.6);
  EXPECT_NEAR(norm(pts[0].world_lps - g.index_to_world({x, 6, 6})), 0, 1e-5);
  EXPECT_NEAR(norm(pts[1].world_lps - second), 0, 1e-9);
}

TEST(Components, TheVesselStageDropsSpecksBeforeMeasuringTheVessels) {
  const Geometry g = grid({20, 20, 20}, {2, 2, 2});
  auto t = torch::zeros({14, 20, 20, 20});
  t[0].fill_(1);
  t[0].select(2, 7).select(1, 5).fill_(0.1f);  // a vessel along x: 20 voxels of 8 mm^3
  t[9].select(2, 7).select(1, 5).fill_(0.9f);
  t[0][15][15][15] = 0.2f;  // a speck
  t[3][15][15][15] = 0.8f;
  VesselStageOptions o;
  o.min_ml = 0.1;
  EXPECT_NEAR(make_vessel_map(t, g, o).volume_ml, 21 * 8 / 1000.0, 1e-9);
  o.min_component_mm3 = 20;
  const VesselMap m = make_vessel_map(t, g, o);
  EXPECT_EQ(m.dropped_components, 1);
  EXPECT_NEAR(m.volume_ml, 20 * 8 / 1000.0, 1e-9);
  EXPECT_NEAR(m.hi[2], m.lo[2], 1e-9);  // the box is the vessel's alone
}

}  // namespace
}  // namespace aneura
