// The competition metric (the RSNA 2025 Intracranial Aneurysm Detection competition's evaluation): per-column ROC AUC
// over all series, and
//   score = (13 * AUC(Aneurysm Present) + sum of the 13 location AUCs) / 26.
// AUC is the Mann-Whitney statistic: the probability that a random positive scores above a
// random negative, ties counting one half (as scikit-learn's roc_auc_score). A column with one
// class only has no AUC: it is reported, never scored 0.5.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/labels.hpp"

namespace aneura {

// nullopt when `truth` holds only one class (or is empty).
std::optional<double> roc_auc(const std::vector<int>& truth, const std::vector<double>& score);

struct CompetitionScore {
  std::array<std::optional<double>, kNumLabels> auc;
  std::optional<double> score;         // nullopt when a column has no AUC
  std::vector<std::string> undefined;  // columns with one class only
};

// truth[i][c], prob[i][c] for series i and column c (train.csv order).
CompetitionScore competition_score(const std::vector<std::array<int, kNumLabels>>& truth,
                                   const std::vector<std::array<double, kNumLabels>>& prob);

// The same weighting (13 for Aneurysm Present, 1 per location) over the defined columns only: what
// small validation and test sets can score when some location has no positive. Equals the
// competition score when every column is defined; nullopt when no column is.
std::optional<double> defined_columns_score(const CompetitionScore& s);

}  // namespace aneura
