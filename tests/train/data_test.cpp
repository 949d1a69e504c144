// Training data: the flip and its swap tables, folds, sampling, the ROI of every modality, samples
// and windows with the labels of their points, ROI crops, and the loader's determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "dataset/rsna.hpp"
#include "io/nifti.hpp"
#include "support/run.hpp"
#include "train/data.hpp"
#include "train/folds.hpp"
#include "train/loader.hpp"
#include "train/train_fixture.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {
using test::code_of;

// ---------------------------------------------------------------- flip

Sample random_sample() {
  Sample s;
  torch::manual_seed(3);
  s.image = torch::randn({4, 6, 5, 4});  // one image channel + 3 coordinate channels
  s.vessel = torch::randint(0, 14, {6, 5, 4}, torch::kLong);
  s.aneurysm = torch::randint(0, 14, {6, 5, 4}, torch::kLong);
  s.labels = torch::randint(0, 2, {14}).to(torch::kFloat);
  return s;
}

TEST(Flip, TwiceIsTheIdentity) {
  const Sample a = random_sample();
  Sample b = random_sample();
  flip_left_right(b);
  EXPECT_FALSE(torch::equal(a.image, b.image));
  flip_left_right(b);
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_TRUE(torch::equal(a.vessel, b.vessel));
  EXPECT_TRUE(torch::equal(a.aneurysm, b.aneurysm));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
}

TEST(Flip, MirrorsAlongRLAndSwapsAsRsnaMd) {
  Sample s;
  s.image = torch::zeros({4, 4, 1, 1});                                   // image, then coordinates L, P, S
  s.image[0][0][0][0] = 7;                                                // voxel x = 0 (right-most in RAS)
  s.image[1] = torch::tensor({-3.f, -1.f, 1.f, 5.f}).reshape({4, 1, 1});  // L coordinate (asymmetric window)
  s.image[2] = 2;
  s.vessel = torch::tensor({6, 5, 13, 0}, torch::kLong).reshape({4, 1, 1});    // L ICA, R ICA, AComm, bg
  s.aneurysm = torch::tensor({1, 0, 0, 10}, torch::kLong).reshape({4, 1, 1});  // columns 0 and 9, value column + 1
  s.labels = torch::zeros({14});
  s.labels[0] = 1;   // Left Infraclinoid ICA
  s.labels[6] = 1;   // Anterior Communicating Artery (no twin)
  s.labels[13] = 1;  // Aneurysm Present
  flip_left_right(s);
  EXPECT_EQ(s.image[0][3][0][0].item<float>(), 7);
  // the mirrored head's L coordinates: negated and mirrored; P and S unchanged
  EXPECT_TRUE(torch::equal(s.image[1].flatten(), torch::tensor({-5.f, -1.f, 1.f, 3.f})));
  EXPECT_TRUE(torch::equal(s.image[2], torch::full({4, 1, 1}, 2.f)));
  // cowseg: 5 <-> 6 (ICA), 13 stays; order mirrored
  EXPECT_EQ(s.vessel.flatten()[0].item<int64_t>(), 0);
  EXPECT_EQ(s.vessel.flatten()[1].item<int64_t>(), 13);
  EXPECT_EQ(s.vessel.flatten()[2].item<int64_t>(), 6);
  EXPECT_EQ(s.vessel.flatten()[3].item<int64_t>(), 5);
  // aneurysm map: column 9 (twin 10) -> value 11, column 0 (twin 1) -> value 2; order mirrored
  EXPECT_EQ(s.aneurysm.flatten()[0].item<int64_t>(), 11);
  EXPECT_EQ(s.aneurysm.flatten()[3].item<int64_t>(), 2);
  EXPECT_EQ(label_twin(9), 10);
  // labels: Left Infraclinoid -> Right Infraclinoid (column 1); AComm and Present stay
  EXPECT_EQ(s.labels[0].item<float>(), 0);
  EXPECT_EQ(s.labels[1].item<float>(), 1);
  EXPECT_EQ(s.labels[6].item<float>(), 1);
  EXPECT_EQ(s.labels[13].item<float>(), 1);
  EXPECT_EQ(label_names()[1], "Right Infraclinoid Internal Carotid Artery");
}

// ---------------------------------------------------------------- folds and sampling

std::vector<CaseInfo> fake_cases(int n) {
  std::vector<CaseInfo> c;
  const char* mods[] = {"CTA", "MRA", "MRI T2", "MRI T1post"};
  for (int i = 0; i < n; ++i) c.push_back({"c" + std::to_string(100 + i), mods[i % 4], (i / 4) % 2 == 0, true, {}});
  c.push_back({"unlabelled", "CTA", false, false, {}});
  return c;
}

