// From maps to what predict reports: the field of view's edge, the location prior.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "core/labels.hpp"
#include "infer/location_prior.hpp"
#include "infer/maps.hpp"
#include "infer/sliding_window.hpp"
#include "model/input.hpp"
#include "model/registry.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {

TEST(SlidingWindow, FocusWindowsRunOnlyNearBlobsAndLeaveTheRestBackground) {
  torch::manual_seed(3);
  Configuration cfg;
  cfg.roi_mm = {64, 64, 48};
  cfg.target_spacing_mm = {2, 2, 2};
  cfg.patch_size = {16, 16, 16};  // windowed: 32 x 32 x 24 ROI voxels, starts 0, 8, 16 (z 0, 8)
  cfg.stages = 2;
  cfg.base_channels = 4;
  cfg.max_channels = 8;
  cfg.blob_features = true;
  auto net = build_model(cfg, input_channels(cfg, 1));
  net->eval();
  // input: image, bright blob, dark blob, 3 coordinate channels; one bright blob at (4, 5, 6)
  auto x = torch::rand({6, 32, 32, 24}) * 0.1;
  x[1].zero_();
  x[2].zero_();
  x[1][4][5][6] = 1;
  const RoiOutput all = roi_forward(net, x, cfg, false);
  cfg.focus_windows = 4;
  const RoiOutput one = roi_forward(net, x, cfg, false);
  // the one window nearest the blob (starts 0, 0, 0): its voxels that no other window covers in the
  // full slide (x, y, z < 8) are the same; voxels beyond the window are background
  const auto sub = [](const torch::Tensor& t) { return t.slice(1, 0, 8).slice(2, 0, 8).slice(3, 0, 8); };
  EXPECT_TRUE(torch::allclose(sub(one.aneurysm), sub(all.aneurysm), 1e-5, 1e-6));
  EXPECT_EQ(one.aneurysm[0].slice(0, 16).min().item<float>(), 1.0f);
  EXPECT_EQ(one.aneurysm.slice(0, 1).slice(1, 16).max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(one.aneurysm.sum(0), torch::ones({32, 32, 24}), 1e-5, 1e-5));
  // the mirrored pass looks at the mirrored window: what it sees of the unmirrored ROI is at the blob
  const RoiOutput m = roi_forward(net, x, cfg, true);
  EXPECT_EQ(m.aneurysm[0].slice(0, 16).min().item<float>(), 1.0f);
  EXPECT_LT(m.aneurysm[0].slice(0, 0, 8).slice(1, 0, 8).slice(2, 0, 8).min().item<float>(), 1.0f);
  // no blob at all: every window runs
  x[1].zero_();
  const RoiOutput none = roi_forward(net, x, cfg, false);
  cfg.focus_windows = 0;
  EXPECT_TRUE(torch::allclose(none.aneurysm, roi_forward(net, x, cfg, false).aneurysm));
}

