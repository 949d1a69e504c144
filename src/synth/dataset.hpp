// `aneura synth`: a whole dataset in the RSNA 2025 layout with known truth:
//   OUT/train.csv, OUT/train_localizers.csv, OUT/series/<uid>/<sop>.dcm,
//   OUT/segmentations/<uid>.nii + <uid>_cowseg.nii (about 10 % of series), OUT/truth.json.
// Deterministic for a seed, whatever the thread count. The dataset appears atomically: it is
// written into a sibling folder and renamed onto OUT at the end.
// With `unlabelled`: an unlabelled corpus in the BIDS layout of OpenMind instead (for `aneura
// pretrain`): OUT/sub-<k>/anat/sub-<k>_<suffix>.nii.gz, the same heads converted from their DICOM
// series (suffix ct for CTA, angio for TOF, T2w, ce-gd_T1w), no train.csv, localizers or
// segmentations; truth.json still records what was drawn.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>

#include "synth/series.hpp"

namespace aneura::synth {

struct SynthOptions {
  std::filesystem::path out;
  int n = 60;
  Size size = Size::Small;
  uint64_t seed = 1;
  bool force = false;    // replace an existing non-empty OUT
  bool hazards = false;  // inject scouts, missing slices, wrong SliceThickness
  unsigned threads = 0;
  double positive_fraction = 0.43;
  double segmentation_fraction = 0.1;
  // Series 0..12 are positive with their first aneurysm at location column 0..12, so that a test set
  // has a positive for every location and the competition score is defined.
  bool cover_locations = false;
  bool unlabelled = false;
};

// The BIDS suffix of a modality in an unlabelled corpus.
std::string bids_suffix(const std::string& modality);

Size parse_size(const std::string& s);  // "tiny" | "small" | "medium" | "full"; throws Error(Usage)
std::string size_name(Size s);

// Writes the dataset; progress(done, total) is called after each series.
void write_dataset(const SynthOptions& o, const std::function<void(int, int)>& progress = {});

// The SeriesInstanceUID of series `index` for `seed` (what write_dataset uses).
std::string series_uid(uint64_t seed, int index);

}  // namespace aneura::synth