TEST(Folds, StratifiedDisjointDeterministic) {
  const auto cases = fake_cases(40);
  const Folds f = make_folds(cases, 5, 7);
  std::set<std::string> all;
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(f.val[k].size(), 8u);
    // each stratum (modality x present, 5 cases each) spreads over the folds: at most 2 per fold
    std::map<std::pair<std::string, bool>, int> per;
    for (const auto& id : f.val[k]) {
      EXPECT_TRUE(all.insert(id).second) << id << " in two folds";
      for (const auto& c : cases)
        if (c.id == id) ++per[{c.modality, c.present}];
    }
    for (const auto& [key, n] : per) EXPECT_LE(n, 2);
    EXPECT_EQ(f.train(k).size(), 32u);
  }
  EXPECT_EQ(all.size(), 40u);  // the unlabelled case takes no part
  EXPECT_FALSE(all.count("unlabelled"));
  EXPECT_EQ(make_folds(cases, 5, 7).val, f.val);
  EXPECT_NE(make_folds(cases, 5, 8).val, f.val);
  const Folds one = make_folds(cases, 1, 7);
  EXPECT_EQ(one.train(0).size(), 40u);
}

TEST(Folds, SavedAndReusedOrRemade) {
  test::TempDir dir("folds");
  const auto cases = fake_cases(20);
  const Folds a = load_or_make_folds(dir.path, cases, 4, 1);
  ASSERT_TRUE(fs::exists(dir.path / "folds.json"));
  const Folds b = load_or_make_folds(dir.path, cases, 4, 99);  // same cases and k: the saved split
  EXPECT_EQ(a.val, b.val);
  const Folds c = load_or_make_folds(dir.path, fake_cases(24), 4, 1);  // other cases: remade
  size_t n = 0;
  for (const auto& v : c.val) n += v.size();
  EXPECT_EQ(n, 24u);
  std::ofstream(dir.path / "folds.json") << "{broken";
  EXPECT_THROW(load_or_make_folds(dir.path, cases, 4, 1), Error);
}

TEST(Sampling, WeightsFavourPositivesAndRareLocations) {
  std::vector<std::array<int, kNumLabels>> l(4);
  l[1][0] = l[1][13] = 1;  // column 0, twice in the set
  l[2][0] = l[2][13] = 1;
  l[3][5] = l[3][13] = 1;  // column 5, once: rarity 1 - 1/2
  const auto w = sampling_weights(l, 2.0);
  EXPECT_DOUBLE_EQ(w[0], 1.0);
  EXPECT_DOUBLE_EQ(w[1], 2.0);
  EXPECT_DOUBLE_EQ(w[3], 2.0 * 1.5);
  const auto d1 = epoch_draws(w, 2000, 5, 3);
  EXPECT_EQ(d1, epoch_draws(w, 2000, 5, 3));
  EXPECT_NE(d1, epoch_draws(w, 2000, 5, 4));
  std::array<int, 4> count{};
  for (size_t i : d1) ++count[i];
  // expected shares 1 : 2 : 2 : 3 of 8
  EXPECT_NEAR(count[0] / 2000.0, 1.0 / 8, 0.03);
  EXPECT_NEAR(count[3] / 2000.0, 3.0 / 8, 0.04);
}

TEST_F(TrainOnSynth, RoiHoldsEveryAneurysmOnEveryModality) {
  const auto cases = list_cases(work());
  std::set<std::string> modalities;
  int points = 0;
  const Configuration cfg = tiny_config();
  for (const auto& ci : cases) {
    const TrainCase c = load_case(work(), ci.id);
    modalities.insert(c.modality);
    for (const auto& [p, col] : c.points) {
      ++points;
      for (int a = 0; a < 3; ++a)  // LPS vs the RAS-extent box around the centre
        EXPECT_LT(std::fabs(p[a] - c.roi_centre[a]), cfg.roi_mm[a] / 2 - 8)
            << ci.id << " " << c.modality << " axis " << a;
    }
  }
  EXPECT_EQ(modalities.size(), 4u);
  EXPECT_GT(points, 3);
}

TEST_F(TrainOnSynth, PreprocessStoresTheRoiAnchorAndTrainingReadsIt) {
  // case.json holds the finder's anchor of the harmonized image (so training does not repeat the
  // head mask per sample); load_case takes it as stored, recomputes one of another finder version,
  // and refuses a malformed one.
  const fs::path w = fresh_work("anchor", 3);
  for (const auto& ci : list_cases(w)) {
    const fs::path file = w / "cases" / ci.id / "case.json";
    json j;
    std::ifstream(file) >> j;
    ASSERT_TRUE(j.contains("roi_anchor")) << ci.id;
    const RoiAnchor fresh = find_roi_anchor(read_nifti(w / "cases" / ci.id / "image.nii"));
    const auto stored = roi_anchor_from_json(j.at("roi_anchor"));
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->rule, fresh.rule) << ci.id;
    for (int a = 0; a < 3; ++a)
      EXPECT_NEAR(stored->point[a], fresh.point[a], 1e-3) << ci.id;  // (NIfTI keeps the grid in float32)
    j["roi_anchor"]["point_lps_mm"] = {1.5, -2.5, 30.0};
    j["roi_anchor"]["rule"] = "vertex";
    std::ofstream(file) << j.dump();
    TrainCase c = load_case(w, ci.id);
    EXPECT_EQ(c.roi_anchor.rule, RoiRule::Vertex);
    EXPECT_EQ(c.roi_anchor.point, (Vec3{1.5, -2.5, 30.0}));
    EXPECT_EQ(c.roi_centre, RoiOffsets{}.centre(c.roi_anchor));
    j["roi_anchor"]["version"] = kRoiFinderVersion + 1;
    std::ofstream(file) << j.dump();
    c = load_case(w, ci.id);
    EXPECT_EQ(c.roi_anchor.rule, fresh.rule);
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(c.roi_anchor.point[a], fresh.point[a], 1e-9);
    j["roi_anchor"] = {{"version", kRoiFinderVersion}, {"rule", "chin"}, {"point_lps_mm", {0, 0, 0}}};
    std::ofstream(file) << j.dump();
    EXPECT_EQ(code_of([&] { load_case(w, ci.id); }), ErrorCode::CorruptInput);
  }
}

