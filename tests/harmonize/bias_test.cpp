#include "harmonize/bias.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace aneura {
namespace {

// A head of two tissues under a smooth multiplicative bias (0.6 .. 1.4 across the head).
TEST(Bias, N4RemovesMostOfASmoothField) {
  Geometry g;
  g.size = {48, 48, 32};
  g.spacing = {2, 2, 2};
  Volume<float> v(g), truth(g);
  Volume<uint8_t> mask(g);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) {
        const double r = std::sqrt(std::pow(i - 24.0, 2) + std::pow(j - 24.0, 2) + std::pow((k - 16.0) * 1.4, 2));
        const bool head = r < 21;
        const float tissue = head ? (r < 8 ? 600.f : 400.f) : 0.f;
        const double bias = 1.0 + 0.4 * (i - 24.0) / 24.0;
        truth.at(i, j, k) = tissue;
        v.at(i, j, k) = static_cast<float>(tissue * bias);
        mask.at(i, j, k) = head;
      }
  // Spread (coefficient of variation) inside the outer tissue, before and after.
  auto cv = [&](const Volume<float>& x) {
    double s = 0, q = 0, n = 0;
    for (size_t i = 0; i < x.data.size(); ++i)
      if (mask.data[i] && truth.data[i] == 400.f) s += x.data[i], q += double(x.data[i]) * x.data[i], ++n;
    const double m = s / n;
    return std::sqrt(q / n - m * m) / m;
  };
  const Volume<float> corrected = n4_correct(v, mask);
  EXPECT_GT(cv(v), 0.15);
  EXPECT_LT(cv(corrected), 0.5 * cv(v));
}

}  // namespace
}  // namespace aneura
