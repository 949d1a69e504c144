// Trainer tests: losses against hand computations, the flip and its swap table, folds, sampling,
// the loader's determinism, the ROI finder on synthetic cases of every modality, an overfit run
// that must reach perfect training AUC, exact resume, and clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "dataset/rsna.hpp"
#include "evaluate/metrics.hpp"
#include "infer/maps.hpp"
#include "infer/model_info.hpp"
#include "infer/predictor.hpp"
#include "io/nifti.hpp"
#include "model/checkpoint.hpp"
#include "model/registry.hpp"
#include "support/run.hpp"
#include "support/series_fixture.hpp"
#include "synth/dataset.hpp"
#include "train/folds.hpp"
#include "train/loader.hpp"
#include "train/losses.hpp"
#include "train/time_budget.hpp"
#include "train/trainer.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {

using test::code_of;
using test::run_aneura;

// ---------------------------------------------------------------- losses (hand computations)

TEST(Losses, SoftDiceByHand) {
  // one sample, two classes, four voxels; target = [0, 1, 1, 0]
  auto probs = torch::tensor({0.9f, 0.2f, 0.4f, 0.7f, 0.1f, 0.8f, 0.6f, 0.3f}).reshape({1, 2, 4});
  auto target = torch::tensor({0, 1, 1, 0}, torch::kLong).reshape({1, 4});
  // class 1: intersection 0.8 + 0.6 = 1.4; sum p = 1.8; sum y = 2 -> dice = 2.8 / 3.8
  const double expected = 1 - (2.8 + 1e-5) / (3.8 + 1e-5);
  EXPECT_NEAR(soft_dice_loss(probs, target).item<double>(), expected, 1e-6);
}

TEST(Losses, SegmentationIsCrossEntropyPlusDice) {
  auto logits = torch::tensor({2.0f, 0.0f, 0.0f, 1.0f}).reshape({1, 2, 2});  // voxel 0: (2, 0); voxel 1: (0, 1)
  auto target = torch::tensor({0, 1}, torch::kLong).reshape({1, 2});
  const double p00 = std::exp(2.0) / (std::exp(2.0) + 1), p11 = std::exp(1.0) / (std::exp(1.0) + 1);
  const double ce = -(std::log(p00) + std::log(p11)) / 2;
  const double p10 = 1 - p00;  // class-1 probability at voxel 0
  const double dice = (2 * p11 + 1e-5) / (p10 + p11 + 1 + 1e-5);
  EXPECT_NEAR(segmentation_loss(logits, target).item<double>(), ce + 1 - dice, 1e-5);
}

TEST(Losses, AneurysmIsWeightedCrossEntropyPlusDiceOverSamplesWithAnAneurysm) {
  // 2 samples x 2 voxels, 14 classes, logits 0 except sample 0 voxel 1 class 3 = log 13 (p = 0.5)
  auto logits = torch::zeros({2, 14, 2});
  logits[0][3][1] = std::log(13.0);
  auto target = torch::zeros({2, 2}, torch::kLong);
  target[0][1] = 3;  // sample 1 holds no aneurysm voxel
  const double w = 10;
  // CE weighted mean: 3 background voxels (p = 1/14; weight 1) and one class-3 voxel (p = 0.5; weight w)
  const double ce = (3 * std::log(14.0) + w * std::log(2.0)) / (3 + w);
  // Dice over sample 0 only: p(fg) = 13/14 at voxel 0, 1 - 1/26 at voxel 1; target fg at voxel 1
  const double pf0 = 13.0 / 14, pf1 = 1 - 1.0 / 26;
  const double dice = (2 * pf1 + 1e-5) / (pf0 + pf1 + 1 + 1e-5);
  EXPECT_NEAR(aneurysm_loss(logits, target, w).item<double>(), ce + 1 - dice, 1e-5);
  // no aneurysm voxel in the batch: the CE alone (every voxel background, p = 1/14)
  EXPECT_NEAR(aneurysm_loss(torch::zeros({1, 14, 3}), torch::zeros({1, 3}, torch::kLong), w).item<double>(),
              std::log(14.0), 1e-5);
}

