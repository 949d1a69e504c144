// Prediction and evaluation: flip TTA equivariance, the fallback for unreadable series, points on
// DICOM instances, strict CSV checks and localization by hand, and the CLI end to end.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "dataset/rsna.hpp"
#include "evaluate/evaluation.hpp"
#include "infer/predictor.hpp"
#include "io/csv.hpp"
#include "io/dicom_series.hpp"
#include "report/report.hpp"
#include "report/svg.hpp"
#include "support/run.hpp"
#include "support/series_fixture.hpp"
#include "synth/dataset.hpp"
#include "train/data.hpp"
#include "train/folds.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {

using test::code_of;
using test::run_aneura;

TEST(Localizer, WorldToLocalizerInvertsLocalizerToWorld) {
  test::TempDir dir("w2l");
  test::FixtureSpec spec;
  spec.row_cos = {0.8, 0.6, 0};
  spec.col_cos = {0, 0, -1};  // coronal-ish, oblique
  spec.shuffle = true;
  test::write_fixture(spec, dir.path);
  const SeriesPlan plan = plan_series(dir.path);
  for (const auto& e : plan.slice_map) {
    const Vec3 w = localizer_to_world(plan, e.sop_uid, 2.5, 3.25, e.frame);
    const LocalizerPoint back = world_to_localizer(plan, w);
    EXPECT_EQ(back.sop_uid, e.sop_uid);
    EXPECT_NEAR(back.x, 2.5, 1e-9);
    EXPECT_NEAR(back.y, 3.25, 1e-9);
    EXPECT_NEAR(back.distance_mm, 0, 1e-9);
  }
}

void write_text(const fs::path& f, const std::string& s) { std::ofstream(f) << s; }
std::string read_text(const fs::path& f) {
  std::ifstream in(f);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string header() {
  std::string h = "SeriesInstanceUID";
  for (const auto& n : label_names()) h += "," + n;
  return h + "\n";
}

std::string row(const std::string& uid, const std::string& v) {
  std::string r = uid;
  for (int c = 0; c < kNumLabels; ++c) r += "," + v;
  return r + "\n";
}

TEST(Evaluate, StrictPredictionFiles) {
  test::TempDir dir("evalcsv");
  const fs::path f = dir.path / "p.csv";
  write_text(f, header() + row("1.2.3", "0.5") + row("1.2.4", "0.25"));
  EXPECT_EQ(read_predictions(f).size(), 2u);
  write_text(f, header() + row("1.2.3", "nan"));
  EXPECT_EQ(code_of([&] { read_predictions(f); }), ErrorCode::CorruptInput);
  write_text(f, header() + row("1.2.3", "1.5"));
  EXPECT_EQ(code_of([&] { read_predictions(f); }), ErrorCode::CorruptInput);
  write_text(f, header() + row("1.2.3", "0.5x"));
  EXPECT_EQ(code_of([&] { read_predictions(f); }), ErrorCode::CorruptInput);
  write_text(f, header() + row("1.2.3", "0.5") + row("1.2.3", "0.5"));
  EXPECT_EQ(code_of([&] { read_predictions(f); }), ErrorCode::CorruptInput);
  write_text(f, "SeriesInstanceUID,Aneurysm Present\n1.2.3,0.5\n");  // missing columns
  EXPECT_EQ(code_of([&] { read_predictions(f); }), ErrorCode::CorruptInput);
  try {
    write_text(f, header() + row("1.2.3", "0.5") + row("1.2.4", "abc"));
    read_predictions(f);
  } catch (const Error& e) {
    EXPECT_NE(e.where().find("p.csv:3"), std::string::npos) << e.where();  // file and line
  }
}

TEST(Evaluate, MissingOrExtraSeriesAreErrorsAndTheScoreMatchesSklearn) {
  ProbabilityTable p;
  TruthTable t;
  // Aneurysm Present: truth [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8] -> sklearn 0.75
  const double s[4] = {0.1, 0.4, 0.35, 0.8};
  for (int i = 0; i < 4; ++i) {
    std::array<double, kNumLabels> pr{};
    std::array<int, kNumLabels> tr{};
    for (int c = 0; c < kNumLabels; ++c) {
      pr[c] = s[i];
      tr[c] = i >= 2;
    }
    p["1.2." + std::to_string(i)] = pr;
    t["1.2." + std::to_string(i)] = tr;
  }
  const Evaluation e = evaluate(p, t);
  ASSERT_TRUE(e.score.score.has_value());
  EXPECT_DOUBLE_EQ(*e.score.score, 0.75);
  EXPECT_EQ(e.series, 4u);
  auto p2 = p;
  p2.erase("1.2.0");
  EXPECT_EQ(code_of([&] { evaluate(p2, t); }), ErrorCode::CorruptInput);
  p2 = p;
  p2["9.9"] = p["1.2.0"];
  EXPECT_EQ(code_of([&] { evaluate(p2, t); }), ErrorCode::CorruptInput);
}

TEST(Evaluate, PresentAucPerSizeBandByHand) {
  // negatives 0.1 0.4 0.35 0.8; positives by largest radius: 1.5 mm 0.3, 1.8 mm 0.9, 2.5 mm 0.5,
  // 4 mm 0.95, and one positive without a radius (left out).
  ProbabilityTable pred;
  TruthTable truth;
  std::map<std::string, double> radius;
  auto add = [&](const std::string& uid, double present, int label, double r) {
    std::array<double, kNumLabels> p{};
    p[kNumLabels - 1] = present;
    std::array<int, kNumLabels> t{};
    t[kNumLabels - 1] = label;
    pred[uid] = p;
    truth[uid] = t;
    if (r > 0) radius[uid] = r;
  };
  add("n1", 0.1, 0, 0), add("n2", 0.4, 0, 0), add("n3", 0.35, 0, 0), add("n4", 0.8, 0, 0);
  add("p1", 0.3, 1, 1.5), add("p2", 0.9, 1, 1.8), add("p3", 0.5, 1, 2.5), add("p4", 0.95, 1, 4.0),
      add("p5", 0.99, 1, 0);
  const auto bands = present_auc_by_radius(pred, truth, radius, {0, 2, 3, 10});
  ASSERT_EQ(bands.size(), 4u);
  EXPECT_EQ(bands[0].positives, 2);
  EXPECT_EQ(bands[0].negatives, 4);
  EXPECT_DOUBLE_EQ(*bands[0].auc, 5.0 / 8);  // 0.3 outranks 1 of 4, 0.9 all 4
  EXPECT_DOUBLE_EQ(*bands[1].auc, 3.0 / 4);
  EXPECT_DOUBLE_EQ(*bands[2].auc, 1.0);
  EXPECT_EQ(bands[2].positives, 1);  // 4 mm in [3, 10)
  EXPECT_EQ(bands[3].positives, 0);  // [10, inf): none, so no AUC (never a silent 0.5)
  EXPECT_FALSE(bands[3].auc.has_value());
  // truth.json of `aneura synth`: the largest radius per positive series; a broken file names itself
  test::TempDir dir("radii");
  write_text(dir.path / "truth.json",
             R"({"series": [{"series_uid": "a", "aneurysms": [{"radius_mm": 1.2}, {"radius_mm": 3.5}]},
                                                     {"series_uid": "b", "aneurysms": []}]})");
  const auto r = read_synthetic_radii(dir.path / "truth.json");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_DOUBLE_EQ(r.at("a"), 3.5);
  write_text(dir.path / "truth.json", R"({"series": [{"series_uid": "a", "aneurysms": [{"radius": 1}]}]})");
  EXPECT_EQ(code_of([&] { read_synthetic_radii(dir.path / "truth.json"); }), ErrorCode::CorruptInput);
  EXPECT_EQ(code_of([&] { read_synthetic_radii(dir.path / "none.json"); }), ErrorCode::InputNotFound);
}

