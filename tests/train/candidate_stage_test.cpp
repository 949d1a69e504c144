// The candidate stage (configuration candidates > 0): its plans, training on a coarse model's maxima
// and prediction behind that model through the same commands.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "infer/predictor.hpp"
#include "model/input.hpp"
#include "support/run.hpp"
#include "train/candidates.hpp"
#include "train/data.hpp"
#include "train/folds.hpp"
#include "train/loader.hpp"
#include "train/pretrain.hpp"
#include "train/train_fixture.hpp"
#include "train/trainer.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {
using test::code_of;
using test::run_aneura;

// Windows of 16^3 at 2.5 mm (40 mm) in the 128 mm ROI, judging 4 candidates.
Configuration candidate_config() {
  Configuration c = tiny_config();
  c.name = "cand";
  c.target_spacing_mm = {2.5, 2.5, 2.5};
  c.candidates = 4;
  return c;
}

Plans plans_with(const json& extra) {
  json cfg = configuration_to_json(candidate_config());
  cfg.update(extra);
  return plans_from_json({{"version", 1},
                          {"default_configuration", "cand"},
                          {"global", json::object()},
                          {"configurations", {{"cand", cfg}}}});
}

TEST(CandidateStage, PlansCheckWhatACandidateStageIs) {
  EXPECT_EQ(plans_with(json::object()).get("cand").candidates, 4);
  EXPECT_EQ(plans_with(json::object()).get("cand").candidate_source, "coarse");
  EXPECT_EQ(plans_with({{"candidate_source", "dots"}}).get("cand").candidate_source, "dots");
  EXPECT_TRUE(plans_with({{"mine_online", true}}).get("cand").mine_online);
  for (const json& bad :
       {json{{"candidates", -1}}, json{{"candidates", 257}}, json{{"vessel_stage", true}},
        json{{"target_spacing_mm", {8, 8, 7}}},  // the whole ROI in one patch: not windowed
        json{{"blob_features", true}, {"focus_windows", 2}}, json{{"mine_candidates_every", -1}},
        json{{"candidates", 0}, {"mine_candidates_every", 1}}, json{{"candidate_source", "blobs"}},
        json{{"candidates", 0}, {"mine_online", true}}, json{{"mine_online", true}, {"mine_candidates_every", 2}}})
    EXPECT_EQ(code_of([&] { plans_with(bad); }), ErrorCode::CorruptInput) << bad.dump();
}

// WORK/plans.json with the coarse configuration "tiny" (the default) and `stage`.
void write_coarse_and(const Configuration& stage, const fs::path& work) {
  Plans p;
  p.default_configuration = "tiny";
  p.global = json::object();
  p.raw["tiny"] = configuration_to_json(tiny_config());
  p.raw[stage.name] = configuration_to_json(stage);
  write_plans(p, work / "plans.json");
}

// The probabilities of a predictions CSV's first row (its 14 label columns)
std::vector<double> row_of(const fs::path& csv) {
  std::ifstream in(csv);
  std::string header, row, cell;
  std::getline(in, header);
  std::getline(in, row);
  std::istringstream cells(row);
  std::getline(cells, cell, ',');  // the SeriesInstanceUID
  std::vector<double> v;
  while (std::getline(cells, cell, ',')) v.push_back(std::stod(cell));
  return v;
}

double present_of(const fs::path& csv) { return row_of(csv).at(kPresentColumn); }

