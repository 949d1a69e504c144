#include "harmonize/normalize.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.hpp"
#include "harmonize/pipeline.hpp"

namespace aneura {
namespace {

Volume<float> from_values(const std::vector<float>& vals) {
  Geometry g;
  g.size = {static_cast<int64_t>(vals.size()), 1, 1};
  Volume<float> v(g);
  std::copy(vals.begin(), vals.end(), v.data.begin());
  return v;
}

TEST(Normalize, PercentileMatchesNumpy) {
  // numpy.percentile([1, 2, 3, 4, 10], [0, 25, 50, 90, 100]) = [1, 2, 3, 7.6, 10]
  const std::vector<float> x{10, 3, 1, 4, 2};
  EXPECT_DOUBLE_EQ(percentile(x, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(x, 25), 2);
  EXPECT_DOUBLE_EQ(percentile(x, 50), 3);
  EXPECT_NEAR(percentile(x, 90), 7.6, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(x, 100), 10);
  const auto p = percentiles(from_values(x), {25, 90});
  EXPECT_NEAR(p[1], 7.6, 1e-12);
}

TEST(Normalize, PercentilesBySelectionEqualThoseOfTheSortedValues) {
  // numpy's rule on the sorted values, in any order of the percentiles, with ties and extremes
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> d(-50, 50);
  for (size_t n : {1u, 2u, 7u, 1000u, 4097u}) {
    std::vector<float> vals(n);
    for (float& x : vals) x = static_cast<float>(d(rng)) * 0.5f;
    std::vector<float> sorted = vals;
    std::sort(sorted.begin(), sorted.end());
    const std::vector<double> ps{99.5, 0, 50, 0.5, 100, 12.3, 50, 87.9, 1};
    const auto got = percentiles(from_values(vals), ps);
    for (size_t i = 0; i < ps.size(); ++i) {
      const double pos = ps[i] / 100 * (n - 1);
      const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, n - 1);
      const double want = sorted[lo] + (pos - lo) * (double(sorted[hi]) - sorted[lo]);
      EXPECT_NEAR(got[i], want, 1e-9) << n << " p" << ps[i];
      EXPECT_NEAR(percentile(vals, ps[i]), want, 1e-9) << n << " p" << ps[i];
    }
  }
}

TEST(Normalize, CtWindowByHand) {
  // brain window 40/80: [0, 80] HU -> [0, 1]
  const Volume<float> w = ct_window(from_values({-1000, 0, 20, 40, 60, 80, 3000}), 40, 80);
  const std::vector<float> expect{0, 0, 0.25f, 0.5f, 0.75f, 1, 1};
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_FLOAT_EQ(w.data[i], expect[i]);
  const Volume<float> ch = ct_windows(from_values({40, 600}), standard_windows());
  ASSERT_EQ(ch.volumes, 4);
  EXPECT_FLOAT_EQ(ch.data[0], 0.5f);                               // brain channel, 40 HU
  EXPECT_FLOAT_EQ(ch.data[2 * 2 + 1], 0.5f);                       // bone channel (600/2800), 600 HU
  EXPECT_FLOAT_EQ(ch.data[1 * 2 + 0], (40.f - (80 - 100)) / 200);  // subdural channel, 40 HU = 0.3
}

TEST(Normalize, ClipZscoreByHand) {
  const Volume<float> z = clip_zscore(from_values({-2000, 0, 100, 5000}), -1000, 1000, 100, 50);
  EXPECT_FLOAT_EQ(z.data[0], (-1000 - 100) / 50.f);
  EXPECT_FLOAT_EQ(z.data[1], -2.f);
  EXPECT_FLOAT_EQ(z.data[2], 0.f);
  EXPECT_FLOAT_EQ(z.data[3], 18.f);
}

TEST(Normalize, ZscoreInsideMask) {
  Volume<float> v = from_values({1, 2, 3, 1000});
  Volume<uint8_t> m(v.geom);
  m.data = {1, 1, 1, 0};
  const Volume<float> z = zscore(v, &m);
  // mean 2, population std sqrt(2/3)
  EXPECT_NEAR(z.data[0], -1 / std::sqrt(2.0 / 3), 1e-6);
  EXPECT_NEAR(z.data[1], 0, 1e-6);
  EXPECT_NEAR(z.data[3], 998 / std::sqrt(2.0 / 3), 1e-3);
}

TEST(Normalize, PercentileScaleToUnit) {
  std::vector<float> vals;
  for (int i = 0; i <= 100; ++i) vals.push_back(static_cast<float>(i));
  const Volume<float> s = percentile_scale(from_values(vals), 1, 99);
  EXPECT_FLOAT_EQ(s.data[0], 0);
  EXPECT_FLOAT_EQ(s.data[50], 0.5f);
  EXPECT_FLOAT_EQ(s.data[100], 1);
}

TEST(Normalize, NyulMapsDifferentScannersOntoOneScale) {
  // Two "scanners": the same uniform histogram 0..1000, one scaled by 3 and shifted by 500.
  std::vector<float> a, b;
  for (int i = 0; i <= 1000; ++i) {
    a.push_back(static_cast<float>(i));
    b.push_back(static_cast<float>(3 * i + 500));
  }
  const Volume<float> va = from_values(a), vb = from_values(b);
  const NyulModel m = nyul_fit({&va, &vb}, {});
  ASSERT_EQ(m.standard.size(), m.percentiles.size());
  EXPECT_NEAR(m.standard.front(), 0, 1e-9);
  EXPECT_NEAR(m.standard.back(), 100, 1e-9);
  EXPECT_NEAR(m.standard[5], 50, 1e-6);  // the median lands mid-scale for a uniform histogram
  const Volume<float> na = nyul_apply(va, m), nb = nyul_apply(vb, m);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(na.data[i], nb.data[i], 1e-3);
  EXPECT_NEAR(na.data[500], 50, 1e-3);
}

// A brain of three tissues with known intensities (white matter `wm`, grey matter, CSF, each with
// its share of the voxels and Gaussian noise), seen by a scanner that scales by `a` and adds `b`.
// `tissue` gets each voxel's tissue (0 WM, 1 GM, 2 CSF).
Volume<float> three_tissues(double wm, double gm, double csf, const std::array<double, 3>& share, double a, double b,
                            std::vector<int>* tissue = nullptr) {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 3.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> vals;
  for (int i = 0; i < 60000; ++i) {
    const double r = u(rng);
    const int t = r < share[0] ? 0 : r < share[0] + share[1] ? 1 : 2;
    const double mean = t == 0 ? wm : t == 1 ? gm : csf;
    vals.push_back(static_cast<float>(a * (mean + noise(rng)) + b));
    if (tissue) tissue->push_back(t);
  }
  return from_values(vals);
}

double mean_of(const Volume<float>& v, const std::vector<int>& tissue, int t) {
  double sum = 0, n = 0;
  for (size_t i = 0; i < tissue.size(); ++i)
    if (tissue[i] == t) sum += v.data[i], ++n;
  return sum / n;
}

TEST(WhiteStripe, WhiteMatterLandsAtZeroWhateverTheScannerScaleAndOffset) {
  std::vector<int> tissue;
  three_tissues(100, 80, 30, {0.45, 0.35, 0.2}, 1, 0, &tissue);
  Volume<float> first;
  for (const auto& [a, b] : std::vector<std::pair<double, double>>{{1, 0}, {0.37, 12}, {6.5, -40}, {2, 300}}) {
    const Volume<float> v = three_tissues(100, 80, 30, {0.45, 0.35, 0.2}, a, b);
    const WhiteStripe w = whitestripe_fit(v, nullptr);
    ASSERT_TRUE(w.found) << w.note;
    EXPECT_NEAR(w.mode, a * 100 + b, a * 2.0);  // the white-matter peak, within 2 units of its 100
    const Volume<float> n = whitestripe_apply(v, w);
    // white matter at 0 in units of the stripe's spread; grey matter well below
    EXPECT_NEAR(mean_of(n, tissue, 0), 0.0, 0.25) << a << " " << b;
    EXPECT_LT(mean_of(n, tissue, 1), -5.0);
    if (first.data.empty()) {
      first = n;
    } else {  // the same normalized image: the method is invariant to the scanner's scale and offset
      for (size_t i = 0; i < n.data.size(); i += 97) ASSERT_NEAR(n.data[i], first.data[i], 1e-3) << i;
    }
  }
}

TEST(WhiteStripe, TheLastModeFindsWhiteMatterWhereGreyMatterIsLarger) {
  // T1-like: white matter brightest but fewer voxels than grey matter
  std::vector<int> tissue;
  const Volume<float> v = three_tissues(100, 70, 20, {0.3, 0.5, 0.2}, 1.5, 10, &tissue);
  const WhiteStripe largest = whitestripe_fit(v, nullptr, 0.05, false), last = whitestripe_fit(v, nullptr, 0.05, true);
  ASSERT_TRUE(largest.found && last.found);
  EXPECT_NEAR(largest.mode, 1.5 * 70 + 10, 3.0);  // grey matter's peak
  EXPECT_NEAR(last.mode, 1.5 * 100 + 10, 3.0);    // white matter's
  EXPECT_NEAR(mean_of(whitestripe_apply(v, last), tissue, 0), 0.0, 0.25);
}

TEST(WhiteStripe, AHistogramWithoutAPeakIsRefusedAndTheImageFallsBackToZScore) {
  // exponentially falling intensities: the histogram's maximum is at its lower end
  std::mt19937 rng(3);
  std::exponential_distribution<float> e(0.01f);
  std::vector<float> vals(50000);
  for (float& x : vals) x = e(rng);
  const Volume<float> v = from_values(vals);
  const WhiteStripe w = whitestripe_fit(v, nullptr);
  EXPECT_FALSE(w.found);
  EXPECT_NE(w.note.find("no white-matter peak"), std::string::npos) << w.note;
  EXPECT_FALSE(whitestripe_fit(from_values(std::vector<float>(500, 4.f)), nullptr).found);  // no spread
  EXPECT_FALSE(whitestripe_fit(from_values({1, 2, 3}), nullptr).found);                     // too few voxels

  // The pipeline: a warning, the step records the fallback, the image is z-scored.
  Geometry g;
  g.size = {50, 50, 20};
  Volume<float> img(g);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = 1 + vals[i];
  HarmonizeParams p;
  p.crop = false;
  p.orientation = "LPS";  // the grid as it is: voxel for voxel
  p.mr_normalization = "whitestripe";
  const Harmonized h = harmonize(img, "MR", p);
  ASSERT_EQ(h.warnings.size(), 1u);
  EXPECT_NE(h.warnings[0].find("z-score instead"), std::string::npos) << h.warnings[0];
  const auto& norm = h.steps.back();
  EXPECT_EQ(norm.at("scheme"), "whitestripe");
  EXPECT_EQ(norm.at("fallback"), "zscore");
  const Volume<float> z = zscore(img, &h.mask);
  for (size_t i = 0; i < z.data.size(); i += 101) ASSERT_NEAR(h.image.data[i], z.data[i], 1e-4);
}

// Prediction harmonizes without the foreground statistics (the fingerprint's): the same image, CT
// and MR, bit for bit, and no statistics.
TEST(Harmonize, WithoutForegroundStatisticsTheSameImage) {
  Geometry g;
  g.size = {40, 36, 24};
  g.spacing = {0.7, 0.7, 1.1};
  Volume<float> img(g);
  std::mt19937 rng(4);
  std::normal_distribution<float> n(300.f, 80.f);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i)
        img.at(i, j, k) = (i - 20) * (i - 20) + (j - 18) * (j - 18) + 2 * (k - 12) * (k - 12) < 200 ? n(rng) : -1000.f;
  HarmonizeParams p;
  p.spacing = {0.5, 0.5, 0.5};
  for (const std::string modality : {"CT", "MR"}) {
    const Harmonized with = harmonize(img, modality, p), without = harmonize(img, modality, p, nullptr, false);
    EXPECT_TRUE(with.foreground.contains("p50")) << modality;
    EXPECT_TRUE(without.foreground.is_null()) << modality;
    ASSERT_EQ(with.image.geom.size, without.image.geom.size) << modality;
    EXPECT_EQ(with.image.data, without.image.data) << modality;
    EXPECT_EQ(with.mask.data, without.mask.data) << modality;
  }
}

TEST(WhiteStripe, ParametersRoundTripAndOlderFilesReadWithDefaults) {
  HarmonizeParams p;
  p.mr_normalization = "whitestripe";
  p.whitestripe_width = 0.1;
  p.whitestripe_last = true;
  p.brain_mask = true;
  const HarmonizeParams q = harmonize_params_from_json(harmonize_params_to_json(p));
  EXPECT_EQ(q.mr_normalization, "whitestripe");
  EXPECT_DOUBLE_EQ(q.whitestripe_width, 0.1);
  EXPECT_TRUE(q.whitestripe_last);
  EXPECT_TRUE(q.brain_mask);
  nlohmann::json old = harmonize_params_to_json(HarmonizeParams{});
  old.erase("whitestripe");
  old.erase("brain_mask");
  const HarmonizeParams r = harmonize_params_from_json(old);
  EXPECT_FALSE(r.brain_mask);
  EXPECT_FALSE(r.whitestripe_last);
  nlohmann::json bad = harmonize_params_to_json(p);
  bad["whitestripe"]["mode"] = "first";
  EXPECT_THROW(harmonize_params_from_json(bad), Error);
}

}  // namespace
}  // namespace aneura