NetworkOutput fake_output(int n) {
  NetworkOutput o;
  o.vessel = torch::zeros({n, 14, 2, 2, 2});
  o.aneurysm = torch::zeros({n, 14, 2, 2, 2});
  o.labels = torch::zeros({n, 14});
  o.modality = torch::zeros({n, 4});
  return o;
}

TEST(Losses, BceWithPositiveWeightsByHand) {
  NetworkOutput o = fake_output(1);
  o.labels[0][0] = 1.0;  // sigmoid(1) = 0.7311
  Targets t{torch::zeros({1, 2, 2, 2}, torch::kLong), torch::zeros({1, 2, 2, 2}, torch::kLong), torch::zeros({1, 14}),
            torch::tensor({-1}, torch::kLong), torch::tensor({false})};
  t.labels[0][0] = 1;
  t.labels[0][13] = 1;
  auto pw = torch::ones({14});
  pw[0] = 3;
  const std::map<std::string, double> w{{"classification", 1}};
  const LossTerms l = multitask_loss(o, t, pw, w);
  // column 0: 3 * -log(sigmoid(1)); column 13: -log(0.5); 12 others: -log(0.5); mean over 14
  const double expected = (3 * -std::log(1 / (1 + std::exp(-1.0))) + 13 * std::log(2.0)) / 14;
  EXPECT_NEAR(l.labels.item<double>(), expected, 1e-6);
  EXPECT_NEAR(l.total.item<double>(), expected, 1e-6);  // only the classification weight is set
  // no vessel labels and an unknown modality: those terms are 0, not NaN
  EXPECT_EQ(l.vessel.item<double>(), 0);
  EXPECT_EQ(l.modality.item<double>(), 0);
}

