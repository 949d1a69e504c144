#include "evaluate/metrics.hpp"

#include <algorithm>
#include <numeric>

#include "core/error.hpp"

namespace aneura {

std::optional<double> roc_auc(const std::vector<int>& truth, const std::vector<double>& score) {
  if (truth.size() != score.size()) throw Error(ErrorCode::Internal, "AUC: truth and score differ in length");
  const size_t n = truth.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  // Mann-Whitney U from average ranks (ties share their mean rank).
  double rank_sum_pos = 0;
  size_t pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && score[order[j + 1]] == score[order[i]]) ++j;
    const double avg_rank = (i + j) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k)
      if (truth[order[k]]) rank_sum_pos += avg_rank, ++pos;
    i = j + 1;
  }
  const size_t neg = n - pos;
  if (pos == 0 || neg == 0) return std::nullopt;
  return (rank_sum_pos - pos * (pos + 1) / 2.0) / (double(pos) * neg);
}

CompetitionScore competition_score(const std::vector<std::array<int, kNumLabels>>& truth,
                                   const std::vector<std::array<double, kNumLabels>>& prob) {
  if (truth.size() != prob.size()) throw Error(ErrorCode::Internal, "score: truth and predictions differ in length");
  CompetitionScore s;
  double locations = 0;
  for (int c = 0; c < kNumLabels; ++c) {
    std::vector<int> t;
    std::vector<double> p;
    for (size_t i = 0; i < truth.size(); ++i) t.push_back(truth[i][c]), p.push_back(prob[i][c]);
    s.auc[c] = roc_auc(t, p);
    if (!s.auc[c])
      s.undefined.push_back(label_names()[c]);
    else if (c != kPresentColumn)
      locations += *s.auc[c];
  }
  if (s.undefined.empty()) s.score = (13.0 * *s.auc[kPresentColumn] + locations) / 26.0;
  return s;
}

std::optional<double> defined_columns_score(const CompetitionScore& s) {
  double num = 0, den = 0;
  for (int c = 0; c < kNumLabels; ++c)
    if (s.auc[c]) {
      const double w = c == kNumLabels - 1 ? 13.0 : 1.0;
      num += w * *s.auc[c];
      den += w;
    }
  if (den == 0) return std::nullopt;
  return num / den;
}

}  // namespace aneura
