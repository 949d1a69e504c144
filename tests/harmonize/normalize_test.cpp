#include "harmonize/normalize.hpp"

#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
}  // namespace aneura
