#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/progress.hpp"
#include "synth/dataset.hpp"

namespace aneura::app {

namespace {

struct SynthArgs {
  std::string out, size = "small";
  synth::SynthOptions o;
  bool quiet = false;
};

int run_synth(SynthArgs& a) {
  a.o.out = a.out;
  a.o.size = synth::parse_size(a.size);
  Progress bar("synth", a.o.n, !a.quiet);
  auto progress = [&](int done, int) { bar.update(done); };
  synth::write_dataset(a.o, progress);
  if (!a.quiet) std::cerr << "synth: wrote " << a.o.n << " series to " << a.out << "\n";
  return 0;
}

}  // namespace

void add_synth(CLI::App& app, Action& action) {
  auto args = std::make_shared<SynthArgs>();
  auto* cmd = app.add_subcommand("synth", describe("synth"));
  cmd->add_option("OUT", args->out, "Output folder (created; must be empty unless --force)")->required();
  cmd->add_option("--n", args->o.n, "Number of series");
  cmd->add_option("--size", args->size,
                  "tiny (unit tests), small (demo, ~1.7 mm pixels), medium (clinical ~0.55 mm pixels, CTA/TOF fields "
                  "centred on the vessels) or full (real sizes, e.g. 512x512x400 CTA)")
      ->check(CLI::IsMember({"tiny", "small", "medium", "full"}));
  cmd->add_option("--seed", args->o.seed, "Random seed (same seed, same dataset)");
  cmd->add_option("--threads", args->o.threads, "Worker threads (0: all usable cores)");
  cmd->add_option("--positive-fraction", args->o.positive_fraction, "Share of series with aneurysms")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--segmentation-fraction", args->o.segmentation_fraction,
                  "Share of series with segmentations/<uid>.nii and _cowseg.nii")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--cover-locations", args->o.cover_locations,
                "Series 1-13 are positive, one at each location, so every column of the score is defined (test sets)");
  cmd->add_flag("--hazards", args->o.hazards,
                "Inject known DICOM hazards (scout images, missing slices, wrong SliceThickness)");
  cmd->add_flag("--unlabelled", args->o.unlabelled,
                "An unlabelled corpus for pretrain: BIDS NIfTI heads (sub-<k>/anat/sub-<k>_<ct|angio|T2w|ce-gd_T1w>"
                ".nii.gz), no labels, localizers or segmentations");
  cmd->add_flag("--force", args->o.force, "Replace an existing non-empty output folder");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress");
  cmd->callback([&action, args] { action = [args] { return run_synth(*args); }; });
}

}  // namespace aneura::app