// A coarse model (the whole ROI) trained first; the candidate stage learns from its maxima on every
// case (kept in candidates.json, named in model.json) and predicts behind it: Present is the coarse
// model's own at weight 0, the largest geometric mean of a candidate's coarse heat and judgement at
// weight 1, and their mix between.
TEST_F(TrainOnSynth, ACandidateStageLearnsFromACoarseModelsMaximaAndJudgesThemInPrediction) {
  const fs::path w = fresh_work("candidates", 8);
  write_coarse_and(candidate_config(), w);
  TrainOptions o = overfit_options(w);
  o.steps_per_epoch = 2;
  o.configuration = "tiny";
  const TrainResult coarse = train(o);
  const fs::path coarse_dir = coarse.run_dir.parent_path();
  // a coarse configuration takes no candidates; a candidate stage needs them
  o.candidates_from = coarse_dir;
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::Usage);
  o.configuration = "cand";
  o.candidates_from.clear();
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::Usage);
  o.candidates_from = coarse_dir;
  const TrainResult r = train(o);
  EXPECT_EQ(r.epochs_done, 2);
  const fs::path model = r.run_dir.parent_path();
  std::ifstream cf(model / "candidates.json");
  const json cands = json::parse(cf);
  EXPECT_EQ(cands.at("coarse_model"), fs::absolute(coarse_dir).lexically_normal().string());
  ASSERT_EQ(cands.at("cases").size(), 8u);
  for (const auto& [id, v] : cands.at("cases").items()) {
    EXPECT_GE(v.at("candidates").size(), 1u) << id;
    EXPECT_LE(v.at("candidates").size(), 4u) << id;
    EXPECT_EQ(v.at("probabilities").size(), static_cast<size_t>(kNumLabels));
  }
  std::ifstream mf(model / "model.json");
  EXPECT_EQ(json::parse(mf).at("candidate_model"), cands.at("coarse_model"));

  const std::string series = (w.parent_path() / "data" / "series" / list_cases(w)[0].id).string();
  auto predict = [&](const std::string& m, const std::string& name, const std::string& extra) {
    return run_aneura("predict " + m + " " + series + " -o " + (w / name).string() + " --no-tta -q" + extra);
  };
  ASSERT_EQ(predict(coarse_dir.string(), "coarse.csv", ""), 0);
  ASSERT_EQ(predict(model.string(), "w0.csv", " --candidate-weight 0"), 0);
  ASSERT_EQ(predict(model.string(), "w1.csv", " --candidate-weight 1"), 0);
  ASSERT_EQ(predict(model.string(), "mixed.csv", ""), 0);
  std::ifstream jf(w / "w1_points" / (list_cases(w)[0].id + ".json"));
  const json j = json::parse(jf);
  ASSERT_FALSE(j.at("candidates").empty());
  double best = 0;  // the candidate both stages agree on most: max sqrt(coarse x fine)
  for (const auto& c : j.at("candidates")) {
    const double fine = c.at("fine"), centre = c.at("fine_centre"), coarse = c.at("coarse");
    EXPECT_GE(fine, 0.0);
    EXPECT_LE(fine, 1.0);
    EXPECT_LE(centre, fine + 1e-9);  // the centre is part of the window
    EXPECT_GE(c.at("fine_mm3").get<double>(), 0.0);
    EXPECT_GE(coarse, 0.0);
    best = std::max(best, std::sqrt(coarse * fine));
  }
  const double coarse_present = present_of(w / "coarse.csv");
  EXPECT_NEAR(present_of(w / "w0.csv"), coarse_present, 2e-6);
  EXPECT_NEAR(present_of(w / "w1.csv"), best, 2e-6);
  EXPECT_NEAR(present_of(w / "mixed.csv"), 0.5 * coarse_present + 0.5 * best, 2e-6);
  // flips for the strongest candidate only (by sqrt(coarse x its unmirrored judgement)): it gets
  // the mean of both views, the others their unmirrored one
  {
    const auto judged = [&](bool flip, int flip_candidates) {
      PredictOptions po;
      po.flip_tta = flip;
      po.flip_candidates = flip_candidates;
      Predictor judge(model, po);
      SeriesPrediction r;
      for (const auto& c : j.at("candidates"))
        r.candidates.push_back({c.at("world_lps_mm").get<Vec3>(), c.at("coarse").get<double>(), -1});
      judge.judge_candidates(load_case(w, list_cases(w)[0].id).image, r);
      return r.candidates;
    };
    const auto single = judged(false, 0), both = judged(true, 0), one = judged(true, 1);
    size_t top = 0;
    for (size_t k = 0; k < single.size(); ++k)
      if (std::sqrt(single[k].coarse * single[k].fine) > std::sqrt(single[top].coarse * single[top].fine)) top = k;
    for (size_t k = 0; k < single.size(); ++k)
      EXPECT_NEAR(one[k].fine, k == top ? both[k].fine : single[k].fine, 2e-6) << k;
  }
  // a model that is no candidate stage refuses one (exit 2)
  EXPECT_EQ(predict(coarse_dir.string(), "bad.csv", " --candidate-model " + coarse_dir.string()), 2);
}