TEST(Evaluate, LocalizationByHand) {
  const std::map<std::string, std::vector<Vec3>> truth = {{"a", {{0, 0, 0}, {20, 0, 0}}}, {"b", {{5, 5, 5}}}};
  const std::map<std::string, std::vector<Vec3>> pred = {{"a", {{3, 4, 0}, {50, 0, 0}}}, {"c", {{0, 0, 0}}}};
  const Localization l = localize(truth, pred, 5.0);
  EXPECT_EQ(l.true_points, 3);
  EXPECT_EQ(l.hits, 1);  // (0,0,0) found at distance exactly 5
  EXPECT_EQ(l.predicted_points, 3);
  EXPECT_EQ(l.predicted_hits, 1);
  EXPECT_EQ(localize(truth, pred, 4.99).hits, 0);
}

// A dot stage's location columns by hand: per column the largest head Present x the candidate's
// location distribution (the shares of its head's location outputs, averaged with the prior).
TEST(CandidateLocations, ColumnsAreTheLargestPresentTimesTheLocationShareByHand) {
  Candidate a, b, unjudged;
  a.head = 0.9;  // head outputs 0.6 at column 2, 0.2 at column 5: shares 0.75 and 0.25
  a.head_locations[2] = 0.6;
  a.head_locations[5] = 0.2;
  a.prior_locations[2] = 1.0;
  b.head = 0.5;  // head outputs 0.4 at column 5 alone: share 1; the prior says column 7
  b.head_locations[5] = 0.4;
  b.prior_locations[7] = 1.0;
  unjudged.head = -1;  // counts as 0 (a candidate the judge has not seen)
  unjudged.head_locations[9] = 1.0;
  const auto shares = candidate_location_columns({a, b, unjudged}, false);
  EXPECT_NEAR(shares[2], 0.9 * 0.75, 1e-12);
  EXPECT_NEAR(shares[5], std::max(0.9 * 0.25, 0.5 * 1.0), 1e-12);
  EXPECT_EQ(shares[7], 0.0);
  EXPECT_EQ(shares[9], 0.0);
  const auto with_prior = candidate_location_columns({a, b, unjudged}, true);
  EXPECT_NEAR(with_prior[2], 0.9 * (0.5 * 0.75 + 0.5 * 1.0), 1e-12);
  EXPECT_NEAR(with_prior[5], std::max(0.9 * 0.5 * 0.25, 0.5 * 0.5 * 1.0), 1e-12);
  EXPECT_NEAR(with_prior[7], 0.5 * 0.5, 1e-12);
  // a distribution sums to 1; no head output at all: uniform shares
  Candidate silent;
  silent.prior_locations.fill(1.0 / kNumLocations);
  for (const Candidate& c : {a, b, silent}) {
    const auto d = candidate_location(c, true);
    double sum = 0;
    for (double v : d) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
  EXPECT_NEAR(candidate_location(silent, false)[4], 1.0 / kNumLocations, 1e-12);
  EXPECT_EQ(candidate_location_columns({}, true), (std::array<double, kNumLocations>{}));
}

TEST(Evaluate, VesselDiceByHand) {
  Volume<float> truth(Geometry{}, 1), pred(Geometry{}, 1);
  truth.geom.size = {5, 1, 1};
  truth.data = {0, 5, 5, 9, 0};
  pred.geom.size = {4, 1, 1};
  pred.geom.origin = {1, 0, 0};  // covers truth voxels 1..4; voxel 0 is outside and does not count
  pred.data = {5, 9, 9, 9};
  const VesselDice d = vessel_dice(truth, pred);
  EXPECT_EQ(d.voxels, 4);
  // vessels: 3 in the truth, 4 predicted, 3 in both -> 6 / 7
  EXPECT_NEAR(d.foreground, 6.0 / 7, 1e-12);
  // territory 5: 2 true, 1 predicted, 1 both -> 2/3; territory 9: 1 true, 3 predicted, 1 both -> 1/2
  EXPECT_NEAR(d.territories, (2.0 / 3 + 0.5) / 2, 1e-12);
  Evaluation e;
  e.vessels["a"] = d;
  e.vessels["b"] = vessel_dice(truth, truth);
  EXPECT_NEAR(e.vessels["b"].foreground, 1, 1e-12);
  EXPECT_NEAR(mean_vessel_dice(e)->foreground, (6.0 / 7 + 1) / 2, 1e-12);
  EXPECT_NEAR(to_json(e).at("vessel_dice").at("territories").get<double>(), (7.0 / 12 + 1) / 2, 1e-12);
}

// A trained (briefly) tiny model on a tiny synthetic dataset, shared by the tests below.
class PredictOnSynth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("predict");
    synth::SynthOptions so;
    so.out = data();
    so.n = 6;
    so.size = synth::Size::Tiny;
    so.seed = 5;
    so.positive_fraction = 0.5;
    synth::write_dataset(so);
    ASSERT_EQ(run_aneura("preprocess " + data().string() + " " + work().string() + " --spacing 2.5"), 0);
    Plans p;
    Configuration c;
    c.name = "tiny";
    c.patch_size = {16, 16, 16};
    c.target_spacing_mm = {4, 4, 4};  // windowed: 27 windows of 16^3 over the 32 x 32 x 28 ROI
    c.stages = 3;
    c.base_channels = 4;
    c.max_channels = 16;
    c.batch_size = 2;
    c.optimizer = "adamw";
    c.epochs = 1;
    c.folds = 2;
    c.normalization = json::object();
    p.default_configuration = c.name;
    p.global = json::object();
    p.raw[c.name] = configuration_to_json(c);
    write_plans(p, work() / "plans.json");
    ASSERT_EQ(run_aneura("train " + work().string() + " --all-folds --threads 2"), 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path data() { return dir_->path / "data"; }
  static fs::path work() { return dir_->path / "work"; }
  static fs::path model() { return work() / "runs" / "tiny"; }
  static test::TempDir* dir_;
};
test::TempDir* PredictOnSynth::dir_ = nullptr;

Volume<float> mirrored_x(const Volume<float>& v) {
  Volume<float> m = v;
  const auto& n = v.geom.size;
  for (int64_t t = 0; t < v.volumes; ++t)
    for (int64_t k = 0; k < n[2]; ++k)
      for (int64_t j = 0; j < n[1]; ++j)
        for (int64_t i = 0; i < n[0]; ++i)
          m.data[((t * n[2] + k) * n[1] + j) * n[0] + i] = v.data[((t * n[2] + k) * n[1] + j) * n[0] + (n[0] - 1 - i)];
  return m;
}

TEST_F(PredictOnSynth, FlipTtaMakesPredictionsMirrorEquivariant) {
  PredictOptions o;
  Predictor pred(model(), o);
  EXPECT_EQ(pred.folds().size(), 2u);  // both folds
  for (const auto& ci : list_cases(work())) {
    const TrainCase c = load_case(work(), ci.id);
    ASSERT_NEAR(std::fabs(c.image.geom.direction[0][0]), 1, 1e-9);  // case axis i runs along R-L
    const SeriesPrediction a = pred.predict_image(c.image);
    const SeriesPrediction b = pred.predict_image(mirrored_x(c.image));
    for (int col = 0; col < kNumLabels; ++col)
      EXPECT_NEAR(a.probability[col], b.probability[label_twin(col)], 2e-3) << ci.id << " " << label_names()[col];
    ASSERT_FALSE(a.points.empty());
    EXPECT_EQ(label_twin(a.points[0].column), b.points[0].column);
  }
  // without TTA the mirror generally changes the answer (the test above is not trivially true)
  o.flip_tta = false;
  Predictor plain(model(), o);
  const TrainCase c = load_case(work(), list_cases(work())[0].id);
  const auto a = plain.predict_image(c.image), b = plain.predict_image(mirrored_x(c.image));
  double diff = 0;
  for (int col = 0; col < kNumLabels; ++col) diff += std::fabs(a.probability[col] - b.probability[label_twin(col)]);
  EXPECT_GT(diff, 1e-4);
}

TEST_F(PredictOnSynth, LoadsTheFinalWeightsUnlessAskedForTheBestEpoch) {
  // a copy of the model whose last.pt files are corrupt: the default reads them (and says so), best reads best.pt
  const fs::path m = dir_->path / "model_copy";
  fs::remove_all(m);
  fs::copy(model(), m, fs::copy_options::recursive);
  for (int f = 0; f < 2; ++f) write_text(m / ("fold_" + std::to_string(f)) / "last.pt", "not a checkpoint");
  EXPECT_EQ(code_of([&] { Predictor p(m, {}); }), ErrorCode::CorruptInput);
  PredictOptions best;
  best.checkpoint = "best.pt";
  Predictor p(m, best);
  EXPECT_EQ(p.folds().size(), 2u);
}

// model.json names the encoder a run started from, null for a run from scratch; both read back.
TEST_F(PredictOnSynth, ModelJsonRecordsTheInitialEncoderOrNull) {
  ModelInfo info = read_model_info(model());
  EXPECT_EQ(info.init_encoder, "");  // the fixture trains from scratch
  const fs::path copy = dir_->path / "model_copy";
  fs::create_directories(copy);
  write_model_info(copy, info);
  std::ifstream in(copy / "model.json");
  EXPECT_TRUE(json::parse(in).at("init_encoder").is_null());
  EXPECT_EQ(read_model_info(copy).init_encoder, "");
  info.init_encoder = "/w/pretrain/cpu_demo/last.pt";
  write_model_info(copy, info);
  EXPECT_EQ(read_model_info(copy).init_encoder, "/w/pretrain/cpu_demo/last.pt");
}

TEST_F(PredictOnSynth, TheRoiIsPlacedWithTheOffsetsTheModelLearned) {
  // model.json holds the ROI offsets training learned; prediction places the ROI with them (a copy
  // of the model with every rule's offset moved 6 mm P and 10 mm S cuts its ROI exactly that much
  // further), and refuses an offset that is not one.
  const ModelInfo info = read_model_info(model());
  const fs::path m = dir_->path / "model_offsets";
  fs::remove_all(m);
  fs::copy(model(), m, fs::copy_options::recursive);
  json j = json::parse(read_text(m / "model.json"));
  ASSERT_TRUE(j.contains("roi_offsets"));
  for (auto& [rule, v] : j["roi_offsets"].items()) {
    v["offset_lps_mm"][1] = v["offset_lps_mm"][1].get<double>() + 6;
    v["offset_lps_mm"][2] = v["offset_lps_mm"][2].get<double>() + 10;
  }
  write_text(m / "model.json", j.dump());
  PredictOptions o;
  o.keep_maps = true;
  Predictor a(model(), o), b(m, o);
  const TrainCase c = load_case(work(), list_cases(work())[0].id);
  const Vec3 shift = b.predict_image(c.image).roi.geom.origin - a.predict_image(c.image).roi.geom.origin;
  EXPECT_NEAR(shift[0], 0, 1e-9);
  EXPECT_NEAR(shift[1], 6, 1e-9);
  EXPECT_NEAR(shift[2], 10, 1e-9);
  // the case's stored anchor (preprocess, on the harmonized image) is where prediction finds it on
  // the case image (read back from NIfTI, whose header keeps the grid in float32)
  for (int ax = 0; ax < 3; ++ax)
    EXPECT_NEAR(info.roi_offsets.centre(c.roi_anchor)[ax], find_roi_centre(c.image, info.roi_offsets)[ax], 1e-3);
  j["roi_offsets"]["widest"]["offset_lps_mm"] = {0, 0, "up"};
  write_text(m / "model.json", j.dump());
  EXPECT_EQ(code_of([&] { Predictor p(m, o); }), ErrorCode::CorruptInput);
}

TEST_F(PredictOnSynth, UnreadableSeriesGetsTheFallbackRow) {
  Predictor pred(model(), {});
  const fs::path bad = dir_->path / "1.2.3.4";
  fs::create_directories(bad);
  write_text(bad / "x.dcm", "not dicom at all");
  const SeriesPrediction p = pred.predict_series(bad);
  EXPECT_TRUE(p.fallback);
  EXPECT_FALSE(p.error.empty());
  EXPECT_EQ(p.series_uid, "1.2.3.4");
  EXPECT_EQ(p.probability, pred.prior());
  EXPECT_GT(pred.prior()[kNumLabels - 1], 0);  // the training prevalence of Aneurysm Present
}

TEST_F(PredictOnSynth, PredictAndEvaluateFromTheCommandLine) {
  const fs::path out = dir_->path / "pred" / "predictions.csv";
  fs::create_directories(out.parent_path());
  ASSERT_EQ(
      run_aneura("predict " + model().string() + " --data " + data().string() + " -o " + out.string() + " --heatmaps"),
      0);
  const CsvTable t = read_csv(out);
  EXPECT_EQ(t.rows.size(), 6u);
  ASSERT_EQ(t.header.size(), 15u);
  EXPECT_EQ(t.header[14], "Aneurysm Present");
  // every series has its JSON with points placed on an instance of the series
  const RsnaDataset d = read_rsna(data());
  for (const auto& e : d.series) {
    std::ifstream in(out.parent_path() / "predictions_points" / (e.uid + ".json"));
    ASSERT_TRUE(in) << e.uid;
    const json j = json::parse(in);
    ASSERT_FALSE(j.at("points").empty());
    const auto& p = j.at("points")[0];
    const SeriesPlan plan = plan_series(d.series_dir(e.uid));
    const Vec3 back = localizer_to_world(plan, p.at("dicom").at("SOPInstanceUID"), p.at("dicom").at("x"),
                                         p.at("dicom").at("y"), p.at("dicom").at("frame"));
    const Vec3 w = p.at("world_lps_mm").get<Vec3>();
    // on the nearest instance's plane: the in-plane position is exact; the point lies in the
    // harmonized image (2.5 mm voxels), so the normal offset is at most half a slice and half a voxel
    EXPECT_LE(norm(back - w), plan.geometry.spacing[2] / 2 + 1.25 + 0.01) << e.uid;
  }
  EXPECT_EQ(run_aneura("evaluate " + out.string() + " " + (data() / "train.csv").string() + " --points " +
                       (out.parent_path() / "predictions_points").string() + " --data " + data().string() + " --json " +
                       (dir_->path / "eval.json").string()),
            0);
  std::ifstream ej(dir_->path / "eval.json");
  const json e = json::parse(ej);
  EXPECT_EQ(e.at("series"), 6);
  EXPECT_TRUE(e.contains("localization"));
  // the synthetic truth knows the sizes: every positive series falls in one radius band
  ASSERT_TRUE(e.contains("present_auc_by_largest_radius"));
  int banded = 0;
  for (const auto& b : e.at("present_auc_by_largest_radius")) banded += b.at("positives").get<int>();
  EXPECT_EQ(banded, e.at("columns").at("Aneurysm Present").at("positives").get<int>());
  // vessel Dice for the series with a segmentation (from the vessel maps of --heatmaps)
  int segmented = 0;
  for (const auto& s : d.series) segmented += d.cowseg(s.uid).has_value();
  if (segmented > 0) {
    ASSERT_TRUE(e.contains("vessel_dice"));
    EXPECT_EQ(e.at("vessel_dice").at("series"), segmented);
    const double f = e.at("vessel_dice").at("foreground");
    EXPECT_GE(f, 0.0);
    EXPECT_LE(f, 1.0);
  }
  // a bad series in the batch: a fallback row, exit 8, the batch goes on
  const fs::path bad = dir_->path / "1.2.3.5";
  fs::create_directories(bad);
  write_text(bad / "x.dcm", "garbage");
  const std::string first = d.series_dir(d.series[0].uid).string();
  EXPECT_EQ(run_aneura("predict " + model().string() + " " + bad.string() + " " + first + " -o " + out.string()), 8);
  EXPECT_EQ(read_csv(out).rows.size(), 2u);
  // evaluation against a truth with series the predictions lack: exit 4
  EXPECT_EQ(run_aneura("evaluate " + out.string() + " " + (data() / "train.csv").string()), 4);
  // no model: exit 9
  EXPECT_EQ(run_aneura("predict " + (dir_->path / "nomodel").string() + " " + first + " -o " + out.string()), 9);
}

// Sharded prediction: 7 shards of 6 series (the last one empty) and `aneura merge` give the rows of
// one run, in the order of the series' folders, and every series' JSON in the one points folder.
TEST_F(PredictOnSynth, ShardsMergeIntoTheRowsOfOneRun) {
  const fs::path dir = dir_->path / "shards";
  fs::create_directories(dir);
  const std::string common = " --data " + data().string() + " --no-tta --threads 1 -q";
  ASSERT_EQ(run_aneura("predict " + model().string() + common + " -o " + (dir / "whole.csv").string()), 0);
  for (int i = 0; i < 7; ++i)
    ASSERT_EQ(run_aneura("predict " + model().string() + common + " -o " + (dir / "sharded.csv").string() +
                         " --shard " + std::to_string(i) + "/7"),
              0)
        << i;
  EXPECT_FALSE(fs::exists(dir / "sharded.csv"));
  ASSERT_EQ(run_aneura("merge " + (dir / "sharded.csv").string()), 0);
  const CsvTable whole = read_csv(dir / "whole.csv"), merged = read_csv(dir / "sharded.csv");
  EXPECT_EQ(merged.header, whole.header);
  ASSERT_EQ(merged.rows.size(), whole.rows.size());
  std::map<std::string, std::vector<std::string>> by_uid;
  for (const auto& r : whole.rows) by_uid[r[0]] = r;
  std::vector<std::string> order;
  for (const auto& r : merged.rows) {
    EXPECT_EQ(r, by_uid[r[0]]);
    order.push_back(r[0]);
  }
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));  // (the folders are series/<uid>)
  for (const auto& [uid, row] : by_uid) EXPECT_TRUE(fs::exists(dir / "sharded_points" / (uid + ".json"))) << uid;
}