// A case without a labelled voxel has no label volume on disk; it reads, and its samples and ROI
// crops are all background.
TEST_F(TrainOnSynth, ACaseWithoutLabelsHasNoLabelVolumeAndBackgroundSamples) {
  int without = 0, with = 0;
  for (const auto& ci : list_cases(work())) {
    const fs::path dir = work() / "cases" / ci.id;
    if (fs::exists(dir / "labels.nii")) {
      ++with;
      continue;
    }
    ++without;
    const TrainCase c = load_case(work(), ci.id);
    EXPECT_TRUE(c.label_maps.data.empty());
    EXPECT_FALSE(c.labels[kPresentColumn]) << ci.id;
    std::mt19937_64 rng(3);
    const Sample s = make_sample(c, tiny_config(), rng, AugmentOptions{});
    EXPECT_EQ(s.vessel.sum().item<int64_t>(), 0);
    EXPECT_EQ(s.aneurysm.sum().item<int64_t>(), 0);
    EXPECT_EQ(s.vessel.sizes(), s.image[0].sizes());
    Configuration windows = tiny_config();
    windows.target_spacing_mm = {4, 4, 4};  // 16³ windows of 4 mm in the 128 mm ROI: windowed
    const RoiCase r = make_roi_case(c, windows, 1);
    EXPECT_EQ(r.vessel.sum().item<int64_t>(), 0);
    EXPECT_EQ(r.aneurysm.sum().item<int64_t>(), 0);
    EXPECT_EQ(r.aneurysm.sizes(), r.x[0].sizes());
    EXPECT_EQ(r.x.size(0), c.image.volumes);  // the coordinate channels are made per window
  }
  EXPECT_GT(without, 0);
  EXPECT_GT(with, 0);
  // the store's memory estimate counts the cases without a label volume (it preloads them)
  std::vector<std::string> ids;
  for (const auto& ci : list_cases(work())) ids.push_back(ci.id);
  EXPECT_TRUE(CaseStore(work(), ids, 1e9).preloaded());
}

TEST_F(TrainOnSynth, SamplesCarryTheLabelsOfTheirCase) {
  Configuration cfg = tiny_config();
  cfg.patch_size = {48, 48, 48};
  AugmentOptions none;
  none.enabled = false;
  int positives = 0;
  for (const auto& ci : list_cases(work())) {
    const TrainCase c = load_case(work(), ci.id);
    std::mt19937_64 rng(1);
    const Sample s = make_sample(c, cfg, rng, none);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{c.image.volumes + kCoordinateChannels, 48, 48, 48}));
    for (int col = 0; col < kNumLabels; ++col) EXPECT_EQ(s.labels[col].item<float>(), c.labels[col]);
    EXPECT_EQ(s.modality, modality_index(c.modality));
    // every location of the case shows as its value (column + 1) in the aneurysm map, none other
    std::set<int64_t> values;
    const auto flat = s.aneurysm.flatten();
    for (int64_t i = 0; i < flat.numel(); ++i) values.insert(flat[i].item<int64_t>());
    values.erase(0);
    std::set<int64_t> expected;
    for (const auto& [p, col] : c.points) expected.insert(col + 1);
    EXPECT_EQ(values, expected) << ci.id;
    positives += !c.points.empty();
  }
  EXPECT_GT(positives, 2);
}

TEST_F(TrainOnSynth, WindowsCarryTheLabelsOfThePointsInsideThem) {
  Configuration cfg = tiny_config();
  cfg.target_spacing_mm = {2, 2, 2};  // 16^3 windows of 32 mm in the 128 mm ROI
  ASSERT_TRUE(windowed(cfg));
  AugmentOptions focus;  // centred near a point, no other change
  focus.focus_on_aneurysm = 1;
  focus.rotate_deg = focus.scale = focus.flip_probability = 0;
  int positives = 0, negatives = 0;
  for (const auto& ci : list_cases(work())) {
    const TrainCase c = load_case(work(), ci.id);
    std::mt19937_64 rng(4);
    const Sample s = make_sample(c, cfg, rng, focus);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{c.image.volumes + kCoordinateChannels, 16, 16, 16}));
    if (c.points.empty()) {
      if (c.labels[13] == 0) {
        ++negatives;
        EXPECT_EQ(s.labels.sum().item<float>(), 0) << ci.id;
      }
      continue;
    }
    // a window around a point: Present, the point's location, and its sphere in the map
    ++positives;
    EXPECT_EQ(s.labels[13].item<float>(), 1) << ci.id;
    int found = 0;
    for (const auto& [p, col] : c.points)
      if (s.labels[col].item<float>() == 1) {
        ++found;
        EXPECT_TRUE((s.aneurysm == col + 1).any().item<bool>()) << ci.id;
      }
    EXPECT_GE(found, 1) << ci.id;
    // the columns marked are those of the case's points, no other
    for (int col = 0; col < kNumLabels - 1; ++col)
      if (s.labels[col].item<float>() == 1) {
        EXPECT_EQ(c.labels[col], 1) << ci.id << " column " << col;
      }
  }
  EXPECT_GT(positives, 2);
  EXPECT_GT(negatives, 2);
}

