// The trainer: an overfit run that must reach perfect training AUC, exact resume, the time budget,
// transfer, and clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "evaluate/metrics.hpp"
#include "infer/model_info.hpp"
#include "infer/predictor.hpp"
#include "model/checkpoint.hpp"
#include "model/registry.hpp"
#include "support/run.hpp"
#include "train/data.hpp"
#include "train/folds.hpp"
#include "train/time_budget.hpp"
#include "train/train_fixture.hpp"
#include "train/trainer.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {
using test::code_of;
using test::run_aneura;

// The tiny network with enough epochs and steps to fit 8 cases (the vessel maps left out).
Configuration overfit_config(bool mixed_precision) {
  Configuration c = tiny_config();
  c.epochs = 50;
  c.batch_size = 4;
  c.learning_rate = 1e-2;
  c.loss_weights = {{"vessel", 0}, {"aneurysm", 1}, {"classification", 1}, {"modality", 0.2}};
  c.mixed_precision = mixed_precision;
  return c;
}

TEST_F(TrainOnSynth, OverfitsATinyNetworkToPerfectTrainingAuc) {
  const fs::path w = fresh_work("overfit", 8);
  const Configuration c = overfit_config(false);
  write_test_plans(w, c);
  const TrainResult r = train(overfit_options(w));
  EXPECT_EQ(r.epochs_done, 50);
  // loss went down
  const std::vector<double> loss = train_losses(r.run_dir);
  ASSERT_EQ(loss.size(), 50u);
  EXPECT_LT(loss.back(), 0.5 * loss.front());
  // perfect training AUC for Aneurysm Present (the EMA-free last weights)
  const ModelInfo info = read_model_info(r.run_dir.parent_path());
  MultiTaskUNet net = build_model(info.cfg, info.in_channels);
  load_weights(r.run_dir / "last.pt", net);
  PredictOptions head;  // the label head's, as validation computes it: no flip, no location prior
  head.probabilities = "head";
  head.flip_tta = false;
  Predictor predictor(info, {net}, head);
  std::vector<int> truth;
  std::vector<double> prob;
  size_t points = 0;
  std::vector<std::pair<RoiAnchor, std::vector<std::pair<Vec3, int>>>> anchored;
  for (const auto& ci : list_cases(w)) {
    const TrainCase tc = load_case(w, ci.id);
    points += tc.points.size();
    if (tc.labels[13]) anchored.push_back({tc.roi_anchor, tc.points});
    if (!tc.points
             .empty()) {  // model.json's location prior holds the case's points about its ROI centre (learned offsets)
      const Vec3 offset = tc.points[0].first - info.roi_offsets.centre(tc.roi_anchor);
      EXPECT_GT(info.locations.posterior(offset, 1.0)[tc.points[0].second], 0.3) << ci.id;
    }
    truth.push_back(tc.labels[13]);
    // the label head's: at 8 mm an aneurysm is smaller than a voxel, so the maps cannot show it
    prob.push_back(
        predictor.predict_roi(tc.image, tc.roi_centre, roi_input(tc.image, tc.roi_centre, info.cfg, tc.background))
            .probability[kPresentColumn]);
  }
  EXPECT_GT(points, 0u);
  EXPECT_EQ(info.locations.size(), points);
  EXPECT_EQ(info.roi_offsets.by_rule, learn_roi_offsets(anchored).by_rule);  // model.json's: from every positive case
  EXPECT_EQ(info.roi_offsets.cases, learn_roi_offsets(anchored).cases);
  const auto auc = roc_auc(truth, prob);
  ASSERT_TRUE(auc.has_value());
  EXPECT_EQ(*auc, 1.0);
}