TEST(Losses, ModalityIgnoresUnknownAndVesselOnlyLabelledSamples) {
  NetworkOutput o = fake_output(2);
  o.modality[0][2] = 2.0;
  Targets t{torch::zeros({2, 2, 2, 2}, torch::kLong), torch::zeros({2, 2, 2, 2}, torch::kLong), torch::zeros({2, 14}),
            torch::tensor({2, -1}, torch::kLong), torch::tensor({false, true})};
  o.vessel[0][5] = 50;  // sample 0 has no vessel labels: its (wrong) prediction must not count
  const LossTerms l = multitask_loss(o, t, torch::ones({14}), {{"modality", 1}, {"vessel", 1}});
  const double ce = -std::log(std::exp(2.0) / (std::exp(2.0) + 3));
  EXPECT_NEAR(l.modality.item<double>(), ce, 1e-6);
  // sample 1: uniform logits over 14 classes, all background: CE = log 14; Dice of absent classes
  const double p = 1.0 / 14;
  const double dice_absent = 1e-5 / (8 * p + 1e-5);  // per foreground class: no target voxels
  EXPECT_NEAR(l.vessel.item<double>(), std::log(14.0) + 1 - dice_absent, 1e-5);
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

TEST(Losses, HeatmapEvidenceIsTheLogitOfTheLargestProbability) {
  auto logits = torch::zeros({1, 14, 1, 1, 2});
  logits[0][3][0][0][1] = std::log(13.0 * 3);  // voxel 1: class 3 has p = 39 / (39 + 13) = 0.75
  const auto e = heatmap_evidence(logits);
  EXPECT_NEAR(e[0][2].item<double>(), std::log(0.75 / 0.25), 1e-5);                   // location column 2 = class 3
  EXPECT_NEAR(e[0][13].item<double>(), std::log((1 - 1.0 / 52) / (1.0 / 52)), 1e-4);  // any = 1 - p(bg) at voxel 1
  EXPECT_NEAR(e[0][0].item<double>(), std::log((1.0 / 14) / (13.0 / 14)), 1e-5);      // voxel 0: uniform
}

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

// ---------------------------------------------------------------- windows

TEST(Windows, AConfigurationIsWindowedWhenItsPatchIsSmallerThanItsRoi) {
  Configuration c;
  c.roi_mm = {128, 128, 112};
  c.patch_size = {32, 32, 32};
  c.target_spacing_mm = {2, 2, 2};
  EXPECT_TRUE(windowed(c));
  EXPECT_EQ(window_spacing(c), (Vec3{2, 2, 2}));
  const Geometry roi = roi_grid({10, 20, 30}, c);
  EXPECT_EQ(roi.size, (std::array<int64_t, 3>{64, 64, 56}));
  const Vec3 mid = roi.index_to_world({31.5, 31.5, 27.5});  // centred
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(mid[a], 10.0 * (a + 1), 1e-9);
  EXPECT_EQ(roi.orientation_code(), "RAS");
  c.target_spacing_mm = {3.8, 3.8, 3.2};  // 32 x 3.8 = 122 mm: within 10 % of 128, so the patch is the ROI
  EXPECT_FALSE(windowed(c));
  EXPECT_EQ(window_spacing(c), (Vec3{4, 4, 3.5}));
  EXPECT_EQ(roi_grid({0, 0, 0}, c).size, (std::array<int64_t, 3>{32, 32, 32}));
}

TEST(Windows, StartsOverlapByHalfAPatchAndAreSymmetric) {
  const auto w = window_starts({64, 64, 56}, {32, 32, 32});
  ASSERT_EQ(w.size(), 27u);
  std::set<int64_t> x, z;
  for (const auto& s : w) x.insert(s[0]), z.insert(s[2]);
  EXPECT_EQ(x, (std::set<int64_t>{0, 16, 32}));
  EXPECT_EQ(z, (std::set<int64_t>{0, 12, 24}));
  // a span of 35: 3 strides of at most 16 -> 0, 11, 24, 35; the mirrored starts (35 - s) are starts too
  const auto v = window_starts({67, 32, 20}, {32, 32, 32});
  ASSERT_EQ(v.size(), 4u);
  std::set<int64_t> s;
  for (const auto& a : v) {
    s.insert(a[0]);
    EXPECT_EQ(a[1], 0);
    EXPECT_EQ(a[2], 0);
  }
  for (int64_t a : s) EXPECT_TRUE(s.count(35 - a)) << a;
  EXPECT_EQ(s, (std::set<int64_t>{0, 11, 24, 35}));
  // a quarter overlap: strides of at most 24 over a span of 36 -> 0, 18, 36
  const auto q = window_starts({68, 32, 20}, {32, 32, 32}, 0.25);
  std::set<int64_t> t;
  for (const auto& a : q) t.insert(a[0]);
  EXPECT_EQ(t, (std::set<int64_t>{0, 18, 36}));
  // no overlap on a span that is a multiple of the patch: the windows tile the ROI
  const auto tiles = window_starts({64, 48, 16}, {16, 16, 16}, 0.0);
  EXPECT_EQ(tiles.size(), 4u * 3u * 1u);
}

// An ellipsoid head (radii along L, P, S) centred at `centre` (LPS mm) on a RAS grid of 2 mm voxels
// whose field of view ends `top_mm` above the centre and starts 90 mm below it: brain 1.0, air the
// magnitude of N(0, 0.08) (about a fifth of the air passes the finder's threshold, as in noisy MR).
Volume<float> ellipsoid_head(const Vec3& centre, const Vec3& radii, double top_mm, uint64_t seed,
                             double s_spacing = 2) {
  Geometry g;
  g.spacing = {2, 2, s_spacing};
  g.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};  // RAS, as the cases
  g.size = {110, 120, static_cast<int64_t>((top_mm + 90) / s_spacing) + 1};
  g.origin = {centre[0] + 109, centre[1] + 119, centre[2] - 90};
  Volume<float> v(g);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.f, 0.08f);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
        double e = 0;
        for (int a = 0; a < 3; ++a) e += std::pow((w[a] - centre[a]) / radii[a], 2);
        v.at(i, j, k) = e <= 1 ? 1.f : std::fabs(noise(rng));
      }
  return v;
}