// A 2 mm RAS grid (64^3) with a bright sphere (radius 4 mm, centre voxel (44, 20, 33): ROI voxel
// (36, 12, 25) of a 96 mm ROI) beside a bright tube; the sphere is an aneurysm point of location
// column 4 and is in the aneurysm map (value 5). Its configuration: 16^3 windows in the 96 mm ROI.
static TrainCase sphere_and_tube_case() {
  Geometry g;
  g.size = {64, 64, 64};
  g.spacing = {2, 2, 2};
  g.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};
  g.origin = {63, 63, -63};
  TrainCase c;
  c.id = "blob";
  c.modality = "CTA";
  c.modality_id = 0;
  c.labelled = true;
  c.image = Volume<float>(g);
  c.label_maps = Volume<float>(g, 2);
  std::fill(c.label_maps.data.begin(), c.label_maps.data.end(), 0.f);
  const std::array<int64_t, 3> at{44, 20, 33};
  const size_t nv = static_cast<size_t>(g.voxel_count());
  for (int64_t k = 0; k < 64; ++k)
    for (int64_t j = 0; j < 64; ++j)
      for (int64_t i = 0; i < 64; ++i) {
        const double ds =
            2 * std::sqrt(double((i - at[0]) * (i - at[0]) + (j - at[1]) * (j - at[1]) + (k - at[2]) * (k - at[2])));
        const double dt = 2 * std::sqrt(double((j - 40) * (j - 40) + (k - 20) * (k - 20)));
        c.image.at(i, j, k) = ds <= 4 || dt <= 2 ? 3.f : 0.f;
        if (ds <= 4) c.label_maps.data[nv + c.label_maps.offset(i, j, k)] = 5.f;
      }
  c.points = {{g.index_to_world({double(at[0]), double(at[1]), double(at[2])}), 4}};
  c.labels[4] = c.labels[13] = 1;
  c.roi_centre = g.index_to_world({31.5, 31.5, 31.5});
  return c;
}

static Configuration sphere_window_config() {
  Configuration cfg = tiny_config();
  cfg.patch_size = {16, 16, 16};
  cfg.roi_mm = {96, 96, 96};
  cfg.target_spacing_mm = {2, 2, 2};
  return cfg;
}

TEST(RoiCases, CandidatesFindTheBlobAndWindowsKeepTheirPoint) {
  const TrainCase c = sphere_and_tube_case();
  Configuration cfg = sphere_window_config();
  cfg.blob_features = true;
  ASSERT_TRUE(windowed(cfg));
  const RoiCase r = make_roi_case(c, cfg, 1);
  ASSERT_EQ(r.x.sizes(), (std::vector<int64_t>{1 + kBlobChannels, 48, 48, 48}));  // no coordinate channels kept
  ASSERT_EQ(r.points.size(), 1u);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_LE(r.candidates.size(), static_cast<size_t>(kRoiCandidates));
  // the strongest candidate is the sphere (ROI voxel index of the point), not the tube
  for (int k = 0; k < 3; ++k)
    EXPECT_NEAR(static_cast<double>(r.candidates[0][static_cast<size_t>(k)]), r.points[0].first[static_cast<size_t>(k)],
                1.0)
        << k;
  // the ROI input is the one prediction makes
  const auto x = roi_input(c.image, c.roi_centre, cfg, 0.f, 1).x;
  EXPECT_TRUE(torch::allclose(r.x, x.slice(0, 0, 1 + kBlobChannels)));
  // windows focused on the point carry it: label, Present, and its value in the aneurysm map
  AugmentOptions focus;
  focus.focus_on_aneurysm = 1;
  focus.flip_probability = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const Sample s = make_roi_sample(r, cfg, rng, focus);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{1 + kBlobChannels + kCoordinateChannels, 16, 16, 16}));
    EXPECT_EQ(s.labels[4].item<float>(), 1);
    EXPECT_EQ(s.labels[13].item<float>(), 1);
    EXPECT_EQ(s.labels.sum().item<float>(), 2);
    EXPECT_EQ(s.modality, 0);
  }
  // a window centred on a candidate holds it (the window is jittered by at most a quarter patch)
  RoiCase one = r;
  one.candidates.resize(1);
  AugmentOptions cand = focus;
  cand.focus_on_aneurysm = 0;
  cand.focus_on_candidate = 1;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    EXPECT_EQ(make_roi_sample(one, cfg, rng, cand).labels[4].item<float>(), 1) << seed;
  }
  // a window without the point is negative; the unaugmented window is the ROI's centre crop
  AugmentOptions none;
  none.enabled = false;
  std::mt19937_64 rng(0);
  const Sample centre = make_roi_sample(r, cfg, rng, none);
  // (coordinate channels included: those of prediction's input there)
  EXPECT_TRUE(torch::allclose(centre.image, x.slice(1, 16, 32).slice(2, 16, 32).slice(3, 16, 32), 1e-5, 1e-6));
  EXPECT_EQ(centre.labels.sum().item<float>(), 0);  // the point is outside 16..31 along x and y
}