TEST(FieldEdge, WeightsFollowTheDistanceToTheImagesFacesAndDampingKeepsSums) {
  // Image: 21^3 voxels of 1 mm, identity direction, origin 0 (index = world LPS). ROI: RAS, 2 mm,
  // origin (20, 20, -4): ROI index (i, j, k) is world (20 - 2i, 20 - 2j, -4 + 2k).
  Geometry image;
  image.size = {21, 21, 21};
  image.spacing = {1, 1, 1};
  image.direction = {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  image.origin = {0, 0, 0};
  Geometry roi;
  roi.size = {11, 11, 15};
  roi.spacing = {2, 2, 2};
  roi.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};
  roi.origin = {20, 20, -4};
  const auto w = field_edge_weights(image, roi, 8);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{11, 11, 15}));
  // distance to the nearest face (half a voxel beyond the edge voxels' centres), weight 0 up to 4 mm, 1 from 8 mm
  EXPECT_FLOAT_EQ(w[5][5][2].item<float>(), 0);       // z = 0: 0.5 mm
  EXPECT_FLOAT_EQ(w[5][5][5].item<float>(), 0.625f);  // z = 6: 6.5 mm
  EXPECT_FLOAT_EQ(w[5][5][7].item<float>(), 1);       // centre: 10.5 mm
  EXPECT_FLOAT_EQ(w[5][5][0].item<float>(), 0);       // z = -4: outside
  EXPECT_FLOAT_EQ(w[1][5][7].item<float>(), 0);       // x = 18: 2.5 mm
  EXPECT_FLOAT_EQ(w[3][5][7].item<float>(), 0.625f);  // x = 14: 6.5 mm from the face at 20.5
  EXPECT_TRUE(torch::equal(field_edge_weights(image, roi, 0), torch::ones({11, 11, 15})));
  // damping scales the aneurysm classes; the background keeps the sum at 1
  auto maps = torch::softmax(torch::randn({kNumLabels, 11, 11, 15}), 0);
  const auto before = maps.clone();
  damp_field_edge(maps, w);
  EXPECT_TRUE(torch::allclose(maps.sum(0), torch::ones({11, 11, 15}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(maps.slice(0, 1, kNumLabels), before.slice(0, 1, kNumLabels) * w.unsqueeze(0)));
  EXPECT_FLOAT_EQ(maps[0][5][5][2].item<float>(), 1);
  EXPECT_TRUE(torch::allclose(maps.select(1, 5).select(1, 5).select(1, 7),
                              before.select(1, 5).select(1, 5).select(1, 7), 1e-5, 1e-6));
}

TEST(LocationPrior, KernelPosteriorWithMirroredPointsAndTwinColumns) {
  const int lmca = *label_index("Left Middle Cerebral Artery"), rmca = *label_index("Right Middle Cerebral Artery");
  const int acom = *label_index("Anterior Communicating Artery");
  LocationPrior prior;
  prior.add({20, 0, 0}, lmca);  // LPS: 20 mm to the patient's left of the ROI centre
  prior.add({0, -10, 0}, acom);
  const double sigma = 5;
  // at a point: its column, with the other kernels' and the floor's share by hand
  auto p = prior.posterior({20, 0, 0}, sigma);
  const double k_acom = 2 * std::exp(-(400.0 + 100.0) / 50.0);  // AComm and its mirror, both sqrt(500) mm away
  const double k_rmca = std::exp(-1600.0 / 50.0);               // the mirrored Left MCA point, 40 mm away
  const double total = 1.0 + k_acom + k_rmca + 13e-3;
  EXPECT_NEAR(p[lmca], (1.0 + 1e-3) / total, 1e-12);
  EXPECT_NEAR(p[acom], (k_acom + 1e-3) / total, 1e-12);
  EXPECT_NEAR(p[rmca], (k_rmca + 1e-3) / total, 1e-12);
  // the mirror of a point gets its twin column; a midline column stays
  p = prior.posterior({-20, 0, 0}, sigma);
  EXPECT_EQ(std::max_element(p.begin(), p.end()) - p.begin(), rmca);
  EXPECT_NEAR(p[rmca], (1.0 + 1e-3) / total, 1e-12);
  p = prior.posterior({0, -10, 0}, sigma);
  EXPECT_EQ(std::max_element(p.begin(), p.end()) - p.begin(), acom);
  // far from every point: uniform
  p = prior.posterior({200, 200, 200}, sigma);
  for (double v : p) EXPECT_NEAR(v, 1.0 / 13, 1e-9);
  double sum = 0;
  for (double v : prior.posterior({7, -3, 2}, sigma)) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // JSON round trip; bad entries are errors
  const LocationPrior back = LocationPrior::from_json(prior.to_json());
  EXPECT_EQ(back.size(), 2u);
  EXPECT_EQ(back.posterior({3, 4, 5}, sigma), prior.posterior({3, 4, 5}, sigma));
  EXPECT_THROW(LocationPrior::from_json(json::parse("[[1, 2, 3, 13]]")), json::exception);
  EXPECT_THROW(LocationPrior::from_json(json::parse("[[1, 2, 3]]")), json::exception);
  EXPECT_TRUE(LocationPrior().empty());
  for (double v : LocationPrior().posterior({0, 0, 0}, sigma)) EXPECT_NEAR(v, 1.0 / 13, 1e-12);
}

}  // namespace
}  // namespace aneura
