// The RSNA 2025 dataset layout (the competition's data description on Kaggle): train.csv, train_localizers.csv,
// series/<uid>/, segmentations/<uid>.nii and <uid>_cowseg.nii. Every SeriesInstanceUID is validated before it becomes
// part of a path.
#pragma once
#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/labels.hpp"

namespace aneura {

struct SeriesEntry {
  std::string uid;
  std::string modality;  // CTA, MRA, MRI T2, MRI T1post (train.csv spelling)
  std::string age, sex;
  std::array<int, kNumLabels> labels{};
  bool labelled = false;  // false for series found only on disk (no train.csv row)
};

struct Localizer {
  std::string series_uid, sop_uid;
  double x = 0, y = 0;  // pixel column, row
  int frame = 0;        // 'f' for multi-frame files, else 0
  int column = 0;       // train.csv location column
};

// Parses the coordinates dict string "{'x': 258.36, 'y': 261.36[, 'f': 3]}".
// Throws Error(CorruptInput) when x or y is missing or not a number.
void parse_coordinates(const std::string& s, Localizer& out);

struct RsnaDataset {
  std::filesystem::path root;
  std::vector<SeriesEntry> series;                           // train.csv order, then unlisted folders
  std::map<std::string, std::vector<Localizer>> localizers;  // by SeriesInstanceUID

  std::filesystem::path series_dir(const std::string& uid) const;
  // segmentations/<uid>_cowseg.nii when present
  std::optional<std::filesystem::path> cowseg(const std::string& uid) const;
};

// Reads the layout. A folder without train.csv is accepted (test-time data: every valid series
// folder becomes an unlabelled entry). Rows with invalid UIDs or unknown locations are errors
// naming the file and line.
RsnaDataset read_rsna(const std::filesystem::path& root);

}  // namespace aneura