TEST_F(PredictOnSynth, ThickSliceSeriesGoToTheThickSliceModel) {
  // a copy of the model as the thick-slice route: which folder predicted a series is in its JSON
  const fs::path copy = dir_->path / "thick_model";
  fs::copy(model(), copy, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const RsnaDataset d = read_rsna(data());
  const std::string first = d.series_dir(d.series[0].uid).string();
  const double slice = plan_series(first).geometry.spacing[2];
  auto routed_to = [&](double mm) {
    const fs::path out = dir_->path / "route" / "p.csv";
    fs::create_directories(out.parent_path());
    EXPECT_EQ(run_aneura("predict " + model().string() + " " + first + " -o " + out.string() + " --no-tta" +
                         " --thick-model " + copy.string() + " --thick-slice-mm " + std::to_string(mm)),
              0);
    std::ifstream in(out.parent_path() / "p_points" / (d.series[0].uid + ".json"));
    const json j = json::parse(in);
    return std::make_pair(j.at("model").get<std::string>(), read_csv(out).rows.at(0));
  };
  const auto [thin_model, thin_row] = routed_to(slice * 1.5);    // slices closer than the limit: the first model
  const auto [thick_model, thick_row] = routed_to(slice / 1.5);  // further apart: the route
  EXPECT_EQ(fs::path(thin_model), model());
  EXPECT_EQ(fs::path(thick_model), copy);
  EXPECT_EQ(thin_row, thick_row);  // the same weights give the same row
}

// The vessel stage at its limits: when it finds no vessel the series is searched everywhere, and
// when everything is within its margin (and territories have no weight) it changes nothing; either
// way the series' JSON says what it found.
TEST_F(PredictOnSynth, VesselStageAtItsLimitsChangesNothingAndSaysWhatItFound) {
  const RsnaDataset d = read_rsna(data());
  const std::string first = d.series_dir(d.series[0].uid).string();
  const fs::path dir = dir_->path / "vessel_stage";
  fs::create_directories(dir);
  auto run = [&](const std::string& name, const std::string& extra) {
    const fs::path out = dir / (name + ".csv");
    EXPECT_EQ(run_aneura("predict " + model().string() + " " + first + " -o " + out.string() + " --no-tta -q" + extra),
              0);
    std::ifstream in(dir / (name + "_points") / (d.series[0].uid + ".json"));
    return std::make_pair(read_csv(out).rows.at(0), json::parse(in));
  };
  const auto [plain, plain_json] = run("plain", "");
  EXPECT_FALSE(plain_json.contains("vessel_stage"));
  const std::string stage = " --vessel-model " + model().string();
  const auto [none, none_json] = run("none", stage + " --vessel-min-ml 1e9");
  EXPECT_EQ(none, plain);
  EXPECT_FALSE(none_json.at("vessel_stage").at("found").get<bool>());
  EXPECT_NE(none_json.at("vessel_stage").at("note").get<std::string>().find("whole ROI"), std::string::npos);
  EXPECT_EQ(none_json.at("windows").at("run"), plain_json.at("windows").at("run"));
  const auto [wide, wide_json] =
      run("wide", stage + " --vessel-min-ml 0 --vessel-threshold 0.01 --vessel-margin 400 --territory-weight 0");
  EXPECT_TRUE(wide_json.at("vessel_stage").at("found").get<bool>());
  EXPECT_GT(wide_json.at("vessel_stage").at("volume_ml").get<double>(), 0);
  const auto box = wide_json.at("vessel_stage").at("box_lps_mm");  // [low corner, high corner]
  for (int k = 0; k < 3; ++k) EXPECT_LE(box[0][k].get<double>(), box[1][k].get<double>()) << k;
  EXPECT_FALSE(none_json.at("vessel_stage").contains("box_lps_mm"));
  EXPECT_GT(wide_json.at("timing_s").at("vessels").get<double>(), 0);
  EXPECT_EQ(wide_json.at("windows").at("run"), plain_json.at("windows").at("of"));
  ASSERT_EQ(wide.size(), plain.size());
  for (size_t c = 1; c < plain.size(); ++c) EXPECT_NEAR(std::stod(wide[c]), std::stod(plain[c]), 2e-6) << c;

  // Component clean-up: off by default; dropping every component above 0.01 leaves the series
  // under 0.01; points at the centre of mass move the points, not the probabilities.
  EXPECT_EQ(plain_json.at("components_dropped"), 0);
  const double plain_present = std::stod(plain.at(1 + kPresentColumn));
  const auto [gone, gone_json] = run("gone", " --min-component-mm3 1e12 --component-threshold 0.01");
  if (plain_present > 0.01) {
    EXPECT_GE(gone_json.at("components_dropped").get<int>(), 1);
    EXPECT_LE(std::stod(gone.at(1 + kPresentColumn)), 0.01 + 1e-6);
  }
  const auto [centred, centred_json] = run("centred", " --points-at centre --component-threshold 0.01");
  EXPECT_EQ(centred, plain);
  ASSERT_EQ(centred_json.at("points").size(), plain_json.at("points").size());
  EXPECT_EQ(run_aneura("predict " + model().string() + " " + first + " -o " + (dir / "bad.csv").string() +
                       " --points-at middle"),
            2);
}

TEST(Report, RocCurveMatchesSklearn) {
  // sklearn roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], drop_intermediate=False):
  //   fpr [0, 0, 0.5, 0.5, 1], tpr [0, 0.5, 0.5, 1, 1]
  const auto [fpr, tpr] = roc_curve({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8});
  EXPECT_EQ(fpr, (std::vector<double>{0, 0, 0.5, 0.5, 1}));
  EXPECT_EQ(tpr, (std::vector<double>{0, 0.5, 0.5, 1, 1}));
  // ties: one point for the tied scores
  const auto [f2, t2] = roc_curve({0, 1, 0, 1}, {0.5, 0.5, 0.2, 0.9});
  EXPECT_EQ(f2, (std::vector<double>{0, 0, 0.5, 1}));
  EXPECT_EQ(t2, (std::vector<double>{0, 0.5, 1, 1}));
  EXPECT_TRUE(roc_curve({1, 1}, {0.2, 0.3}).first.empty());
}

std::array<uint32_t, 2> png_size(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  unsigned char b[24] = {};
  in.read(reinterpret_cast<char*>(b), 24);
  auto be = [&](int o) {
    return (uint32_t(b[o]) << 24) | (uint32_t(b[o + 1]) << 16) | (uint32_t(b[o + 2]) << 8) | b[o + 3];
  };
  EXPECT_EQ(std::string(reinterpret_cast<char*>(b) + 1, 3), "PNG") << f;
  return {be(16), be(20)};
}

TEST(Report, SvgChartsHaveTitlesAxesRoundTicksAndLegends) {
  EXPECT_EQ(nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  EXPECT_EQ(nice_ticks(0.5, 73.5, 5),
            (std::vector<double>{20, 40, 60}));  // epochs 1..73: a step of 14.6 rounds up to 20
  EXPECT_EQ(nice_ticks(-3, 3, 3), (std::vector<double>{-2, 0, 2}));
  SvgChart c;
  c.title = "Left <MCA> & more";
  c.x_label = "epoch";
  c.y_label = "loss";
  c.xmin = 0.5, c.xmax = 3.5, c.ymin = 0, c.ymax = 2;
  c.series.push_back({"training loss", "#1f5fbf", {1, 2, 3}, {1.5, NAN, 0.5}, true, false});
  c.notes = {"AUC 0.750"};
  const std::string svg = render_svg(c);
  EXPECT_EQ(svg.rfind("<svg ", 0), 0u);
  EXPECT_NE(svg.find(">Left &lt;MCA&gt; &amp; more</text>"), std::string::npos);
  EXPECT_NE(svg.find(">epoch</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">training loss</text>"), std::string::npos);
  EXPECT_NE(svg.find(">AUC 0.750</text>"), std::string::npos);
  for (const char* tick : {">1</text>", ">2</text>", ">3</text>", ">0.0</text>", ">0.5</text>", ">2.0</text>"})
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  // the missing value breaks the line into two single points (two moves, no line between them)
  const auto d = svg.substr(svg.find("<path d=\""), svg.find("/>", svg.find("<path d=\"")) - svg.find("<path d=\""));
  EXPECT_EQ(std::count(d.begin(), d.end(), 'M'), 2) << d;
  EXPECT_EQ(std::count(d.begin(), d.end(), 'L'), 0) << d;
  EXPECT_EQ(svg.find("NaN"), std::string::npos);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
}

TEST_F(PredictOnSynth, ReportIsAPageWithPicturesAndRendersInChromium) {
  const fs::path out = dir_->path / "rep" / "predictions.csv";
  fs::create_directories(out.parent_path());
  ASSERT_EQ(
      run_aneura("predict " + model().string() + " --data " + data().string() + " -o " + out.string() + " --heatmaps"),
      0);
  const fs::path rep = dir_->path / "rep" / "report";
  ASSERT_EQ(
      run_aneura("report " + work().string() + " --predictions " + out.string() + " --truth " +
                 (data() / "train.csv").string() + " --points " + (out.parent_path() / "predictions_points").string() +
                 " --data " + data().string() + " --series 2 -o " + rep.string()),
      0);
  std::ifstream in(rep / "index.html");
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // every picture the page shows exists and has the size the page says
  size_t pos = 0;
  int pictures = 0;
  while ((pos = html.find("<img src=\"", pos)) != std::string::npos) {
    pos += 10;
    const std::string name = html.substr(pos, html.find('"', pos) - pos);
    const auto size = png_size(rep / name);
    EXPECT_NE(
        html.find("src=\"" + name + "\" width=\"" + std::to_string(size[0]) + "\" height=\"" + std::to_string(size[1])),
        std::string::npos)
        << name;
    ++pictures;
  }
  EXPECT_EQ(pictures, 2);  // the MIPs of 2 series
  // charts: a ROC panel per column, loss and validation charts for each of the 2 folds
  auto count = [&](const std::string& what) {
    int n = 0;
    for (size_t p = html.find(what); p != std::string::npos; p = html.find(what, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<svg "), kNumLabels + 2 * 2);
  for (const auto& name : label_names()) EXPECT_NE(html.find(">" + name + "</text>"), std::string::npos) << name;
  EXPECT_EQ(count(">false positive rate</text>"), kNumLabels);
  EXPECT_EQ(count(">true positive rate</text>"), kNumLabels);
  EXPECT_EQ(count(">AUC 0.") + count(">AUC 1.000</text>") + count(">AUC n/a"), kNumLabels);
  EXPECT_EQ(count(">epoch</text>"), 2 * 2);
  EXPECT_EQ(count(">training loss</text>"), 2);
  EXPECT_EQ(count(">validation loss</text>"), 2);
  EXPECT_NE(html.find("<h2>Competition score</h2>"), std::string::npos);
  EXPECT_NE(html.find("Aneurysm Present"), std::string::npos);
  // the synthetic truth's sizes: the Present AUC per size band, its positives the positive series
  EXPECT_NE(html.find("Aneurysm Present by aneurysm size"), std::string::npos);
  EXPECT_NE(html.find("<td>&ge; 3 mm</td>"), std::string::npos);
  // train.csv's Modality column: the metric per modality
  EXPECT_NE(html.find("<h3>By modality</h3>"), std::string::npos);
  for (const auto& m : read_modalities(data() / "train.csv"))
    EXPECT_NE(html.find("<td>" + m.second + "</td>"), std::string::npos);
  // a real browser renders it
  if (std::system("command -v chromium > /dev/null 2>&1") != 0) GTEST_SKIP() << "chromium not installed";
  const fs::path shot = dir_->path / "shot.png";
  const std::string cmd =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=900,1600 "
      "--screenshot=" +
      shot.string() + " file://" + (rep / "index.html").string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto size = png_size(shot);
  EXPECT_EQ(size[0], 900u);
  EXPECT_EQ(size[1], 1600u);
  // a blank page compresses to a few kB; text, tables and pictures do not
  EXPECT_GT(fs::file_size(shot), 30000u);
  // what the browser made of the page: the charts' text is in its document, as SVG text
  const fs::path dom = dir_->path / "dom.html";
  const std::string dump = "timeout 120 chromium --headless --no-sandbox --disable-gpu --dump-dom file://" +
                           (rep / "index.html").string() + " > " + dom.string() + " 2> /dev/null";
  ASSERT_EQ(std::system(dump.c_str()), 0);
  std::ifstream din(dom);
  const std::string rendered((std::istreambuf_iterator<char>(din)), std::istreambuf_iterator<char>());
  EXPECT_NE(rendered.find("<svg"), std::string::npos);
  EXPECT_NE(rendered.find(">false positive rate</text>"), std::string::npos);
  EXPECT_NE(rendered.find(">Aneurysm Present</text>"), std::string::npos);
  EXPECT_NE(rendered.find(">validation loss</text>"), std::string::npos);
  EXPECT_NE(rendered.find("Competition score"), std::string::npos);
}

}  // namespace
}  // namespace aneura