TEST(RoiFinder, WidestHeadLevelIsTheVertexOfTheDomeEvenWhenTheTopIsCut) {
  // An ellipsoid's cross-sections: area(z) = A (1 - ((z - 20) / 70)^2), the top cut at 70 mm, a
  // neck (a constant narrow section) below -40 mm and shoulders (wider than the head) below -150 mm.
  std::vector<double> level, area;
  for (double z = -200; z <= 70; z += 2) {
    level.push_back(z);
    area.push_back(z < -150 ? 40000 : z < -40 ? 5000 : 15000 * (1 - std::pow((z - 20) / 70, 2)));
  }
  const auto w = widest_head_level(level, area);
  ASSERT_TRUE(w.has_value());
  EXPECT_NEAR(*w, 20.0, 0.5);
  // No dome: the same area at every level.
  EXPECT_FALSE(widest_head_level(level, std::vector<double>(level.size(), 100.0)).has_value());
  EXPECT_FALSE(widest_head_level({}, {}).has_value());
}

TEST(RoiFinder, CentresTheRoiBelowTheWidestSectionOfNoisyHeadsWhateverTheirHeightAndFieldOfView) {
  // The vertex rules put these 12 and 12 mm off the CoW level (8 mm below the centre): 78 mm below
  // the vertex of a head 60 mm high, and 60 mm below a field of view that cuts the top at 40 mm.
  const Vec3 centre{5, -10, 30};
  for (const auto& [radii, top] : std::vector<std::pair<Vec3, double>>{{{70, 85, 60}, 70.0}, {{72, 88, 70}, 40.0}}) {
    const auto head = ellipsoid_head(centre, radii, top, 7);
    const RoiAnchor a = find_roi_anchor(head);
    EXPECT_EQ(a.rule, RoiRule::Widest);
    EXPECT_NEAR(a.point[2], centre[2], 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    const Vec3 c = find_roi_centre(head);  // the default offset: 8 mm below the widest section
    EXPECT_NEAR(c[0], centre[0], 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    EXPECT_NEAR(c[1], centre[1], 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    EXPECT_NEAR(c[2], centre[2] - 8, 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    // 0.5 mm along S: the finder samples every 4th level (~2 mm) and finds the same place
    const RoiAnchor fine = find_roi_anchor(ellipsoid_head(centre, radii, top, 7, 0.5));
    EXPECT_EQ(fine.rule, RoiRule::Widest);
    for (int ax = 0; ax < 3; ++ax)
      EXPECT_NEAR(fine.point[ax], a.point[ax], 1.0) << "axis " << ax << ", head " << radii[2] << " mm high";
    RoiOffsets o;
    o.by_rule[static_cast<int>(RoiRule::Widest)] = {7, 4,
                                                    -30};  // L is ignored: a mirrored head keeps the mirrored centre
    const Vec3 l = find_roi_centre(head, o);
    EXPECT_NEAR(l[0], c[0], 1e-9);
    EXPECT_NEAR(l[1], c[1] + 4, 1e-9);
    EXPECT_NEAR(l[2], c[2] + 8 - 30, 1e-9);
  }
}

TEST(RoiFinder, OffsetsAreLearnedFromTheMedianOfEveryLocationOnceAndOnlyWithEnoughCases) {
  // 6 heads anchored at their widest section whose aneurysms lie ~30 mm below and 5 mm anterior of
  // it (a real head's widest section is higher above the CoW than a synthetic one's). The ACom
  // (column 6) is much more common and 18 mm below: a median over points would follow it, the
  // median over locations does not. 4 vertex-anchored heads are too few to learn from.
  std::vector<std::pair<RoiAnchor, std::vector<std::pair<Vec3, int>>>> cases;
  for (int h = 0; h < 6; ++h) {
    RoiAnchor a{{3.0 * h, -20.0 + h, 40.0 + 2 * h}, RoiRule::Widest};
    std::vector<std::pair<Vec3, int>> pts;
    for (int col : {0, 2, 4, 8, 11})
      pts.push_back({a.point + Vec3{10.0 - col, -5.0 + 0.1 * h, -30.0 + 0.2 * (h - 2.5)}, col});
    for (int k = 0; k < 8; ++k) pts.push_back({a.point + Vec3{0, -5, -18}, 6});
    cases.push_back({a, pts});
  }
  cases.push_back({{{0, 0, 0}, RoiRule::Widest}, {}});  // a negative case counts for nothing
  for (int h = 0; h < 4; ++h) cases.push_back({{{0, 0, 100}, RoiRule::Vertex}, {{{0, 0, 30}, 6}}});
  const RoiOffsets o = learn_roi_offsets(cases);
  const Vec3 w = o.by_rule[static_cast<int>(RoiRule::Widest)];
  EXPECT_EQ(w[0], 0.0);
  EXPECT_NEAR(w[1], -5.0 + 0.25, 1e-9);  // per column the median of h = 0..5: -5 + 0.1 x 2.5; ACom's -5
  EXPECT_NEAR(w[2], -30.0, 1e-9);        // columns 0, 2, 4, 8, 11 at -30 (medians), ACom at -18: median -30
  EXPECT_EQ(o.cases[static_cast<int>(RoiRule::Widest)], 6);
  EXPECT_EQ(o.by_rule[static_cast<int>(RoiRule::Vertex)], RoiOffsets{}.by_rule[static_cast<int>(RoiRule::Vertex)]);
  EXPECT_EQ(o.cases[static_cast<int>(RoiRule::Vertex)], 0);
  // model.json round trip; an absurd offset is refused; a missing rule keeps its default
  const RoiOffsets back = RoiOffsets::from_json(o.to_json());
  EXPECT_EQ(back.by_rule, o.by_rule);
  EXPECT_EQ(back.cases, o.cases);
  auto bad = o.to_json();
  bad["widest"]["offset_lps_mm"][2] = 1e6;
  EXPECT_EQ(code_of([&] { RoiOffsets::from_json(bad); }), ErrorCode::CorruptInput);
  bad.erase("widest");
  EXPECT_EQ(RoiOffsets::from_json(bad).by_rule[static_cast<int>(RoiRule::Widest)],
            RoiOffsets{}.by_rule[static_cast<int>(RoiRule::Widest)]);
}

TEST(Windows, CoordinateChannelsAreTheWorldPositionFromTheRoiCentre) {
  Geometry g;
  g.size = {4, 3, 2};
  g.spacing = {2, 2, 3};
  g.origin = {10, -6, 40};
  g.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};  // RAS
  const auto c = coordinate_channels(g, {0, 0, 40});
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{3, 4, 3, 2}));
  // voxel (3, 2, 1): LPS (10 - 6, -6 - 4, 40 + 3) = (4, -10, 43); minus the centre, / 64
  EXPECT_NEAR(c[0][3][2][1].item<double>(), 4.0 / 64, 1e-6);
  EXPECT_NEAR(c[1][3][2][1].item<double>(), -10.0 / 64, 1e-6);
  EXPECT_NEAR(c[2][3][2][1].item<double>(), 3.0 / 64, 1e-6);
  EXPECT_NEAR(c[0][0][0][0].item<double>(), 10.0 / 64, 1e-6);
}

TEST(Windows, MirroredInputIsThatOfTheMirroredHead) {
  // a head symmetric about the ROI centre: its ROI input mirrored is itself
  Geometry g;
  g.size = {6, 2, 2};
  g.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};
  g.origin = g.index_to_world({0, 0, 0}) - g.index_to_world({2.5, 0.5, 0.5});  // centre at 0
  const auto image = torch::tensor({1.f, 5.f, 2.f, 2.f, 5.f, 1.f}).reshape({1, 6, 1, 1}).expand({1, 6, 2, 2});
  const auto x = torch::cat({image, coordinate_channels(g, {0, 0, 0})});
  EXPECT_TRUE(torch::allclose(mirror_input(x), x));
  EXPECT_TRUE(torch::equal(mirror_input(mirror_input(x.unsqueeze(0))), x.unsqueeze(0)));  // batched, twice
}