// Pre-training a dot stage near the arteries: its windows sit on the dot filter's candidates of
// every case it learns from, found once into WORK/pretrain/<configuration>/candidates.json (kept
// while it holds those cases), and never on a labelled aneurysm; cases of another modality are left
// out, those of no known modality stay.
TEST_F(TrainOnSynth, ADotStagePretrainsOnItsCandidates) {
  const fs::path w = fresh_work("dots_pretrain", 8);
  Configuration dots = candidate_config();
  dots.name = "dots";
  dots.candidate_source = "dots";
  dots.modalities = {"CTA", "MRA"};
  write_coarse_and(dots, w);
  // one case of each kind: one of another modality, one with none (no train.csv row)
  std::vector<std::string> kept;
  bool other = false, unknown = false;
  for (const auto& ci : list_cases(w)) {
    const fs::path f = w / "cases" / ci.id / "case.json";
    json j;
    std::ifstream(f) >> j;
    if (!other && ci.modality != "CTA" && ci.modality != "MRA") {
      other = true;
      continue;
    }
    if (!unknown && (ci.modality == "CTA" || ci.modality == "MRA")) {
      unknown = true;
      j["modality"] = "";
      j["labelled"] = false;
      std::ofstream(f) << j.dump();
    }
    if (ci.modality == "CTA" || ci.modality == "MRA" || j["modality"] == "") kept.push_back(ci.id);
  }
  ASSERT_TRUE(other && unknown);
  PretrainOptions o;
  o.work = w;
  o.configuration = "dots";
  o.epochs = 1;
  o.threads = 2;
  o.progress = false;
  o.time_budget_s = 0;
  const PretrainResult r = pretrain(o);
  EXPECT_EQ(r.cases, static_cast<int>(kept.size()));
  EXPECT_EQ(r.epochs_done, 1);
  const fs::path file = w / "pretrain" / "dots" / "candidates.json";
  json cands;
  std::ifstream(file) >> cands;
  EXPECT_EQ(cands.at("coarse_model"), kDotCandidatesVersion);
  EXPECT_EQ(cands.at("count"), 4);
  ASSERT_EQ(cands.at("cases").size(), kept.size());
  const CaseStore store(w, kept, 0);  // the cases as pre-training reads them, at their ROI centres
  for (size_t i = 0; i < kept.size(); ++i) {
    const std::string& id = kept[i];
    ASSERT_TRUE(cands["cases"].contains(id)) << id;
    const auto c = store.get(i);  // held: a store without a RAM budget keeps no case
    std::vector<Vec3> expected;
    for (const auto& d : dot_candidates(c->image, c->roi_centre, dots, 4)) expected.push_back(d.world_lps);
    const auto& got = cands["cases"][id]["candidates"];
    ASSERT_EQ(got.size(), expected.size()) << id;
    for (size_t k = 0; k < expected.size(); ++k)
      for (int a = 0; a < 3; ++a) EXPECT_NEAR(got[k][a].get<double>(), expected[k][a], 1e-9) << id;
  }
  // kept for a second run (its candidates as written, even when edited), remade for more cases
  cands["cases"][kept[0]]["candidates"] = json::array({json::array({1.0, 2.0, 3.0, 0.0})});
  write_text_atomically(file, cands.dump());
  pretrain(o);
  json again;
  std::ifstream(file) >> again;
  EXPECT_EQ(again, cands);
  cands["cases"].erase(kept[1]);
  write_text_atomically(file, cands.dump());
  pretrain(o);
  std::ifstream(file) >> again;
  EXPECT_EQ(again.at("cases").size(), kept.size());
  EXPECT_NE(again["cases"][kept[0]]["candidates"], cands["cases"][kept[0]]["candidates"]);
  // every window on a candidate, a positive case's too
  const AugmentOptions aug = pretrain_augmentation(dots);
  EXPECT_EQ(aug.focus_on_aneurysm, 0);
  int positives = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    const std::string& id = kept[i];
    TrainCase c = *store.get(i);
    c.candidates = candidates_by_id(again).at(id);
    positives += c.points.empty() ? 0 : 1;
    for (uint64_t seed = 0; seed < 8; ++seed) {
      std::mt19937_64 rng(seed);
      const Sample sample = make_sample(c, dots, rng, aug);
      EXPECT_GE(sample.candidate, 0) << id << " " << seed;
      const SiteCase sites = make_site_case(c, site_half_extent_mm(dots, aug));
      std::mt19937_64 rng2(seed);
      EXPECT_GE(make_site_sample(sites, dots, rng2, aug).candidate, 0) << id << " " << seed;
    }
  }
  EXPECT_GT(positives, 0);
  // a plain configuration keeps drawing its windows anywhere in the ROI
  EXPECT_LT(pretrain_augmentation(tiny_config()).focus_on_candidate, 1);
}

