// The dataset fingerprint (nnU-Net's idea, small and factual): per case and summarised per
// modality, taken from the case cache's case.json files (WORK/cases/*/case.json).
#pragma once
#include <array>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/labels.hpp"

namespace aneura {

struct CaseFingerprint {
  std::string id, modality, dicom_modality;
  std::array<double, 3> spacing_ras{};                                // source spacing along the R, A, S axes, mm
  std::array<int64_t, 3> shape_source{};                              // source voxels (its own axis order)
  std::array<int64_t, 3> shape_cropped{};                             // source voxels inside the head box
  double p00_5 = 0, p99_5 = 0, mean = 0, std = 0, foreground_ml = 0;  // before normalization
  std::array<int, kNumLabels> labels{};
  bool labelled = false;
  int points = 0;
};

struct ModalitySummary {
  int cases = 0, positives = 0;
  std::array<double, 3> spacing_median{}, spacing_p10{};  // per RAS axis
  std::array<double, 3> shape_cropped_median{};
  double p00_5 = 0, p99_5 = 0, mean = 0, std = 0;  // pooled foreground intensity statistics
  std::string dicom_modality;
};

struct Fingerprint {
  std::vector<CaseFingerprint> cases;
  std::map<std::string, ModalitySummary> by_modality;        // CTA, MRA, MRI T2, MRI T1post, CT, MR...
  std::map<std::string, ModalitySummary> by_dicom_modality;  // CT, MR
  ModalitySummary all;
  std::array<int, kNumLabels> label_counts{};
  int localizer_points = 0;
};

// Reads every case.json under WORK/cases. Throws Error(NoDicom) when there is no case.
Fingerprint compute_fingerprint(const std::filesystem::path& work);

nlohmann::json to_json(const Fingerprint& f);
// Parses WORK/fingerprint.json; missing or corrupt files are Error(InputNotFound / CorruptInput).
Fingerprint read_fingerprint(const std::filesystem::path& file);

}  // namespace aneura