TEST(Windows, BlobFeaturesMarkASphereAndNotATube) {
  // 1 mm grid: a bright sphere (radius 3 mm) and a bright tube (radius 1.5 mm) on a dark background
  const int64_t n = 40;
  auto img = torch::zeros({n, n, n});
  auto acc = img.accessor<float, 3>();
  for (int64_t x = 0; x < n; ++x)
    for (int64_t y = 0; y < n; ++y)
      for (int64_t z = 0; z < n; ++z) {
        const double ds = std::sqrt(double((x - 10) * (x - 10) + (y - 20) * (y - 20) + (z - 20) * (z - 20)));
        const double dt = std::sqrt(double((y - 20) * (y - 20) + (z - 20) * (z - 20)));
        if (ds <= 3) acc[x][y][z] = 2;
        if (x >= 24 && dt <= 1.5) acc[x][y][z] = 2;
      }
  const auto b = blob_channels(img, {1, 1, 1});
  ASSERT_EQ(b.sizes(), (std::vector<int64_t>{2, n, n, n}));
  const double sphere = b[0][10][20][20].item<double>(), tube = b[0][32][20][20].item<double>(),
               flat = b[0][20][5][5].item<double>();
  EXPECT_GT(sphere, 0.3);
  EXPECT_LT(tube, 0.2 * sphere);
  EXPECT_LT(flat, 1e-3);
  // the dark measure marks the same sphere in the negated image, and not the bright one
  const auto d = blob_channels(-img, {1, 1, 1});
  EXPECT_NEAR(d[1][10][20][20].item<double>(), sphere, 1e-4);
  EXPECT_LT(b[1][10][20][20].item<double>(), 1e-3);
  Configuration c;
  c.blob_features = true;
  EXPECT_EQ(input_channels(c, 1), 1 + kBlobChannels + kCoordinateChannels);
}