// Mixed precision (bf16 autocast) on the CPU, as cpu_dots trains where the CPU computes bf16: the
// tiny network still fits its cases (the loss falls, Present ranks them perfectly), and its
// prediction in bf16 stays within 0.05 of its prediction in float32 without being the same numbers.
TEST_F(TrainOnSynth, InBf16OnTheCpuATinyNetworkFitsItsCases) {
  const fs::path w = fresh_work("bf16", 8);
  const Configuration c = overfit_config(true);
  write_test_plans(w, c);
  const TrainResult r = train(overfit_options(w));
  const std::vector<double> loss = train_losses(r.run_dir);
  ASSERT_EQ(loss.size(), 50u);
  EXPECT_LT(loss.back(), 0.5 * loss.front());
  const ModelInfo info = read_model_info(r.run_dir.parent_path());
  EXPECT_TRUE(info.cfg.mixed_precision);
  MultiTaskUNet net = build_model(info.cfg, info.in_channels);
  load_weights(r.run_dir / "last.pt", net);
  PredictOptions head;
  head.probabilities = "head";
  head.flip_tta = false;
  PredictOptions in_fp32 = head;
  in_fp32.precision = "fp32";
  Predictor bf16(info, {net}, head), fp32(info, {net}, in_fp32);
  std::vector<int> truth;
  std::vector<double> prob;
  double largest_difference = 0;
  for (const auto& ci : list_cases(w)) {
    const TrainCase tc = load_case(w, ci.id);
    const RoiInput in = roi_input(tc.image, tc.roi_centre, info.cfg, tc.background);
    const double p = bf16.predict_roi(tc.image, tc.roi_centre, in).probability[kPresentColumn];
    const double q = fp32.predict_roi(tc.image, tc.roi_centre, in).probability[kPresentColumn];
    largest_difference = std::max(largest_difference, std::abs(p - q));
    truth.push_back(tc.labels[13]);
    prob.push_back(p);
  }
  EXPECT_EQ(roc_auc(truth, prob).value_or(0), 1.0) << "loss " << loss.front() << " -> " << loss.back();
  EXPECT_GT(largest_difference, 0);
  EXPECT_LT(largest_difference, 0.05);
  PredictOptions bad = head;
  bad.precision = "fp8";
  EXPECT_EQ(code_of([&] { Predictor(info, {net}, bad); }), ErrorCode::Usage);
}

// As users resume: a new process continues from last.pt (the CLI, one LibTorch thread).
TEST_F(TrainOnSynth, ResumeContinuesExactly) {
  const fs::path a = fresh_work("resume_a"), b = fresh_work("resume_b");
  Configuration c = tiny_config();
  c.folds = 3;
  c.ema_decay = 0.9;
  write_test_plans(a, c);
  write_test_plans(b, c);
  const std::string common = " --epochs 2 --threads 1 --seed 9";
  ASSERT_EQ(run_aneura("train " + a.string() + common), 0);
  ASSERT_EQ(run_aneura("train " + b.string() + common + " --stop-after 1"), 0);  // interrupted after epoch 1 of 2
  ASSERT_EQ(run_aneura("train " + b.string() + common + " --resume"), 0);
  const ModelInfo info = read_model_info(a / "runs" / "tiny");
  for (const char* file : {"last.pt", "best.pt"}) {
    const auto wa = weights_of(a / "runs" / "tiny" / "fold_0" / file, info);
    const auto wb = weights_of(b / "runs" / "tiny" / "fold_0" / file, info);
    ASSERT_EQ(wa.size(), wb.size());
    for (size_t i = 0; i < wa.size(); ++i)
      EXPECT_TRUE(torch::equal(wa[i], wb[i]))
          << file << " parameter " << i << " max diff " << (wa[i] - wb[i]).abs().max().item<double>();
  }
  // the log has one line per epoch, the resumed run appending
  std::ifstream log(b / "runs" / "tiny" / "fold_0" / "log.jsonl");
  int lines = 0;
  for (std::string l; std::getline(log, l);) ++lines;
  EXPECT_EQ(lines, 2);
  // the folds were saved and every fold's validation case is outside its training set
  EXPECT_TRUE(fs::exists(a / "folds.json"));
}