// A candidate stage's windows are cut from the case (no ROI cache): one focused on a candidate holds
// it within a quarter of the window (min 8 mm) of its centre, jittered, and the window centred on the
// sphere's candidate carries its point; with no candidates the same draws give ROI windows.
TEST(CandidateStage, WindowsFocusedOnACandidateLieAroundIt) {
  TrainCase c = sphere_and_tube_case();
  const Vec3 sphere = c.points[0].first;
  c.points.clear();  // the candidate's focus, not the aneurysm's
  c.labels = {};
  c.candidates = {sphere};
  const Configuration cfg = sphere_window_config();  // 16^3 windows at 2 mm: 32 mm, the candidate 8 mm inside
  AugmentOptions cand;
  cand.focus_on_aneurysm = 0;
  cand.focus_on_candidate = 1;
  cand.flip_probability = 0;
  cand.rotate_deg = 0;
  cand.scale = 0;
  cand.coordinate_jitter_mm = 0;
  double spread = 0;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::mt19937_64 rng(seed);
    const Sample s = make_sample(c, cfg, rng, cand);
    // the window's centre in world mm from its coordinate channels (between voxels 7 and 8)
    const auto coords = s.image.slice(0, 1, 4).slice(1, 7, 9).slice(2, 7, 9).slice(3, 7, 9).mean({1, 2, 3});
    for (int k = 0; k < 3; ++k) {
      const double d = coords[k].item<double>() * 64 + c.roi_centre[k] - sphere[k];
      EXPECT_LE(std::abs(d), 8.0 + 1e-3) << seed << " axis " << k;
      spread = std::max(spread, std::abs(d));
    }
    // the sphere (radius 4 mm, bright) lies in the window
    EXPECT_GT(s.image[0].max().item<float>(), 2.f) << seed;
  }
  EXPECT_GT(spread, 3.0);  // jittered, not always centred
}

// Mined weights: a candidate is drawn in proportion to its weight; without weights (or with a
// count that does not match) uniformly, with the same single draw.
TEST(CandidateStage, MinedWeightsDrawCandidatesInProportion) {
  TrainCase c;
  c.candidates = {Vec3{0, 0, 0}, Vec3{1, 0, 0}, Vec3{2, 0, 0}, Vec3{3, 0, 0}};
  std::array<int, 4> uniform{}, weighted{};
  for (int i = 0; i < 4000; ++i) ++uniform[pick_candidate(c, (i + 0.5) / 4000)];
  for (int k = 0; k < 4; ++k) EXPECT_EQ(uniform[k], 1000) << k;
  c.candidate_weights = {0.1, 1.1, 0.1, 0.7};  // shares 0.05, 0.55, 0.05, 0.35
  for (int i = 0; i < 4000; ++i) ++weighted[pick_candidate(c, (i + 0.5) / 4000)];
  EXPECT_EQ(weighted[0], 200);
  EXPECT_EQ(weighted[1], 2200);
  EXPECT_EQ(weighted[2], 200);
  EXPECT_EQ(weighted[3], 1400);
  EXPECT_EQ(pick_candidate(c, 0.9999999), 3u);
  c.candidate_weights = {1, 1};  // not one per candidate: uniform
  EXPECT_EQ(pick_candidate(c, 0.6), 2u);
}