// ---------------------------------------------------------------- folds and sampling

std::vector<CaseInfo> fake_cases(int n) {
  std::vector<CaseInfo> c;
  const char* mods[] = {"CTA", "MRA", "MRI T2", "MRI T1post"};
  for (int i = 0; i < n; ++i) c.push_back({"c" + std::to_string(100 + i), mods[i % 4], (i / 4) % 2 == 0, true, {}});
  c.push_back({"unlabelled", "CTA", false, false, {}});
  return c;
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

// ---------------------------------------------------------------- on synthetic cases

Configuration tiny_config() {
  Configuration c;
  c.name = "tiny";
  c.patch_size = {16, 16, 16};
  c.roi_mm = {128, 128, 112};
  c.target_spacing_mm = {8, 8, 7};  // the whole ROI in one patch (not windowed)
  c.stages = 3;
  c.base_channels = 4;
  c.max_channels = 16;
  c.batch_size = 4;
  c.loader_workers = 1;
  c.queue_length = 2;
  c.optimizer = "adamw";
  c.learning_rate = 1e-2;
  c.weight_decay = 0;
  c.epochs = 2;
  c.folds = 1;
  c.ema_decay = 0;
  c.normalization = json::object();
  return c;
}

void write_test_plans(const fs::path& work, const Configuration& c) {
  Plans p;
  p.default_configuration = c.name;
  p.global = json::object();
  p.raw[c.name] = configuration_to_json(c);
  write_plans(p, work / "plans.json");
}

// One synthetic dataset (tiny, every modality) preprocessed once for the suite.
class TrainOnSynth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("train");
    synth::SynthOptions so;
    so.out = dir_->path / "data";
    so.n = 20;
    so.size = synth::Size::Tiny;
    so.seed = 5;
    so.positive_fraction = 0.5;
    synth::write_dataset(so);
    CaseOptions o;
    o.harmonize.spacing = {2.5, 2.5, 2.5};
    preprocess_dataset(read_rsna(so.out), work(), o, 2);
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path work() { return dir_->path / "work"; }
  // A copy of the case cache without runs; `limit` > 0: only the first `limit` cases.
  static fs::path fresh_work(const std::string& tag, size_t limit = 0) {
    const fs::path w = dir_->path / tag;
    fs::remove_all(w);
    fs::create_directories(w / "cases");
    const auto cases = list_cases(work());
    for (size_t i = 0; i < cases.size() && (limit == 0 || i < limit); ++i)
      fs::copy(work() / "cases" / cases[i].id, w / "cases" / cases[i].id, fs::copy_options::recursive);
    return w;
  }
  static test::TempDir* dir_;
};
test::TempDir* TrainOnSynth::dir_ = nullptr;

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
  ASSERT_EQ(r.x.sizes(), (std::vector<int64_t>{1 + kBlobChannels + kCoordinateChannels, 48, 48, 48}));
  ASSERT_EQ(r.points.size(), 1u);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_LE(r.candidates.size(), static_cast<size_t>(kRoiCandidates));
  // the strongest candidate is the sphere (ROI voxel index of the point), not the tube
  for (int k = 0; k < 3; ++k)
    EXPECT_NEAR(static_cast<double>(r.candidates[0][static_cast<size_t>(k)]), r.points[0].first[static_cast<size_t>(k)],
                1.0)
        << k;
  // the ROI input is the one prediction makes
  EXPECT_TRUE(torch::allclose(r.x, roi_input(c.image, c.roi_centre, cfg, 0.f, 1).x));
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
  EXPECT_TRUE(torch::equal(centre.image, r.x.slice(1, 16, 32).slice(2, 16, 32).slice(3, 16, 32)));
  EXPECT_EQ(centre.labels.sum().item<float>(), 0);  // the point is outside 16..31 along x and y
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
  ASSERT_EQ(r.x.size(0), 1 + kCoordinateChannels);
  const auto expected = r.x.slice(0, 1, 1 + kCoordinateChannels).select(1, 36).select(1, 12).select(1, 25);  // [3]
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