// A configuration's `modalities` keeps only those cases for training and validation: one of the
// data's modalities trains; a modality the cases lack leaves no training case (exit 3, said).
TEST_F(TrainOnSynth, ConfigurationModalitiesChooseTheTrainingCases) {
  const fs::path a = fresh_work("modalities_a"), b = fresh_work("modalities_b");
  std::map<std::string, int> count;
  for (const auto& ci : list_cases(a))
    if (ci.labelled) ++count[ci.modality];
  ASSERT_FALSE(count.empty());
  const auto most =
      std::max_element(count.begin(), count.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  Configuration c = tiny_config();
  c.folds = 2;
  c.modalities = {most->first};
  write_test_plans(a, c);
  ASSERT_EQ(run_aneura("train " + a.string() + " --epochs 1 --threads 1 --time-budget 0"), 0);
  EXPECT_TRUE(fs::exists(a / "runs" / "tiny" / "fold_0" / "last.pt"));
  EXPECT_EQ(read_model_info(a / "runs" / "tiny").cfg.modalities, c.modalities);
  // b's cache without the cases of the least common modality, and a configuration that wants them
  const auto least =
      std::min_element(count.begin(), count.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  for (const auto& ci : list_cases(b))
    if (ci.modality == least->first) fs::remove_all(b / "cases" / ci.id);
  c.modalities = {least->first};
  write_test_plans(b, c);
  EXPECT_EQ(run_aneura("train " + b.string() + " --epochs 1 --threads 1 --time-budget 0"), 3);
  EXPECT_FALSE(fs::exists(b / "runs" / "tiny" / "fold_0" / "last.pt"));
}

// A vessel stage learns from the segmented cases alone and is judged by its vessel Dice; without a
// segmented case it has nothing to learn from (exit 3).
TEST_F(TrainOnSynth, AVesselStageLearnsFromTheSegmentedCasesAndIsJudgedByItsVessels) {
  const fs::path a = fresh_work("vessel_stage_a"), b = fresh_work("vessel_stage_b");
  int segmented = 0;
  for (const auto& ci : list_cases(a)) {  // a: the segmented cases alone, one per fold
    segmented += ci.segmented;
    if (!ci.segmented) fs::remove_all(a / "cases" / ci.id);
  }
  Configuration c = tiny_config();
  c.folds = 2;
  c.vessel_stage = true;
  c.loss_weights = {{"vessel", 1}, {"aneurysm", 0}, {"classification", 0}, {"modality", 0}};
  if (segmented >= 2) {
    write_test_plans(a, c);
    ASSERT_EQ(run_aneura("train " + a.string() + " --epochs 1 --threads 1 --time-budget 0"), 0);
    std::ifstream log(a / "runs" / "tiny" / "fold_0" / "log.jsonl");
    std::string line;
    ASSERT_TRUE(std::getline(log, line));
    const json rec = json::parse(line);
    ASSERT_TRUE(rec.contains("val_selection"));  // (an unbudgeted run validates every epoch)
    ASSERT_FALSE(rec.at("val_vessel_dice").is_null());
    EXPECT_EQ(rec.at("val_selection").get<double>(), rec.at("val_vessel_dice").get<double>());
  }
  for (const auto& ci : list_cases(b))
    if (ci.segmented) fs::remove_all(b / "cases" / ci.id);
  write_test_plans(b, c);
  EXPECT_EQ(run_aneura("train " + b.string() + " --epochs 1 --threads 1 --time-budget 0"), 3);
  EXPECT_GE(segmented, 2) << "the test data should hold two segmented cases";
}

TEST_F(TrainOnSynth, BudgetedRunValidatesAfterItsLastEpochAndNotItsFirst) {
  // A budgeted run estimates its validation's cost from one case instead of validating after the
  // first epoch; the last epoch is always judged. Unbudgeted runs validate every epoch.
  const fs::path a = fresh_work("budget_a", 9), b = fresh_work("budget_b", 9);
  Configuration c = tiny_config();
  c.folds = 3;
  write_test_plans(a, c);
  write_test_plans(b, c);
  ASSERT_EQ(run_aneura("train " + a.string() + " --epochs 3 --threads 1 --time-budget 3600"), 0);
  ASSERT_EQ(run_aneura("train " + b.string() + " --epochs 3 --threads 1 --time-budget 0"), 0);
  auto validated = [](const fs::path& w) {
    std::vector<bool> v;
    std::ifstream log(w / "runs" / "tiny" / "fold_0" / "log.jsonl");
    for (std::string l; std::getline(log, l);) v.push_back(json::parse(l).contains("val_selection"));
    return v;
  };
  const auto va = validated(a), vb = validated(b);
  ASSERT_EQ(va.size(), 3u);
  EXPECT_FALSE(va[0]);
  EXPECT_TRUE(va[2]);
  EXPECT_EQ(vb, std::vector<bool>({true, true, true}));
}

TEST_F(TrainOnSynth, TransferInitialisesAndFreezesTheEncoder) {
  const fs::path donor = fresh_work("donor", 6), w = fresh_work("transfer", 6);
  Configuration c = tiny_config();
  write_test_plans(donor, c);
  write_test_plans(w, c);
  ASSERT_EQ(run_aneura("train " + donor.string() + " --epochs 1 --threads 1 --seed 1"), 0);
  const fs::path donor_ckpt = donor / "runs" / "tiny" / "fold_0" / "last.pt";
  // frozen for its only epoch: the encoder is the donor's, bit for bit; the rest trained
  ASSERT_EQ(run_aneura("train " + w.string() + " --epochs 1 --threads 1 --seed 2 --init-encoder " +
                       donor_ckpt.string() + " --freeze-encoder-epochs 1"),
            0);
  const ModelInfo info = read_model_info(w / "runs" / "tiny");
  const auto a = weights_of(donor_ckpt, info, true),
             b = weights_of(w / "runs" / "tiny" / "fold_0" / "last.pt", info, true);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "encoder parameter " << i;
  // not frozen: the encoder starts from the donor's and moves
  ASSERT_EQ(
      run_aneura("train " + w.string() + " --epochs 1 --threads 1 --seed 2 --init-encoder " + donor_ckpt.string()), 0);
  const auto m = weights_of(w / "runs" / "tiny" / "fold_0" / "last.pt", info, true);
  double moved = 0;
  for (size_t i = 0; i < a.size(); ++i) moved += (a[i] - m[i]).abs().max().item<double>();
  EXPECT_GT(moved, 0);
  EXPECT_LT(moved / a.size(), 0.1);  // a few steps from the donor, not a fresh initialisation
  // a donor that does not fit: a clear error (exit 4)
  Configuration other = tiny_config();
  other.base_channels = 8;
  write_test_plans(w, other);
  EXPECT_EQ(run_aneura("train " + w.string() + " --epochs 1 --init-encoder " + donor_ckpt.string()), 4);
}

TEST_F(TrainOnSynth, ClearErrors) {
  const fs::path w = fresh_work("errors");
  write_test_plans(w, tiny_config());
  TrainOptions o;
  o.work = w;
  o.progress = false;
  o.epochs = 1;
  // no checkpoint to resume
  o.resume = true;
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::InputNotFound);
  // a corrupt checkpoint
  fs::create_directories(w / "runs" / "tiny" / "fold_0");
  std::ofstream(w / "runs" / "tiny" / "fold_0" / "last.pt") << "not a checkpoint";
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::CorruptInput);
  ModelInfo info;
  info.cfg = tiny_config();
  MultiTaskUNet net = build_model(info.cfg, 1);
  EXPECT_EQ(code_of([&] { load_weights(w / "runs" / "tiny" / "fold_0" / "last.pt", net); }), ErrorCode::CorruptInput);
  EXPECT_EQ(code_of([&] { load_weights(w / "nothing.pt", net); }), ErrorCode::InputNotFound);
  o.resume = false;
  // a fold the plans do not have
  o.fold = 3;
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::Usage);
  o.fold = 0;
  // plans naming an unknown model
  json pj;
  std::ifstream(w / "plans.json") >> pj;
  pj["configurations"]["tiny"]["model"] = "no_such_net";
  std::ofstream(w / "plans.json") << pj.dump();
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::CorruptInput);
  Configuration bad = tiny_config();
  bad.model = "no_such_net";
  EXPECT_EQ(code_of([&] { build_model(bad, 1); }), ErrorCode::Usage);
  // an empty training set: every case unlabelled
  write_test_plans(w, tiny_config());
  for (const auto& e : fs::directory_iterator(w / "cases")) {
    json j;
    std::ifstream(e.path() / "case.json") >> j;
    j["labelled"] = false;
    std::ofstream(e.path() / "case.json") << j.dump();
  }
  fs::remove(w / "folds.json");
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::NoDicom);
  // no case cache at all
  o.work = w / "nowhere";
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::InputNotFound);
}

