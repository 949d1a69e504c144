// The vessel stage: from a vessel model's territory maps to where the aneurysm stage looks and
// which location a detection takes.
#include <gtest/gtest.h>

#include "core/labels.hpp"
#include "infer/sliding_window.hpp"
#include "infer/vessels.hpp"
#include "model/input.hpp"
#include "model/registry.hpp"

namespace aneura {
namespace {

// A RAS grid of `n` voxels of `mm` whose voxel (0, 0, 0) is at world LPS `origin`.
Geometry ras_grid(std::array<int64_t, 3> n, double mm, Vec3 origin) {
  Geometry g;
  g.size = n;
  g.spacing = {mm, mm, mm};
  g.direction = kRasDirection;
  g.origin = origin;
  return g;
}

// Territory softmax [14, X, Y, Z] on `g`: background everywhere except a straight vessel along the
// grid's first axis at (y, z) = (cy, cz), of cowseg value `value`, with probability `p`.
torch::Tensor tube(const Geometry& g, int64_t cy, int64_t cz, int value, float p) {
  auto t = torch::zeros({14, g.size[0], g.size[1], g.size[2]});
  t[0].fill_(1);
  t[0].select(2, cz).select(1, cy).fill_(1 - p);  // [X, Y, Z]: z, then y
  t[value].select(2, cz).select(1, cy).fill_(p);
  return t;
}

TEST(VesselStage, MapFindsTheVesselItsVolumeAndBounds) {
  // 2 mm grid, 20^3; voxel (i, j, k) at LPS (-2i, -2j, 2k)
  const Geometry g = ras_grid({20, 20, 20}, 2, {0, 0, 0});
  VesselStageOptions o;
  o.min_ml = 0.1;
  VesselMap m = make_vessel_map(tube(g, 5, 7, 9, 0.9f), g, o);
  ASSERT_TRUE(m.found);
  EXPECT_NEAR(m.volume_ml, 20 * 8 / 1000.0, 1e-9);  // 20 voxels of 8 mm^3
  EXPECT_NEAR(m.lo[0], -38, 1e-9);
  EXPECT_NEAR(m.hi[0], 0, 1e-9);
  EXPECT_NEAR(m.lo[1], -10, 1e-9);
  EXPECT_NEAR(m.hi[1], -10, 1e-9);
  EXPECT_NEAR(m.lo[2], 14, 1e-9);
  // below the threshold: nothing found, and the record says why
  m = make_vessel_map(tube(g, 5, 7, 9, 0.3f), g, o);
  EXPECT_FALSE(m.found);
  EXPECT_NE(m.note.find("whole ROI"), std::string::npos);
  // too little vessel
  o.min_ml = 0.2;
  EXPECT_FALSE(make_vessel_map(tube(g, 5, 7, 9, 0.9f), g, o).found);
}

TEST(VesselStage, NeighbourhoodOnAFinerGridReachesTheMarginAndNoFurther) {
  const Geometry coarse = ras_grid({20, 20, 20}, 2, {0, 0, 0});
  VesselStageOptions o;
  o.min_ml = 0.1;
  o.margin_mm = 4;
  const VesselMap m = make_vessel_map(tube(coarse, 5, 7, 9, 0.9f), coarse, o);
  // 1 mm grid over the same world box: the vessel at fine y = 10, z = 14
  const Geometry fine = ras_grid({39, 39, 39}, 1, {0, 0, 0});
  const auto near = vessel_neighbourhood(m, fine, o);
  ASSERT_EQ(near.sizes(), (std::vector<int64_t>{39, 39, 39}));
  EXPECT_TRUE(near[20][10][14].item<bool>());
  EXPECT_TRUE(near[20][14][14].item<bool>());  // 4 mm away
  EXPECT_TRUE(near[20][10][18].item<bool>());
  EXPECT_FALSE(near[20][16][14].item<bool>());  // 6 mm away
  EXPECT_FALSE(near[20][10][21].item<bool>());
  EXPECT_FALSE(near[20][30][30].item<bool>());
}

TEST(VesselStage, TerritoryUnderTheDetectionGivesItsLocationColumn) {
  const Geometry g = ras_grid({20, 20, 20}, 2, {0, 0, 0});
  VesselStageOptions o;
  o.min_ml = 0.1;
  o.margin_mm = 6;
  auto t = tube(g, 5, 7, 9, 0.9f);  // cowseg 9: the right MCA
  t[0].select(2, 15).select(1, 15).fill_(0.1f);
  t[12].select(2, 15).select(1, 15).fill_(0.9f);  // cowseg 12: the left ACA, far from the first
  const VesselMap m = make_vessel_map(t, g, o);
  const auto dist = territory_distribution(m, g, o);
  ASSERT_EQ(dist.size(0), kNumLocations);
  const int mca = cowseg_to_column(9), aca = cowseg_to_column(12);
  EXPECT_NEAR(dist[mca][10][6][7].item<float>(), 1.0f, 1e-5);      // 2 mm from the MCA: all of it
  EXPECT_NEAR(dist.sum(0)[10][10][11].item<float>(), 0.0f, 1e-6);  // beyond every margin: none
  // an aneurysm map whose one detection (0.8) lies beside the MCA
  auto an = torch::zeros({kNumLabels, 20, 20, 20});
  an[0].fill_(1);
  an[0][10][6][7] = 0.2f;
  an[1][10][6][7] = 0.8f;
  const auto ev = territory_evidence(an, dist);
  EXPECT_NEAR(ev[mca], 0.8, 1e-5);
  EXPECT_NEAR(ev[aca], 0.0, 1e-9);
  // the labels on another grid: the territory's value on the vessel, background elsewhere
  const auto labels = vessel_labels_on(m, g);
  EXPECT_EQ(labels[3][5][7].item<int64_t>(), 9);
  EXPECT_EQ(labels[3][15][15].item<int64_t>(), 12);
  EXPECT_EQ(labels[3][10][10].item<int64_t>(), 0);
}

TEST(VesselStage, WindowsRunOnlyWhereAskedAndEverywhereElseIsBackground) {
  torch::manual_seed(4);
  Configuration cfg;
  cfg.roi_mm = {64, 64, 48};
  cfg.target_spacing_mm = {2, 2, 2};
  cfg.patch_size = {16, 16, 16};  // 32 x 32 x 24 ROI voxels: starts 0, 8, 16 (z 0, 8): 18 windows
  cfg.stages = 2;
  cfg.base_channels = 4;
  cfg.max_channels = 8;
  auto net = build_model(cfg, input_channels(cfg, 1));
  net->eval();
  const auto x = torch::rand({4, 32, 32, 24});
  const RoiOutput all = roi_forward(net, x, cfg, false);
  EXPECT_EQ(all.windows_run, 18);
  auto where = torch::zeros({32, 32, 24}, torch::kBool);
  where[2][3][4] = true;  // only the window starting at (0, 0, 0) holds it
  const RoiOutput one = roi_forward(net, x, cfg, false, false, 4, where);
  EXPECT_EQ(one.windows_run, 1);
  EXPECT_EQ(one.windows_total, 18);
  const auto sub = [](const torch::Tensor& t) { return t.slice(1, 0, 8).slice(2, 0, 8).slice(3, 0, 8); };
  EXPECT_TRUE(torch::allclose(sub(one.aneurysm), sub(all.aneurysm), 1e-5, 1e-6));
  EXPECT_EQ(one.aneurysm[0].slice(0, 16).min().item<float>(), 1.0f);
  // mirrored: the mirrored window runs, and its output lands where `where` is
  const RoiOutput m = roi_forward(net, x, cfg, true, false, 4, where);
  EXPECT_EQ(m.windows_run, 1);
  EXPECT_LT(m.aneurysm[0][2][3][4].item<float>(), 1.0f);
  EXPECT_EQ(m.aneurysm[0].slice(0, 16).min().item<float>(), 1.0f);
  // nothing asked: no window, all background
  const RoiOutput none = roi_forward(net, x, cfg, false, false, 4, torch::zeros({32, 32, 24}, torch::kBool));
  EXPECT_EQ(none.windows_run, 0);
  EXPECT_EQ(none.aneurysm[0].min().item<float>(), 1.0f);
  // everywhere asked: the same as no selection
  const RoiOutput every = roi_forward(net, x, cfg, false, false, 4, torch::ones({32, 32, 24}, torch::kBool));
  EXPECT_TRUE(torch::allclose(every.aneurysm, all.aneurysm));
}

}  // namespace
}  // namespace aneura