// A candidate stage's site crops (cache_sites): a window focused on a site and cut from its crop is
// the window cut from the whole case with the same draws (rotated, scaled, flipped), image, maps and
// labels; the crops hold far fewer voxels than the case; a site sample takes a point's crop with
// probability focus_on_aneurysm.
TEST(CandidateStage, WindowsFromSiteCropsAreTheWholeCasesWindows) {
  TrainCase c = sphere_and_tube_case();
  for (int64_t k = 0; k < 64; ++k)  // a ramp: any shift of a crop against the case would show
    for (int64_t j = 0; j < 64; ++j)
      for (int64_t i = 0; i < 64; ++i) c.image.at(i, j, k) += 0.01f * i + 0.02f * j + 0.03f * k;
  const Geometry& g = c.image.geom;
  c.candidates = {g.index_to_world({20, 40, 20}), g.index_to_world({32, 32, 32}), g.index_to_world({60, 3, 61})};
  Configuration cfg = sphere_window_config();
  cfg.patch_size = {8, 8, 8};  // 16 mm windows: crops of ~46 mm in a 128 mm image
  const AugmentOptions aug;
  const double half = site_half_extent_mm(cfg, aug);
  EXPECT_NEAR(half, 4 + 8 * (1 + 2 * std::sin(10 * M_PI / 180)) * 1.1, 1e-9);
  const SiteCase s = make_site_case(c, half);
  ASSERT_EQ(s.sites.size(), 4u);  // three candidates, then the point
  EXPECT_EQ(s.candidates, 3u);
  EXPECT_LT(s.bytes, 4 * sizeof(float) * c.image.data.size());
  for (size_t k = 0; k < s.sites.size(); ++k) {
    const TrainCase& crop = *s.sites[k];
    EXPECT_LT(crop.image.geom.voxel_count(), g.voxel_count() / 8) << k;
    // only the point's crop holds an aneurysm voxel, so only it keeps label maps
    EXPECT_EQ(crop.label_maps.data.empty(), k != 3) << k;
    TrainCase whole = c;
    whole.candidates = crop.candidates;
    AugmentOptions on = aug;
    on.focus_on_aneurysm = 0;
    on.focus_on_candidate = 1;
    for (uint64_t seed = 0; seed < 6; ++seed) {
      std::mt19937_64 r1(seed), r2(seed);
      const Sample a = make_sample(whole, cfg, r1, on), b = make_sample(crop, cfg, r2, on);
      EXPECT_TRUE(torch::allclose(a.image, b.image, 1e-5, 1e-5)) << k << " seed " << seed;
      EXPECT_TRUE(torch::equal(a.aneurysm, b.aneurysm)) << k << " seed " << seed;
      EXPECT_TRUE(torch::equal(a.vessel, b.vessel)) << k << " seed " << seed;
      EXPECT_TRUE(torch::equal(a.labels, b.labels)) << k << " seed " << seed;
      EXPECT_EQ(a.candidate, 0) << k;  // centred near the only candidate
      EXPECT_EQ(b.candidate, 0) << k;
    }
  }
  int on_point = 0;
  std::array<int, 3> per_candidate{};  // a window names the candidate it was cut around; a point's none
  for (uint64_t seed = 0; seed < 400; ++seed) {
    std::mt19937_64 rng(seed);
    const Sample x = make_site_sample(s, cfg, rng, aug);
    const bool holds_point = x.labels[kNumLabels - 1].item<float>() > 0.5f;  // only windows on the point hold it
    on_point += holds_point;
    EXPECT_EQ(x.candidate < 0, holds_point) << seed;
    if (x.candidate >= 0) ++per_candidate.at(static_cast<size_t>(x.candidate));
  }
  EXPECT_NEAR(on_point / 400.0, aug.focus_on_aneurysm, 0.08);
  for (int n : per_candidate) EXPECT_NEAR(n / 400.0, (1 - aug.focus_on_aneurysm) / 3, 0.06);
  SiteCase mined = s;  // mined weights: drawn in their proportion
  mined.candidate_weights = {0.0, 0.1, 0.9};
  per_candidate = {};
  for (uint64_t seed = 0; seed < 400; ++seed) {
    std::mt19937_64 rng(seed);
    const Sample x = make_site_sample(mined, cfg, rng, aug);
    if (x.candidate >= 0) ++per_candidate.at(static_cast<size_t>(x.candidate));
  }
  const int drawn = per_candidate[0] + per_candidate[1] + per_candidate[2];
  EXPECT_EQ(per_candidate[0], 0);
  EXPECT_NEAR(per_candidate[2] / static_cast<double>(drawn), 0.9, 0.06);
  AugmentOptions none;
  none.enabled = false;
  std::mt19937_64 rng(0);
  EXPECT_THROW(make_site_sample(s, cfg, rng, none), Error);
}

TEST(RoiCases, WithoutBlobFeaturesCandidatesComeFromACoarseCopyAndFindTheBlob) {
  // 1 mm windows (a ROI of 96^3 voxels) without blob channels: the candidates come from the blob
  // measure on a 2 mm copy, mapped back to 1 mm voxels
  const TrainCase c = sphere_and_tube_case();
  Configuration cfg = sphere_window_config();
  cfg.target_spacing_mm = {1, 1, 1};
  cfg.blob_features = false;
  ASSERT_TRUE(windowed(cfg));
  const RoiCase r = make_roi_case(c, cfg, 1);
  ASSERT_EQ(r.x.sizes(), (std::vector<int64_t>{1, 96, 96, 96}));
  ASSERT_EQ(r.points.size(), 1u);
  ASSERT_FALSE(r.candidates.empty());
  for (int k = 0; k < 3; ++k)
    EXPECT_NEAR(static_cast<double>(r.candidates[0][static_cast<size_t>(k)]), r.points[0].first[static_cast<size_t>(k)],
                2.0)
        << k;
}

TEST(RoiCases, CoordinateJitterShiftsEachCoordinateChannelAsAWholeAndNothingElse) {
  // 1 image channel + 3 coordinate channels on a 4^3 window, coordinates as coordinate_channels makes them.
  Geometry g;
  g.size = {4, 4, 4};
  g.spacing = {2, 2, 2};
  const torch::Tensor base = torch::cat({torch::rand({1, 4, 4, 4}), coordinate_channels(g, {1, 2, 3})});
  std::mt19937_64 rng(5);
  std::vector<double> shifts_mm;
  for (int i = 0; i < 400; ++i) {
    torch::Tensor x = base.clone();
    jitter_coordinates(x, 8.0, rng);
    EXPECT_TRUE(torch::equal(x[0], base[0]));  // the image is untouched
    for (int a = 1; a <= 3; ++a) {
      const auto d = (x[a] - base[a]) * 64.0;                             // mm
      EXPECT_NEAR(d.max().item<double>(), d.min().item<double>(), 1e-3);  // one shift for the whole window
      shifts_mm.push_back(d.mean().item<double>());
    }
  }
  double mean = 0, sq = 0;
  for (double v : shifts_mm) mean += v / shifts_mm.size();
  for (double v : shifts_mm) sq += (v - mean) * (v - mean) / shifts_mm.size();
  EXPECT_NEAR(mean, 0.0, 1.0);
  EXPECT_NEAR(std::sqrt(sq), 8.0, 0.8);
  // sd 0: nothing changes and the random stream is not advanced
  std::mt19937_64 r1(9), r2(9);
  torch::Tensor x = base.clone();
  jitter_coordinates(x, 0.0, r1);
  EXPECT_TRUE(torch::equal(x, base));
  EXPECT_EQ(r1(), r2());
}

