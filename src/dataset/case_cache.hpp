// The case cache: one harmonized case per series under WORK/cases/<id>/ (id = the validated
// SeriesInstanceUID):
//   image.nii   float32, channels stacked as a 4th dimension, uncompressed (memory-mappable)
//   labels.nii  int16, 2 volumes: [0] vessel territories (cowseg values 0..13, 0 where unknown),
//               [1] aneurysm spheres around each localizer (train.csv location column + 1);
//               not written when no voxel is labelled (case.json's labels_file.file is null):
//               readers take the case as all background
//   case.json   source geometry, every harmonization step with its parameters, the localizer
//               points in world (LPS mm) and case-voxel coordinates, modality, the 14 labels
// case.json is written last: a case folder without it is incomplete and is rebuilt.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/shard.hpp"
#include "dataset/exports.hpp"
#include "dataset/rsna.hpp"
#include "harmonize/pipeline.hpp"

namespace aneura {

struct CaseOptions {
  HarmonizeParams harmonize;
  double sphere_radius_mm = 4;  // aneurysm mask radius around each localizer point
  int qa_cases = 5;             // WORK/qa/<id>.png (tri-planar + head-mask contour) for this many cases
  CaseExports exports;          // baseline shapes (dataset/exports.hpp) beside each case (off by default)
  // NIfTI sources with OpenMind's openneuro_metadata.csv: images whose image_quality_score (1 best,
  // 5 worst) is above this are left out; 0: every image (unlisted or unscored images always count).
  double max_image_quality_score = 0;
};

struct CaseOutcome {
  std::string id;
  std::string status;  // "ok", "skipped" (already built) or "failed"
  std::string reason;  // failures: the error, with where it happened
  double seconds = 0;
  std::vector<std::string> warnings;
  nlohmann::json timing;  // seconds per stage (scan, decode, harmonize, labels, write, roi_anchor), when built
};

// id: a DICOM UID (RSNA series) or a safe name (other sources); anything else is an error.
std::filesystem::path case_dir(const std::filesystem::path& work, const std::string& id);
bool case_done(const std::filesystem::path& work, const std::string& id);

// WORK/preprocess.json: how the case cache was harmonized, which the plans record and prediction
// repeats on new series. read: nullopt when the file is missing (a cache from an older aneura);
// throws Error(CorruptInput) when it is not valid.
void write_preprocess_params(const std::filesystem::path& work, const HarmonizeParams& p);
std::optional<HarmonizeParams> read_preprocess_params(const std::filesystem::path& work);

// Builds the case of one RSNA series (throws aneura::Error on bad input; warnings go to `out`).
// With `qa`, also writes WORK/qa/<id>.png.
void build_rsna_case(const RsnaDataset& d, const SeriesEntry& e, const std::filesystem::path& work,
                     const CaseOptions& o, bool qa, CaseOutcome& out);

struct PreprocessSummary {
  int ok = 0, skipped = 0, failed = 0;
};

// Nyul-Udupa landmarks for MR, fitted on up to `max_series` labelled MR series of `d` (harmonized
// up to, not including, normalization) and saved to WORK/nyul.json; an existing WORK/nyul.json
// is loaded instead, so every case of a work folder uses the same standard scale.
NyulModel nyul_for_dataset(const RsnaDataset& d, const std::filesystem::path& work, const CaseOptions& o,
                           int max_series = 30);

// A grid as case.json records it (size, spacing_mm, origin_lps_mm, direction_lps_columns,
// orientation); the fingerprint reads a case's source grid from it.
nlohmann::json geometry_json(const Geometry& g);

// Writes a harmonized case: QA picture (when asked), image.nii, labels.nii, then case.json =
// `meta` plus the fields every case has (id, steps, grid, image, labels_file basics). Returns
// meta's `timing_s` with the seconds of writing and of the ROI anchor added.
nlohmann::json write_case(const std::filesystem::path& work, const std::string& id, const Harmonized& h,
                          const Volume<int16_t>& labels, nlohmann::json meta, bool qa, const CaseExports& exports = {});

// One unit of batch work: builds case `id` (throwing aneura::Error on bad input).
struct CaseJob {
  std::string id;
  std::function<void(CaseOutcome& out, bool qa)> build;
};

// Runs jobs `workers` at a time: finished cases are skipped, failures recorded and the batch
// goes on, WORK/manifest.jsonl gets one line per job, QA pictures for `qa_cases` jobs drawn at
// random (the same ones for the same ids). With a `shard` of several, only its share of the jobs
// (core/shard.hpp) runs and its lines go to WORK/manifest.shard-<i>-of-<n>.jsonl, so shards
// running at once never write the same file; the QA cases are those the whole batch would draw.
PreprocessSummary run_case_jobs(const std::vector<CaseJob>& jobs, const std::filesystem::path& work, unsigned workers,
                                int qa_cases, const std::function<void(int, int, const CaseOutcome&)>& progress = {},
                                const Shard& shard = {});

// The manifest a shard writes (WORK/manifest.jsonl for the whole batch).
std::filesystem::path manifest_file(const std::filesystem::path& work, const Shard& shard = {});

// All series, `workers` at a time; finished cases are skipped; WORK/manifest.jsonl gets one line
// per series (id, status, reason, seconds). QA pictures for o.qa_cases series drawn at random (the
// same ones for the same ids). progress(done, total) after each series.
PreprocessSummary preprocess_dataset(const RsnaDataset& d, const std::filesystem::path& work, const CaseOptions& o,
                                     unsigned workers,
                                     const std::function<void(int, int, const CaseOutcome&)>& progress = {});

}  // namespace aneura
