// The 2.5D family (dualstream_2p5d): its plans, windows, training samples, mirrored prediction, and
// a run that trains and predicts through the same commands as the 3D network.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "evaluate/metrics.hpp"
#include "infer/predictor.hpp"
#include "model/dualstream.hpp"
#include "model/input.hpp"
#include "support/run.hpp"
#include "train/data.hpp"
#include "train/folds.hpp"
#include "train/train_fixture.hpp"
#include "train/trainer.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {
using test::code_of;
using test::run_aneura;

Configuration slice_config() {
  Configuration c = tiny_config();
  c.name = "slices";
  c.model = kDualStreamModel;
  c.patch_size = {32, 32, 5};
  c.stages = 3;
  c.base_channels = 8;
  c.max_channels = 32;
  return c;
}

TEST(SliceModel, PlansCheckTheWindowAndWhatTheFamilyCannotUse) {
  auto plans_with = [](const json& extra) {
    json cfg = configuration_to_json(slice_config());
    cfg.update(extra);
    json j = {{"version", 1},
              {"default_configuration", "slices"},
              {"global", json::object()},
              {"configurations", {{"slices", cfg}}}};
    return plans_from_json(j);
  };
  const Plans ok = plans_with(json::object());
  EXPECT_TRUE(slice_model(ok.get("slices")));
  EXPECT_EQ(input_channels(ok.get("slices"), 3), 5);  // the window, whatever the case's channels
  EXPECT_FALSE(windowed(ok.get("slices")));
  for (const json& bad :
       {json{{"patch_size", {32, 32, 4}}}, json{{"patch_size", {32, 32, 33}}}, json{{"patch_size", {32, 16, 5}}},
        json{{"patch_size", {36, 36, 5}}}, json{{"blob_features", true}}, json{{"vessel_stage", true}}})
    EXPECT_EQ(code_of([&] { plans_with(bad); }), ErrorCode::CorruptInput) << bad.dump();
}

TEST(SliceModel, WindowCentresCoverTheSeriesAndRepeatItsEnds) {
  EXPECT_EQ(window_centres(10, 5, 2), (std::vector<int64_t>{2, 4, 6, 7}));
  EXPECT_EQ(window_centres(9, 5, 1), (std::vector<int64_t>{2, 3, 4, 5, 6}));
  EXPECT_EQ(window_centres(3, 5, 1), (std::vector<int64_t>{1}));
  Configuration c = slice_config();
  for (const auto& [overlap, stride] : std::vector<std::pair<double, int>>{{0.5, 2}, {0.6, 2}, {0.8, 1}, {0, 5}}) {
    c.window_overlap = overlap;
    EXPECT_EQ(slice_stride(c), stride) << overlap;
  }
  const auto s = torch::arange(4, torch::kFloat).reshape({4, 1, 1}).expand({4, 2, 2}).contiguous();
  const auto w = window_at(s, 0, 5);  // slices -2..2 -> 0 0 0 1 2
  EXPECT_TRUE(torch::equal(w.select(2, 0).select(1, 0), torch::tensor({0.f, 0.f, 0.f, 1.f, 2.f})));
}

// A case of 20 x 24 x 30 voxels whose slice k holds the value k, an aneurysm sphere of column 3 on
// slices 10..12 around the point (10, 12, 11), or none.
TrainCase slab_case(bool positive) {
  Geometry g;
  g.size = {20, 24, 30};
  g.spacing = {1, 1, 1};
  TrainCase c;
  c.id = positive ? "pos" : "neg";
  c.image = Volume<float>(g, 1);
  for (int64_t k = 0; k < 30; ++k)
    for (int64_t j = 0; j < 24; ++j)
      for (int64_t i = 0; i < 20; ++i) c.image.at(i, j, k) = static_cast<float>(k);
  c.labelled = true;
  if (positive) {
    c.labels[3] = c.labels[kPresentColumn] = 1;
    c.label_maps = Volume<float>(g, 2);
    std::fill(c.label_maps.data.begin(), c.label_maps.data.end(), 0.f);
    const size_t n = static_cast<size_t>(g.voxel_count());
    for (int64_t k = 10; k <= 12; ++k) c.label_maps.data[n + c.image.offset(10, 12, k)] = 4;  // column 3 + 1
    c.points.push_back({g.index_to_world({10, 12, 11}), 3});
  }
  return c;
}