// A stage that finds its own candidates (candidate_source "dots"): no coarse model in training or
// prediction; its candidates are the dot filter's maxima (kept in candidates.json under the filter's
// version), and alone it sets Present to its label head's strongest window judgement, the locations
// to candidate_location_columns of the candidates' evidence, the points to the candidates it judged
// strongest.
TEST_F(TrainOnSynth, ADotCandidateStageFindsItsOwnCandidatesAndPredictsAlone) {
  const fs::path w = fresh_work("dots", 8);
  Configuration dots = candidate_config();
  dots.name = "dots";
  dots.candidate_source = "dots";
  write_coarse_and(dots, w);
  TrainOptions o = overfit_options(w);
  o.steps_per_epoch = 2;
  o.configuration = "tiny";
  const fs::path coarse_dir = train(o).run_dir.parent_path();
  o.configuration = "dots";
  o.candidates_from = coarse_dir;  // it takes none
  EXPECT_EQ(code_of([&] { train(o); }), ErrorCode::Usage);
  o.candidates_from.clear();
  const TrainResult r = train(o);
  EXPECT_EQ(r.epochs_done, 2);
  const fs::path model = r.run_dir.parent_path();
  std::ifstream cf(model / "candidates.json");
  const json cands = json::parse(cf);
  EXPECT_EQ(cands.at("coarse_model"), kDotCandidatesVersion);
  ASSERT_EQ(cands.at("cases").size(), 8u);
  size_t total = 0;
  for (const auto& [id, v] : cands.at("cases").items()) {
    EXPECT_LE(v.at("candidates").size(), 4u) << id;
    total += v.at("candidates").size();
  }
  EXPECT_GT(total, 0u);  // the synthetic arteries have blobs: their ends, bends and aneurysms
  std::ifstream mf(model / "model.json");
  EXPECT_TRUE(json::parse(mf).at("candidate_model").is_null());

  const std::string id = list_cases(w)[0].id;
  const std::string series = (w.parent_path() / "data" / "series" / id).string();
  ASSERT_EQ(
      run_aneura("predict " + model.string() + " " + series + " -o " + (w / "dots.csv").string() + " --no-tta -q"), 0);
  std::ifstream jf(w / "dots_points" / (id + ".json"));
  const json j = json::parse(jf);
  ASSERT_FALSE(j.at("candidates").empty());
  EXPECT_LE(j.at("candidates").size(), 4u);
  double best = 0;
  for (const auto& c : j.at("candidates")) {
    EXPECT_EQ(c.at("coarse").get<double>(), 0.0);
    EXPECT_GE(c.at("head").get<double>(), 0.0);  // the label head's Present for the window
    EXPECT_LE(c.at("head").get<double>(), 1.0);
    best = std::max(best, c.at("head").get<double>());
  }
  EXPECT_NEAR(present_of(w / "dots.csv"), best, 2e-6);
  // each location column: the largest head x the candidate's location distribution, which the
  // candidates' own evidence in the JSON gives back
  std::vector<Candidate> judged;
  for (const auto& c : j.at("candidates")) {
    Candidate k;
    k.head = c.at("head").get<double>();
    k.head_locations = c.at("head_locations").get<std::array<double, kNumLocations>>();
    k.prior_locations = c.at("prior_locations").get<std::array<double, kNumLocations>>();
    judged.push_back(k);
  }
  const auto columns = candidate_location_columns(judged, true);
  const auto row = row_of(w / "dots.csv");
  for (int k = 0; k < kNumLocations; ++k) EXPECT_NEAR(row.at(k), columns[k], 2e-6) << k;
  if (!j.at("points").empty()) {
    EXPECT_NEAR(j.at("points")[0].at("probability").get<double>(), best, 2e-6);
  }
  // flip TTA mirrors every candidate's window, or with --flip-candidates 1 only the one judged
  // strongest unmirrored: that one gets the mean of both views, the others their single view
  const auto heads = [&](const std::string& name, const std::string& flags) {
    EXPECT_EQ(run_aneura("predict " + model.string() + " " + series + " -o " + (w / (name + ".csv")).string() + " -q " +
                         flags),
              0);
    std::ifstream in(w / (name + "_points") / (id + ".json"));
    const json pj = json::parse(in);
    std::vector<double> h;
    for (const auto& c : pj.at("candidates")) h.push_back(c.at("head").get<double>());
    return h;
  };
  const auto single = heads("dots_single", "--no-tta"), both = heads("dots_both", "--flip-candidates 0");
  {  // the judge in bf16 (predict --precision): within 0.05 of float32, not the same numbers
    const auto half = heads("dots_bf16", "--no-tta --precision bf16");
    ASSERT_EQ(half.size(), single.size());
    double largest = 0;
    for (size_t k = 0; k < single.size(); ++k) largest = std::max(largest, std::abs(half[k] - single[k]));
    EXPECT_GT(largest, 0);
    EXPECT_LT(largest, 0.05);
  }
  const auto one = heads("dots_one", "--flip-candidates 1");
  ASSERT_EQ(single.size(), j.at("candidates").size());
  ASSERT_EQ(both.size(), single.size());
  ASSERT_EQ(one.size(), single.size());
  const size_t top = static_cast<size_t>(std::max_element(single.begin(), single.end()) - single.begin());
  for (size_t k = 0; k < single.size(); ++k) EXPECT_NEAR(one[k], k == top ? both[k] : single[k], 2e-6) << k;
  // a series with no blob at all (a flat image): no candidate, every probability 0, and it says so
  {
    Predictor flat_judge(model, PredictOptions{});
    Volume<float> flat = load_case(w, id).image;
    std::fill(flat.data.begin(), flat.data.end(), 0.f);
    const SeriesPrediction p = flat_judge.predict_image(flat);
    EXPECT_TRUE(p.candidates.empty());
    for (double v : p.probability) EXPECT_EQ(v, 0.0);
    ASSERT_EQ(p.warnings.size(), 1u);
    EXPECT_NE(p.warnings[0].find("no bright blob"), std::string::npos) << p.warnings[0];
  }
  // --candidates replaces the count; a coarse model is refused (exit 2)
  ASSERT_EQ(run_aneura("predict " + model.string() + " " + series + " -o " + (w / "two.csv").string() +
                       " --no-tta -q --candidates 2"),
            0);
  std::ifstream tf(w / "two_points" / (id + ".json"));
  EXPECT_LE(json::parse(tf).at("candidates").size(), 2u);
  EXPECT_EQ(run_aneura("predict " + model.string() + " " + series + " -o " + (w / "bad.csv").string() +
                       " --candidate-model " + coarse_dir.string()),
            2);
}

