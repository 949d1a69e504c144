// The case cache: one harmonized case per series under WORK/cases/<id>/ (id = the validated
// SeriesInstanceUID):
//   image.nii   float32, channels stacked as a 4th dimension, uncompressed (memory-mappable)
//   labels.nii  int16, 2 volumes: [0] vessel territories (cowseg values 0..13, 0 where unknown),
//               [1] aneurysm spheres around each localizer (train.csv location column + 1)
//   case.json   source geometry, every harmonization step with its parameters, the localizer
//               points in world (LPS mm) and case-voxel coordinates, modality, the 14 labels
// case.json is written last: a case folder without it is incomplete and is rebuilt.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "dataset/rsna.hpp"
#include "harmonize/pipeline.hpp"

namespace aneura {

struct CaseOptions {
  HarmonizeParams harmonize;
  double sphere_radius_mm = 4;  // aneurysm mask radius around each localizer point
  int qa_cases = 5;             // WORK/qa/<id>.png (tri-planar + head-mask contour) for this many cases
};

struct CaseOutcome {
  std::string id;
  std::string status;  // "ok", "skipped" (already built) or "failed"
  std::string reason;  // failures: the error, with where it happened
  double seconds = 0;
  std::vector<std::string> warnings;
};

std::filesystem::path case_dir(const std::filesystem::path& work, const std::string& id);
bool case_done(const std::filesystem::path& work, const std::string& id);

// Builds one case (never throws for bad input: the outcome says why it failed).
// With `qa`, also writes WORK/qa/<id>.png.
CaseOutcome build_case(const RsnaDataset& d, const SeriesEntry& e, const std::filesystem::path& work,
                       const CaseOptions& o, bool qa = false);

struct PreprocessSummary {
  int ok = 0, skipped = 0, failed = 0;
};

// All series, `workers` at a time; finished cases are skipped; WORK/manifest.jsonl gets one line
// per series (id, status, reason, seconds). QA pictures for o.qa_cases series drawn at random (the
// same ones for the same ids). progress(done, total) after each series.
PreprocessSummary preprocess_dataset(const RsnaDataset& d, const std::filesystem::path& work, const CaseOptions& o,
                                     unsigned workers, const std::function<void(int, int, const CaseOutcome&)>& progress = {});

}  // namespace aneura