TEST(SliceModel, ATrainingWindowIsLabelledByTheSpheresInItsSlices) {
  const Configuration cfg = slice_config();
  AugmentOptions none;
  none.enabled = false;
  std::mt19937_64 rng(1);
  // unaugmented: the point's window, full and ROI streams identical, zero coordinates
  Sample s = make_slice_sample(slab_case(true), cfg, rng, none);
  ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{10, 32, 32}));
  for (int w = 0; w < 5; ++w) {
    EXPECT_NEAR(s.image[w].mean().item<double>(), 9 + w, 1e-5) << w;  // slices 9..13
    EXPECT_TRUE(torch::equal(s.image[w], s.image[5 + w]));
  }
  EXPECT_TRUE(torch::equal(s.coords, torch::zeros({2})));
  for (int col = 0; col < kNumLabels; ++col) EXPECT_EQ(s.labels[col].item<float>(), col == 3 || col == 13) << col;
  // a negative case: the middle window, nothing positive
  s = make_slice_sample(slab_case(false), cfg, rng, none);
  EXPECT_NEAR(s.image[2].mean().item<double>(), 15, 1e-5);
  EXPECT_EQ(s.labels.sum().item<float>(), 0);
  // the positive case without its point: the middle window (slices 13..17) misses the sphere
  TrainCase no_point = slab_case(true);
  no_point.points.clear();
  s = make_slice_sample(no_point, cfg, rng, none);
  EXPECT_NEAR(s.image[2].mean().item<double>(), 15, 1e-5);
  EXPECT_EQ(s.labels.sum().item<float>(), 0);
  // augmented: windows near the point or anywhere, so both kinds; mirrored windows carry the twin
  // column; about half get a ROI crop, with its centre as coordinates in [0, 1]
  AugmentOptions aug;
  aug.focus_on_aneurysm = 0.5;
  int positive = 0, negative = 0, twin = 0, crops = 0;
  for (int i = 0; i < 200; ++i) {
    s = make_slice_sample(slab_case(true), cfg, rng, aug);
    const bool on = s.labels[kPresentColumn].item<float>() > 0;
    if (on) {
      ++positive;
      EXPECT_TRUE(s.labels[3].item<float>() > 0 || s.labels[label_twin(3)].item<float>() > 0);
      twin += s.labels[label_twin(3)].item<float>() > 0 && label_twin(3) != 3;
    } else {
      ++negative;
    }
    if (s.coords.abs().sum().item<float>() > 0) {
      ++crops;
      EXPECT_TRUE((s.coords >= 0).all().item<bool>() && (s.coords <= 1).all().item<bool>());
    }
  }
  EXPECT_GT(positive, 60);
  EXPECT_GT(negative, 40);
  EXPECT_GT(twin, 10);
  EXPECT_GT(crops, 50);
  EXPECT_LT(crops, 150);
}

TEST(SliceModel, MirroredPredictionSwapsTheTwinColumns) {
  torch::manual_seed(3);
  std::vector<DualStream2p5d> nets{DualStream2p5d(5, 3, 4, 16)};
  const auto slices = torch::rand({9, 32, 32});
  const auto both = slice_probabilities(nets, slices, 5, 1, true);
  // by hand: per window the mean of the network's and its mirror's (twin columns), then the largest
  torch::NoGradGuard ng;
  torch::Tensor best;
  for (int64_t k : window_centres(9, 5, 1)) {
    const auto x = window_at(slices, k, 5).unsqueeze(0), z = torch::zeros({1, 2});
    const auto p = torch::sigmoid(nets[0]->forward(x, x, z))[0].to(torch::kDouble);
    const auto m = torch::sigmoid(nets[0]->forward(x.flip({3}), x.flip({3}), z))[0].to(torch::kDouble);
    std::vector<double> mean(kNumLabels);
    for (int c = 0; c < kNumLabels; ++c)
      mean[static_cast<size_t>(c)] = 0.5 * (p[c].item<double>() + m[label_twin(c)].item<double>());
    const auto t = torch::tensor(mean, torch::kDouble);
    best = best.defined() ? torch::maximum(best, t) : t;
  }
  for (int c = 0; c < kNumLabels; ++c) EXPECT_NEAR(both[c], best[c].item<double>(), 1e-6) << c;
}

// Trained by `aneura train` on the tiny synthetic cases until it separates them, then `aneura
// predict` on their DICOM series writes a row for every series; the family refuses a transfer it
// cannot take and a vessel stage.
TEST_F(TrainOnSynth, TheTwoAndAHalfDFamilyTrainsAndPredictsThroughTheSameCommands) {
  const fs::path w = fresh_work("slices", 8);
  Configuration c = slice_config();
  c.epochs = 30;
  c.learning_rate = 3e-3;
  write_test_plans(w, c);
  TrainOptions o = overfit_options(w);
  o.steps_per_epoch = 4;
  const TrainResult r = train(o);
  EXPECT_EQ(r.epochs_done, 30);
  const std::vector<double> loss = train_losses(r.run_dir);
  ASSERT_EQ(loss.size(), 30u);
  EXPECT_LT(loss.back(), 0.5 * loss.front());
  // the training cases ranked by the series' probability (their windows' largest) as prediction computes it
  PredictOptions po;
  po.flip_tta = false;
  Predictor predictor(r.run_dir.parent_path(), po);
  std::vector<int> truth;
  std::vector<double> prob;
  for (const auto& ci : list_cases(w)) {
    const TrainCase tc = load_case(w, ci.id);
    truth.push_back(tc.labels[kPresentColumn]);
    const SeriesPrediction p = predictor.predict_image(tc.image);
    EXPECT_TRUE(p.points.empty());
    EXPECT_GT(p.windows_run, 0);
    prob.push_back(p.probability[kPresentColumn]);
  }
  const auto auc = roc_auc(truth, prob);
  ASSERT_TRUE(auc.has_value());
  EXPECT_GE(*auc, 0.9);
  // the CLI: predictions.csv with a row per series of the data
  const fs::path out = w / "pred.csv";
  ASSERT_EQ(run_aneura("predict " + r.run_dir.parent_path().string() + " --data " +
                       (w.parent_path() / "data").string() + " -o " + out.string() + " --no-tta --quiet"),
            0);
  std::ifstream csv(out);
  int rows = -1;
  for (std::string l; std::getline(csv, l);) ++rows;
  EXPECT_EQ(rows, 20);
  // what it cannot do, said
  o.init_encoder = r.run_dir / "last.pt";
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::Usage);
  PredictOptions vo;
  Predictor vessels(r.run_dir.parent_path(), vo);
  EXPECT_EQ(code_of([&] { predictor.use_vessel_stage(&vessels, VesselStageOptions{}); }), ErrorCode::Usage);
}

}  // namespace
}  // namespace aneura
