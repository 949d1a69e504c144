#include "evaluate/metrics.hpp"

#include <gtest/gtest.h>

namespace aneura {
namespace {

// Reference values: scikit-learn's roc_auc_score on the same vectors (worked by hand here as the
// Mann-Whitney statistic, ties counting 1/2).
TEST(Auc, MatchesRocAucScore) {
  // sklearn docs example: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
  EXPECT_DOUBLE_EQ(*roc_auc({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}), 0.75);
  // ties: positives {0.5, 0.9}, negatives {0.5, 0.2}: (0.5 + 1 + 1 + 1) / 4
  EXPECT_DOUBLE_EQ(*roc_auc({0, 1, 0, 1}, {0.5, 0.5, 0.2, 0.9}), 0.875);
  // all tied: 0.5
  EXPECT_DOUBLE_EQ(*roc_auc({0, 1, 0, 1}, {0.3, 0.3, 0.3, 0.3}), 0.5);
  // perfect and reversed
  EXPECT_DOUBLE_EQ(*roc_auc({0, 0, 1}, {0.1, 0.2, 0.9}), 1.0);
  EXPECT_DOUBLE_EQ(*roc_auc({1, 1, 0}, {0.1, 0.2, 0.9}), 0.0);
  // positives .9 .7 .55 beat 4 + 3 + 2 of the 4 negatives: 9/12
  EXPECT_NEAR(*roc_auc({1, 0, 1, 0, 1, 0, 0}, {.9, .8, .7, .6, .55, .54, .53}), 9.0 / 12.0, 1e-12);
}

TEST(Auc, OneClassHasNoAuc) {
  EXPECT_FALSE(roc_auc({1, 1, 1}, {0.1, 0.2, 0.3}).has_value());
  EXPECT_FALSE(roc_auc({}, {}).has_value());
}

TEST(Competition, WeightsPresentAsHalf) {
  // 4 series; every location column perfect except column 0 (AUC 0.5 by ties); present AUC 0.75.
  std::vector<std::array<int, kNumLabels>> t(4);
  std::vector<std::array<double, kNumLabels>> p(4);
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < kNumLabels; ++c) {
      t[i][c] = (i + c) % 2;
      p[i][c] = c == 0 ? 0.5 : t[i][c];
    }
  // present column: truth 0,1,0,1 ; scores make AUC 0.75
  const double present_scores[4] = {0.1, 0.35, 0.4, 0.8};
  for (int i = 0; i < 4; ++i) t[i][kPresentColumn] = i % 2, p[i][kPresentColumn] = present_scores[i];
  const CompetitionScore s = competition_score(t, p);
  ASSERT_TRUE(s.score.has_value());
  EXPECT_DOUBLE_EQ(*s.auc[0], 0.5);
  EXPECT_DOUBLE_EQ(*s.auc[kPresentColumn], 0.75);
  EXPECT_NEAR(*s.score, (13 * 0.75 + 0.5 + 12 * 1.0) / 26, 1e-12);
  EXPECT_NEAR(*defined_columns_score(s), *s.score, 1e-12);  // all defined: the same number
  // column 1 with one class only: score undefined, the defined-columns score reweights the rest
  auto t1 = t;
  for (int i = 0; i < 4; ++i) t1[i][1] = 0;
  const CompetitionScore u1 = competition_score(t1, p);
  EXPECT_FALSE(u1.score.has_value());
  EXPECT_NEAR(*defined_columns_score(u1), (13 * 0.75 + 0.5 + 11 * 1.0) / 25, 1e-12);
  // one column with one class: no score, and it is named
  for (auto& row : t) row[3] = 0;
  const CompetitionScore u = competition_score(t, p);
  EXPECT_FALSE(u.score.has_value());
  ASSERT_EQ(u.undefined.size(), 1u);
  EXPECT_EQ(u.undefined[0], label_names()[3]);
}

}  // namespace
}  // namespace aneura