TEST(RoiCases, RotatedWindowsMoveImageMapsAndPointsTogether) {
  // Windows of the sphere case turned by up to 30 degrees and scaled by up to 20 % must keep the
  // point's label, show the map on the bright sphere, and carry the coordinate channels of the
  // positions they sampled.
  const TrainCase c = sphere_and_tube_case();
  const Configuration cfg = sphere_window_config();
  const RoiCase r = make_roi_case(c, cfg, 1);
  ASSERT_EQ(r.x.size(0), 1);
  const auto x = roi_input(c.image, c.roi_centre, cfg, 0.f, 1).x;
  const auto expected = x.slice(0, 1, 1 + kCoordinateChannels).select(1, 36).select(1, 12).select(1, 25);  // [3]
  AugmentOptions aug;
  aug.focus_on_aneurysm = 1;
  aug.flip_probability = 0;
  aug.roi_spatial_probability = 1;
  aug.rotate_deg = 30;
  aug.scale = 0.2;
  aug.coordinate_jitter_mm = 0;  // the coordinates follow the geometry exactly here
  int turned = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const Sample s = make_roi_sample(r, cfg, rng, aug);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{1 + kCoordinateChannels, 16, 16, 16}));
    EXPECT_EQ(s.labels[4].item<float>(), 1) << seed;
    EXPECT_EQ(s.labels.sum().item<float>(), 2) << seed;
    const auto on = s.aneurysm == 5;
    ASSERT_GT(on.sum().item<int64_t>(), 0) << seed;
    EXPECT_EQ((s.aneurysm > 0).sum().item<int64_t>(), on.sum().item<int64_t>()) << seed;
    EXPECT_GT(s.image[0].index({on}).mean().item<float>(), 2.0f) << seed;  // the map lies on the sphere
    // the mean sampled position over the map is the sphere's centre (within 1.5 mm; coordinates are / 64 mm)
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(s.image[1 + k].index({on}).mean().item<float>(), expected[k].item<float>(), 1.5 / 64)
          << seed << " axis " << k;
    // an axis-aligned crop keeps the x coordinate constant along y; a turned window does not
    if (std::abs(s.image[1][0][1][0].item<float>() - s.image[1][0][0][0].item<float>()) > 1e-4) ++turned;
  }
  EXPECT_GT(turned, 15);
}

TEST_F(TrainOnSynth, RoiWindowsCarryTheLabelsOfThePointsInsideThem) {
  Configuration cfg = tiny_config();
  cfg.target_spacing_mm = {2, 2, 2};  // 16^3 windows of 32 mm in the 128 mm ROI
  ASSERT_TRUE(windowed(cfg));
  AugmentOptions focus;
  focus.focus_on_aneurysm = 1;
  int positives = 0;
  for (const auto& ci : list_cases(work())) {
    const TrainCase c = load_case(work(), ci.id);
    const RoiCase r = make_roi_case(c, cfg, 1);
    std::mt19937_64 rng(4);
    const Sample s = make_roi_sample(r, cfg, rng, focus);
    ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{c.image.volumes + kCoordinateChannels, 16, 16, 16}));
    if (c.points.empty()) {
      if (c.labels[13] == 0) {
        EXPECT_EQ(s.labels.sum().item<float>(), 0) << ci.id;
      }
      continue;
    }
    ++positives;
    EXPECT_EQ(s.labels[13].item<float>(), 1) << ci.id;
    // every marked column is a location of the case (swapped to its twin when the window was flipped),
    // and shows in the aneurysm map
    for (int col = 0; col < kNumLabels - 1; ++col)
      if (s.labels[col].item<float>() == 1) {
        EXPECT_TRUE(c.labels[col] == 1 || c.labels[label_twin(col)] == 1) << ci.id << " column " << col;
        EXPECT_TRUE((s.aneurysm == col + 1).any().item<bool>()) << ci.id << " column " << col;
      }
  }
  EXPECT_GT(positives, 2);
}

// Batches of draws {0, 3, 5, 1, 2, 2, 7} (batch 3) made on the calling thread and by 3 workers: the
// same 3 batches (image, aneurysm map, labels).
void expect_same_batches_whatever_the_workers(const CaseStore& store, const Configuration& cfg,
                                              const AugmentOptions& aug) {
  const std::vector<size_t> draws = {0, 3, 5, 1, 2, 2, 7};
  BatchLoader sync(store, cfg, aug, draws, 3, 11, 2, 0, 1), async(store, cfg, aug, draws, 3, 11, 2, 3, 2);
  int n = 0;
  while (auto a = sync.next()) {
    auto b = async.next();
    ASSERT_TRUE(b.has_value());
    ++n;
    EXPECT_TRUE(torch::equal(a->image, b->image));
    EXPECT_TRUE(torch::equal(a->aneurysm, b->aneurysm));
    EXPECT_TRUE(torch::equal(a->labels, b->labels));
  }
  EXPECT_EQ(n, 3);
}