// Mining, after each epoch's windows (mine_online) or by a pass of its own after every epoch
// (mine_candidates_every 1): the candidates are drawn by kMinedFloor + the network's judgement of
// them; the weights are kept for --resume, which goes on from them.
class Mining : public TrainOnSynth, public ::testing::WithParamInterface<bool> {};

TEST_P(Mining, ACandidateStageWeighsTheCandidatesByItsOwnJudgement) {
  const bool online = GetParam();
  const fs::path w = fresh_work(online ? "mining_online" : "mining", 8);
  Configuration mined = candidate_config();
  mined.name = "mined";
  mined.mine_candidates_every = online ? 0 : 1;
  mined.mine_online = online;
  mined.epochs = 3;
  write_coarse_and(mined, w);
  TrainOptions o = overfit_options(w);
  o.steps_per_epoch = 2;
  o.configuration = "tiny";
  o.candidates_from = train(o).run_dir.parent_path();
  o.configuration = "mined";
  o.augment = true;  // windows on candidates, drawn by the weights
  o.stop_after_epochs = 2;
  const TrainResult r = train(o);
  ASSERT_EQ(r.epochs_done, 2);
  std::ifstream cf(r.run_dir.parent_path() / "candidates.json");
  const json cands = json::parse(cf);
  auto read_mined = [&] {
    std::ifstream mf(r.run_dir / "mined.json");
    return json::parse(mf);
  };
  const json m = read_mined();
  EXPECT_EQ(m.at("after_epoch"), 2);  // mined after epochs 1 and 2, the file holds the last
  EXPECT_EQ(m.at("floor"), 0.1);
  const auto training = m.at("cases");
  EXPECT_EQ(training.size(), 8u);  // every training case (one fold: all 8)
  int judged = 0, never_drawn = 0;
  for (const auto& [id, weights] : training.items()) {
    ASSERT_EQ(weights.size(), cands.at("cases").at(id).at("candidates").size()) << id;
    for (double wgt : weights) {
      EXPECT_GE(wgt, 0.1) << id;
      EXPECT_LE(wgt, 1.1 + 1e-9) << id;
      const bool one = std::abs(wgt - 1.1) < 1e-12;  // a judgement of exactly 1 does not happen
      judged += wgt > 0.1 + 1e-6 && !one;
      never_drawn += one;
    }
  }
  EXPECT_GT(judged, 0);  // the network's judgement, not a constant
  // a pass judges every candidate; 2 epochs of 2 steps of 4 windows reach at most 16 of them
  if (online) {
    EXPECT_LE(judged, 16);
    EXPECT_GT(never_drawn, 0);
  } else {
    EXPECT_EQ(never_drawn, 0);
  }
  o.resume = true;
  o.stop_after_epochs = 0;
  const TrainResult rest = train(o);
  EXPECT_EQ(rest.epochs_done, 3);
  EXPECT_EQ(read_mined().at("after_epoch"), 2);  // not mined after the last epoch
}

INSTANTIATE_TEST_SUITE_P(PassOrOnline, Mining, ::testing::Bool());

}  // namespace
}  // namespace aneura
