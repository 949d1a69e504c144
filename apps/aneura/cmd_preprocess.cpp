#include <cstdio>
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "core/shard.hpp"
#include "dataset/sources.hpp"

namespace aneura::app {

namespace {

struct PreprocessArgs {
  std::string data, work, interp = "linear", shard, whitestripe_mode = "largest";
  double spacing = 1.0;
  unsigned workers = 0;
  bool no_crop = false, quiet = false;
  CaseOptions o;
};

int run_preprocess(PreprocessArgs& a) {
  a.o.harmonize.spacing = {a.spacing, a.spacing, a.spacing};
  a.o.harmonize.interp = a.interp == "bspline" ? Interp::BSpline : Interp::Linear;
  a.o.harmonize.crop = !a.no_crop;
  a.o.harmonize.whitestripe_last = a.whitestripe_mode == "last";
  const Shard shard = command_shard(a.shard);
  std::vector<CaseJob> jobs;
  const SourceKind kind = detect_source(a.data);
  RsnaDataset d;  // outlives the jobs that refer to it
  if (kind == SourceKind::Rsna) {
    d = read_rsna(a.data);
    if (a.o.harmonize.mr_normalization == "nyul") a.o.harmonize.nyul = nyul_for_dataset(d, a.work, a.o);
    for (const auto& e : d.series)
      jobs.push_back({e.uid, [&d, &e, &a](CaseOutcome& out, bool qa) { build_rsna_case(d, e, a.work, a.o, qa, out); }});
  } else {
    size_t left_out = 0;
    jobs =
        kind == SourceKind::Nifti ? nifti_jobs(a.data, a.work, a.o, &left_out) : deeplesion_jobs(a.data, a.work, a.o);
    if (left_out > 0)
      std::cerr << "preprocess: " << left_out << " images left out: image_quality_score above "
                << a.o.max_image_quality_score << "\n";
  }
  size_t mine = jobs.size();
  if (!shard.all()) {
    std::vector<std::string> ids;
    for (const auto& j : jobs) ids.push_back(j.id);
    mine = shard.select(ids).size();
    std::cerr << "preprocess: shard " << shard.index << " of " << shard.count << ": " << mine << " of " << jobs.size()
              << " series\n";
  }
  Progress bar("preprocess", static_cast<int>(mine), !a.quiet);
  auto progress = [&](int done, int, const CaseOutcome& r) {
    if (r.status == "failed") std::fprintf(stderr, "\nfailed: %s: %s\n", r.id.c_str(), r.reason.c_str());
    bar.update(done);
  };
  const unsigned workers = a.workers ? a.workers : default_threads();
  const PreprocessSummary s = run_case_jobs(jobs, a.work, workers, a.o.qa_cases, progress, shard);
  // what prediction needs to harmonize a new series the same way
  write_preprocess_params(a.work, a.o.harmonize);
  std::cerr << "preprocess: " << s.ok << " built, " << s.skipped << " already there, " << s.failed
            << " failed; cases in " << a.work << "/cases, log in " << manifest_file(a.work, shard).string() << "\n";
  return s.failed ? static_cast<int>(ErrorCode::Partial) : 0;
}

}  // namespace

void add_preprocess(CLI::App& app, Action& action) {
  auto args = std::make_shared<PreprocessArgs>();
  auto* cmd = app.add_subcommand("preprocess", describe("preprocess"));
  cmd->add_option(
         "DATA", args->data,
         "RSNA layout (train.csv, series/), a BIDS/OpenMind NIfTI folder, or DeepLesion (DL_info.csv, Images_png/)")
      ->required();
  cmd->add_option("WORK", args->work, "Work folder (cases/, manifest.jsonl)")->required();
  cmd->add_option("--workers", args->workers, "Series processed in parallel (0: all usable cores)");
  cmd->add_option("--spacing", args->spacing, "Target isotropic spacing, mm")->check(CLI::PositiveNumber);
  cmd->add_option("--interp", args->interp, "Image interpolation: linear or bspline (labels: nearest)")
      ->check(CLI::IsMember({"linear", "bspline"}));
  cmd->add_option("--orientation", args->o.harmonize.orientation, "Axis orientation of the cases (RAS or LPS, ...)");
  cmd->add_option("--ct-norm", args->o.harmonize.ct_normalization, "CT normalization: clip_zscore, windows or none")
      ->check(CLI::IsMember({"clip_zscore", "windows", "none"}));
  cmd->add_option("--mr-norm", args->o.harmonize.mr_normalization,
                  "MR normalization: zscore, percentile, nyul (landmarks fitted on training MR, saved in "
                  "WORK/nyul.json), whitestripe (the white-matter stripe's mean and sd) or none")
      ->check(CLI::IsMember({"zscore", "percentile", "nyul", "whitestripe", "none"}));
  cmd->add_option("--whitestripe-mode", args->whitestripe_mode,
                  "WhiteStripe's white-matter peak: largest (any MR, T2) or last (T1-weighted)")
      ->check(CLI::IsMember({"largest", "last"}));
  cmd->add_option("--whitestripe-width", args->o.harmonize.whitestripe_width,
                  "WhiteStripe's stripe: the peak's quantile +- this")
      ->check(CLI::Range(0.001, 0.5));
  cmd->add_flag("--brain-mask", args->o.harmonize.brain_mask,
                "Brain extraction: the mask (cases/<id>/brain.nii.gz, its contour in the QA pictures) replaces the "
                "head mask for N4 and the MR normalization");
  cmd->add_option("--sphere-radius", args->o.sphere_radius_mm, "Aneurysm mask radius around each localizer, mm")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--qa", args->o.qa_cases,
                  "Write WORK/qa/<id>.png (tri-planar slices + head-mask contour) for this many cases");
  cmd->add_flag("--n4", args->o.harmonize.n4, "N4 bias field correction of MR series (ITK; slow)");
  cmd->add_flag("--export-32ch", args->o.exports.volume_32,
                "Also write volume_32x384x384.nii per case (a common 2D/3D baseline input)");
  cmd->add_flag("--export-2p5d", args->o.exports.slices_224,
                "Also write slices_224.nii + windows_2p5d.json (5-slice windows at 224x224, a 2.5D baseline input)");
  cmd->add_flag("--export-png", args->o.exports.png, "Also write png/<k>.png axial slices per case");
  cmd->add_flag("--no-crop", args->no_crop, "Keep the whole field of view (no crop to the head)");
  cmd->add_option("--max-image-quality-score", args->o.max_image_quality_score,
                  "OpenMind sources: leave out images whose openneuro_metadata.csv image_quality_score (1 best, 5 "
                  "worst) is above this (0: every image)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--shard", args->shard,
                  "I/N: only share I of N of the series (0 <= I < N; default in a SLURM job array: its task's)");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress line");
  cmd->callback([&action, args] { action = [args] { return run_preprocess(*args); }; });
}

}  // namespace aneura::app