TEST_F(TrainOnSynth, LoaderFromRoiCachesIsDeterministicWhateverTheWorkers) {
  std::vector<std::string> ids;
  for (const auto& c : list_cases(work())) ids.push_back(c.id);
  CaseStore store(work(), ids, 1e9);
  Configuration cfg = tiny_config();
  cfg.target_spacing_mm = {2, 2, 2};
  ASSERT_TRUE(store.cache_rois(cfg, 2, 1e9));
  ASSERT_NE(store.roi(0), nullptr);
  AugmentOptions aug;
  expect_same_batches_whatever_the_workers(store, cfg, aug);
  // no ROI cache when the budget is too small or the configuration is not windowed
  CaseStore small(work(), ids, 1e9);
  EXPECT_FALSE(small.cache_rois(cfg, 2, 1e3));
  EXPECT_EQ(small.roi(0), nullptr);
  EXPECT_FALSE(small.cache_rois(tiny_config(), 2, 1e9));
}

// A candidate stage's cases read per sample become crops around their candidates, once: its
// batches come from them, the same whatever the workers; no crops without candidates, when the
// cases are in memory, without augmentation, or beyond the budget.
TEST_F(TrainOnSynth, LoaderFromSiteCropsIsDeterministicWhateverTheWorkers) {
  std::vector<std::string> ids;
  for (const auto& c : list_cases(work())) ids.push_back(c.id);
  Configuration cfg = tiny_config();
  cfg.target_spacing_mm = {2, 2, 2};
  CaseStore store(work(), ids, 0);  // read per sample
  ASSERT_FALSE(store.preloaded());
  ASSERT_FALSE(store.in_memory());
  cfg.loader_workers = 0;  // planned for windows cut from memory: a case read per sample takes a thread
  EXPECT_EQ(loader_threads(cfg, store, -1), 1);
  EXPECT_EQ(loader_threads(cfg, store, 0), 0);  // train --workers 0 is obeyed
  const AugmentOptions aug;
  EXPECT_FALSE(store.cache_sites(cfg, aug, 2, 1e9));  // not a candidate stage
  cfg.candidates = 4;
  std::map<std::string, std::vector<Vec3>> by_id;
  for (size_t i = 0; i < store.size(); ++i) {
    const auto c = store.get(i);
    by_id[c->id] = {c->roi_centre, c->roi_centre + Vec3{10, 0, 0}};
  }
  store.set_candidates(by_id);
  AugmentOptions none;
  none.enabled = false;
  EXPECT_FALSE(store.cache_sites(cfg, none, 2, 1e9));
  EXPECT_FALSE(store.cache_sites(cfg, aug, 2, 1e3));
  EXPECT_EQ(store.site(0), nullptr);
  ASSERT_TRUE(store.cache_sites(cfg, aug, 2, 1e9));
  ASSERT_NE(store.site(0), nullptr);
  EXPECT_TRUE(store.in_memory());
  EXPECT_EQ(loader_threads(cfg, store, -1), 0);  // the crops are in memory: the plans' none
  cfg.loader_workers = 2;
  EXPECT_EQ(loader_threads(cfg, store, -1), 2);
  EXPECT_EQ(store.site(0)->candidates, 2u);
  EXPECT_GT(store.site_bytes(), 0u);
  EXPECT_THROW(store.set_candidates(by_id), Error);
  expect_same_batches_whatever_the_workers(store, cfg, aug);
  CaseStore in_memory(work(), ids, 1e9);
  ASSERT_TRUE(in_memory.preloaded());
  EXPECT_FALSE(in_memory.cache_sites(cfg, aug, 2, 1e9));
}

TEST_F(TrainOnSynth, LoaderIsDeterministicWhateverTheWorkers) {
  const auto cases = list_cases(work());
  std::vector<std::string> ids;
  for (const auto& c : cases) ids.push_back(c.id);
  const CaseStore store(work(), ids, 1e9);
  const Configuration cfg = tiny_config();
  AugmentOptions aug;
  const std::vector<size_t> draws = {0, 3, 5, 1, 2, 2, 7};
  BatchLoader sync(store, cfg, aug, draws, 3, 11, 2, 0, 1), async(store, cfg, aug, draws, 3, 11, 2, 3, 2);
  EXPECT_EQ(sync.batches(), 3u);
  int n = 0;
  for (;;) {
    auto a = sync.next();
    auto b = async.next();
    ASSERT_EQ(a.has_value(), b.has_value());
    if (!a) break;
    ++n;
    EXPECT_TRUE(torch::equal(a->image, b->image));
    EXPECT_TRUE(torch::equal(a->aneurysm, b->aneurysm));
    EXPECT_TRUE(torch::equal(a->labels, b->labels));
    EXPECT_EQ(a->cases, b->cases);
    EXPECT_EQ(a->image.size(1), store.get(0)->image.volumes + kCoordinateChannels);
    EXPECT_EQ(a->image.size(2), 16);
  }
  EXPECT_EQ(n, 3);
}

}  // namespace
}  // namespace aneura