TEST_F(TrainOnSynth, LoaderFromRoiCachesIsDeterministicWhateverTheWorkers) {
  std::vector<std::string> ids;
  for (const auto& c : list_cases(work())) ids.push_back(c.id);
  CaseStore store(work(), ids, 1e9);
  Configuration cfg = tiny_config();
  cfg.target_spacing_mm = {2, 2, 2};
  ASSERT_TRUE(store.cache_rois(cfg, 2, 1e9));
  ASSERT_NE(store.roi(0), nullptr);
  AugmentOptions aug;
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
  // no ROI cache when the budget is too small or the configuration is not windowed
  CaseStore small(work(), ids, 1e9);
  EXPECT_FALSE(small.cache_rois(cfg, 2, 1e3));
  EXPECT_EQ(small.roi(0), nullptr);
  EXPECT_FALSE(small.cache_rois(tiny_config(), 2, 1e9));
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

TEST_F(TrainOnSynth, OverfitsATinyNetworkToPerfectTrainingAuc) {
  const fs::path w = fresh_work("overfit", 8);
  Configuration c = tiny_config();
  c.epochs = 50;
  c.batch_size = 4;
  c.learning_rate = 1e-2;
  c.loss_weights = {{"vessel", 0}, {"aneurysm", 1}, {"classification", 1}, {"modality", 0.2}};
  write_test_plans(w, c);
  TrainOptions o;
  o.work = w;
  o.augment = false;
  o.progress = false;
  o.threads = 2;
  const TrainResult r = train(o);
  EXPECT_EQ(r.epochs_done, 50);
  // loss went down
  std::ifstream log(r.run_dir / "log.jsonl");
  std::vector<double> loss;
  for (std::string line; std::getline(log, line);) loss.push_back(json::parse(line).at("train_loss"));
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

// The raw (not EMA) weights of a checkpoint: all of them, or the encoder's only.
std::vector<torch::Tensor> weights_of(const fs::path& checkpoint, const ModelInfo& info, bool encoder_only = false) {
  MultiTaskUNet net = build_model(info.cfg, info.in_channels);
  load_weights(checkpoint, net, false);
  std::vector<torch::Tensor> out;
  for (const auto& p : encoder_only ? encoder_parameters(net) : net->parameters()) out.push_back(p.detach().clone());
  return out;
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
  // a resumed run keeps its schedule; its earlier seconds count
  TimeBudget resumed(100, true, ten_s_ago);
  resumed.set_elapsed_before(85);
  resumed.set_validation_s(4);
  EXPECT_TRUE(resumed.no_room_for_another(2));  // 95 + 2 + 4 > 100
  EXPECT_EQ(resumed.fit_schedule(7, 7, 2, false, 40, 100), 40);
}

}  // namespace
}  // namespace aneura