// The time budget's arithmetic by hand: a run 10 s in, epochs of 2 s, validations of 4 s.
TEST(TimeBudget, ValidationIntervalAndScheduleFitTheBudget) {
  const auto ten_s_ago = SteadyClock::now() - std::chrono::seconds(10);
  TimeBudget none(0, true, ten_s_ago);
  EXPECT_FALSE(none.enabled());
  EXPECT_FALSE(none.no_room_for_another(1e9));
  EXPECT_TRUE(none.periodic_validation(0, 0));  // unbudgeted runs validate every epoch
  EXPECT_EQ(none.fit_schedule(0, 0, 2, false, 70, 100), 70);

  TimeBudget b(100, true, ten_s_ago);
  b.set_validation_s(4);
  EXPECT_NEAR(b.elapsed_s(), 10, 0.5);
  EXPECT_FALSE(b.no_room_for_another(2));     // 10 + 2 + 4 <= 100
  EXPECT_FALSE(b.periodic_validation(0, 0));  // never after the first epoch
  // validation every ceil(4 / (0.2 x 2)) = 10 epochs; per epoch 2 + 4 / 10 = 2.4 s; the remaining
  // 100 - 10 - 4 (the last validation) = 86 s hold 35 more epochs
  EXPECT_EQ(b.fit_schedule(0, 0, 2, false, 100, 1000), 36);
  EXPECT_EQ(b.validate_every(), 10);
  EXPECT_TRUE(b.periodic_validation(9, 0));
  EXPECT_FALSE(b.periodic_validation(8, 0));
  EXPECT_EQ(b.fit_schedule(0, 0, 2, false, 100, 20), 20);  // never beyond the plans' epochs
  // a first estimate taken under load (60 s instead of 4): validation every ceil(60 / 0.4) = 150
  // epochs, per epoch 2 + 60 / 150 = 2.4 s, and the last validation's 60 s leave 30 s: 12 more epochs
  TimeBudget busy(100, true, ten_s_ago);
  busy.set_validation_s(60);
  EXPECT_EQ(busy.fit_schedule(0, 0, 2, false, 100, 1000), 13);
  for (int e = 1; e < TimeBudget::kRefitEpochs - 1; ++e) {
    EXPECT_FALSE(busy.retime_validation(e, 0));
    busy.fit_schedule(e, 0, 2, false, 13, 1000);
  }
  EXPECT_TRUE(busy.retime_validation(TimeBudget::kRefitEpochs - 1, 0));
  EXPECT_FALSE(busy.retime_validation(TimeBudget::kRefitEpochs - 1, 2));  // a resumed run: not again
  busy.retimed_validation_s(90, 2);                                       // a larger time does not replace the estimate
  EXPECT_DOUBLE_EQ(busy.validation_s(), 60);
  busy.retimed_validation_s(4, 2);
  EXPECT_DOUBLE_EQ(busy.validation_s(), 4);
  EXPECT_EQ(busy.validate_every(), 10);
  // the last refit uses it: 2 + 4 / 10 = 2.4 s per epoch, 100 - 10 - 4 = 86 s hold 35 more epochs
  EXPECT_EQ(busy.fit_schedule(TimeBudget::kRefitEpochs - 1, 0, 2, false, 13, 1000), TimeBudget::kRefitEpochs + 35);
  // a resumed run keeps its schedule; its earlier seconds count
  TimeBudget resumed(100, true, ten_s_ago);
  resumed.set_elapsed_before(85);
  resumed.set_validation_s(4);
  EXPECT_TRUE(resumed.no_room_for_another(2));  // 95 + 2 + 4 > 100
  EXPECT_EQ(resumed.fit_schedule(7, 7, 2, false, 40, 100), 40);
}

