// Cross-validation folds: k folds stratified by modality and "Aneurysm Present", saved in
// WORK/folds.json and reused while the set of labelled cases is the same (as nnU-Net's
// splits_final.json), so every run and every fold sees the same split.
#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace aneura {

struct CaseInfo {
  std::string id, modality;
  bool present = false, labelled = false;
  bool segmented = false;        // its labels hold a vessel segmentation (case.json labels_file.vessel_source)
  std::array<int, 14> labels{};  // train.csv columns (zeros when unlabelled)
};

// Whether case.json's labels_file.vessel_source names a segmentation (a .nii file), not "none" or
// why it was skipped.
bool is_segmentation_source(const std::string& vessel_source);

// The finished cases (case.json present) of WORK/cases, sorted by id. Errors name the file.
std::vector<CaseInfo> list_cases(const std::filesystem::path& work);

struct Folds {
  int k = 0;
  uint64_t seed = 0;
  std::vector<std::vector<std::string>> val;       // case ids held out in each fold
  std::vector<std::string> train(int fold) const;  // all ids of the other folds
};

// Deterministic for the same cases, k and seed: in each (modality, present) stratum the ids are
// shuffled and dealt round-robin, the dealing continuing across strata so fold sizes differ by
// at most one. Only labelled cases take part. k = 1: a single fold trains on all, validates on
// none.
Folds make_folds(const std::vector<CaseInfo>& cases, int k, uint64_t seed);

// WORK/folds.json: reused when it holds the same k and the same labelled cases, else (re)made and
// written atomically (a warning says when an existing split is replaced).
Folds load_or_make_folds(const std::filesystem::path& work, const std::vector<CaseInfo>& cases, int k, uint64_t seed);

}  // namespace aneura