// A run whose first epochs shared the machine (10 s each, then 2 s; validations of 3 s, a budget of
// 200 s, the clock moved by hand): after kRefitEpochs it refits its schedule from its last four
// epochs through the first half of it, when the end moves by kRefitMargin epochs or more.
TEST(TimeBudget, ScheduleFollowsTheEpochsThroughItsFirstHalf) {
  TimeBudget b(200, true, SteadyClock::now());
  b.set_validation_s(3);
  double clock = 0;
  int schedule = 1000;
  auto epoch = [&](int e, double train_s) {
    clock += train_s;
    b.set_elapsed_before(clock);
    schedule = b.fit_schedule(e, 0, train_s, false, schedule, 1000);
    return schedule;
  };
  // validation every ceil(3 / (0.2 x 10)) = 2 epochs: 11.5 s per epoch; 200 - 10 - 3 s hold 16 more
  EXPECT_EQ(epoch(0, 10), 17);
  for (int e = 1; e < TimeBudget::kRefitEpochs; ++e) EXPECT_EQ(epoch(e, 10), 17) << e;
  EXPECT_EQ(b.validate_every(), 2);
  // the last four epochs' mean falls to 8, 6, 4, 2 s: validation every 2, 3, 4, 8 epochs; e.g.
  // at 58 s, 2 + 3 / 8 s per epoch, 200 - 58 - 3 s hold 58 more
  EXPECT_EQ(epoch(5, 2), 21);
  EXPECT_EQ(epoch(6, 2), 27);
  EXPECT_EQ(epoch(7, 2), 37);
  EXPECT_EQ(epoch(8, 2), 67);
  EXPECT_EQ(b.validate_every(), 8);
  EXPECT_EQ(epoch(9, 2), 67);
  EXPECT_EQ(epoch(10, 2.2), 67);  // 66 fit: within the margin
  // the second half keeps its schedule, however slow its epochs
  EXPECT_EQ(epoch(40, 10), 67);
  EXPECT_EQ(b.validate_every(), 8);
}

}  // namespace
}  // namespace aneura
