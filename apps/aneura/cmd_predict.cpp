// aneura predict (in the network library, libaneura_nn: commands that run a network).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include <spdlog/fmt/fmt.h>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/shard.hpp"
#include "dataset/rsna.hpp"
#include "infer/batch.hpp"
#include "model/network.hpp"

namespace fs = std::filesystem;

namespace aneura::app {

namespace {

struct PredictArgs {
  std::string model, data, out, points, device = "cpu", checkpoint = "last", probabilities = "heatmap";
  std::string thick_model, shard, vessel_model, candidate_model, precision;
  double candidate_weight = 0.5;
  int candidates = 0, flip_candidates = PredictOptions{}.flip_candidates;
  VesselStageOptions vessel;
  ComponentOptions components;
  std::string points_at = "peak";
  double thick_slice_mm = 2;
  std::vector<std::string> series;
  std::vector<int> folds;
  bool no_tta = false, quiet = false, heatmaps = false;
  int threads = 0;
  double location_sigma = 5;
  double field_edge = -1;
};

int run_predict(const PredictArgs& a) {
  set_cpu_threads(a.threads > 0 ? a.threads : static_cast<int>(default_threads()));
  std::vector<fs::path> dirs;
  for (const auto& s : a.series) dirs.emplace_back(s);
  if (!a.data.empty()) {
    const RsnaDataset d = read_rsna(a.data);
    for (const auto& e : d.series) dirs.push_back(d.series_dir(e.uid));
  }
  if (dirs.empty()) throw Error(ErrorCode::Usage, "no series: give SERIES_DIR arguments or --data DATA");
  const Shard shard = command_shard(a.shard);
  if (!shard.all()) {
    std::vector<std::string> names;
    for (const auto& d : dirs) names.push_back(d.string());
    const size_t all = dirs.size();
    const auto mine = shard.select(names);
    dirs.assign(mine.begin(), mine.end());
    std::cerr << "predict: shard " << shard.index << " of " << shard.count << ": " << dirs.size() << " of " << all
              << " series -> " << shard_file(a.out, shard).string() << " (then: aneura merge " << a.out << ")\n";
  }
  PredictOptions po;
  po.folds = a.folds;
  po.flip_tta = !a.no_tta;
  po.checkpoint = a.checkpoint + ".pt";
  po.probabilities = a.probabilities;
  po.location_sigma_mm = a.location_sigma;
  po.field_edge_mm = a.field_edge;
  po.device = a.device;
  po.keep_maps = a.heatmaps;
  po.components = a.components;
  po.components.centre_of_mass = a.points_at == "centre";
  po.candidate_weight = a.candidate_weight;
  po.flip_candidates = a.flip_candidates;
  po.precision = a.precision;
  Predictor predictor(a.model, po);
  std::unique_ptr<Predictor> coarse;  // a candidate stage's coarse model (given, or the one it was trained on)
  if (predictor.finds_own_candidates()) {
    if (!a.candidate_model.empty())
      throw Error(ErrorCode::Usage,
                  "--candidate-model: configuration '" + predictor.info().cfg.name +
                      "' finds its own candidates (candidate_source dots)",
                  a.model);
    predictor.use_candidate_stage(nullptr, a.candidates);
  } else if (predictor.info().cfg.candidates > 0) {
    const std::string from = a.candidate_model.empty() ? predictor.info().candidate_model : a.candidate_model;
    if (from.empty())
      throw Error(ErrorCode::Usage,
                  "configuration '" + predictor.info().cfg.name +
                      "' is a candidate stage: give its coarse model with --candidate-model",
                  a.model);
    PredictOptions co = po;
    co.folds.clear();
    coarse = std::make_unique<Predictor>(from, co);
    predictor.use_candidate_stage(coarse.get(), a.candidates);
  } else if (!a.candidate_model.empty()) {
    throw Error(ErrorCode::Usage,
                "--candidate-model: configuration '" + predictor.info().cfg.name +
                    "' is not a candidate stage (its plans have no candidates)",
                a.model);
  }
  std::unique_ptr<Predictor> thick;
  if (!a.thick_model.empty()) {
    thick = std::make_unique<Predictor>(a.thick_model, po);
    predictor.route_thick_slices(thick.get(), a.thick_slice_mm);
  }
  std::unique_ptr<Predictor> vessels;
  if (!a.vessel_model.empty()) {
    PredictOptions vo = po;
    vo.keep_maps = false;
    vo.folds.clear();
    vessels = std::make_unique<Predictor>(a.vessel_model, vo);
    (coarse ? *coarse : predictor).use_vessel_stage(vessels.get(), a.vessel);
    if (thick) thick->use_vessel_stage(vessels.get(), a.vessel);
  }
  BatchOptions bo;
  bo.csv = a.out;
  bo.points = a.points.empty() ? bo.csv.parent_path() / (bo.csv.stem().string() + "_points") : fs::path(a.points);
  bo.csv = shard_file(bo.csv, shard);  // (every shard's series JSON in the one points folder)
  bo.maps = a.heatmaps;
  bo.on_series = [&a](size_t, const fs::path& dir, const SeriesPrediction& p) {
    if (p.fallback)
      std::cerr << "warning: " << dir.string() << ": " << p.error
                << "; the row holds the training prevalence (fallback)\n";
    else if (p.vessel_stage && !p.vessels_found)
      std::cerr << "warning: " << dir.string() << ": " << p.vessel_note << "\n";
    for (const auto& w : p.warnings) std::cerr << "warning: " << dir.string() << ": " << w << "\n";
    if (!a.quiet)
      std::fprintf(stderr,
                   "  %s  present %.3f  read %.2f s  harmonize %.2f s  vessels %.2f s  roi %.2f s  network %.2f s  "
                   "candidates %.2f s  windows %lld/%lld%s\n",
                   p.series_uid.c_str(), p.probability[kPresentColumn], p.read_s, p.harmonize_s, p.vessels_s, p.roi_s,
                   p.network_s, p.candidates_s, static_cast<long long>(p.windows_run),
                   static_cast<long long>(p.windows_total), p.fallback ? "  FALLBACK" : "");
  };
  std::cerr << "predict: " << dirs.size() << " series, " << predictor.folds().size() << " fold model(s)"
            << (po.flip_tta ? " x left/right flip" : "") << ", " << torch::get_num_threads() << " thread(s)"
            << (thick ? "; series with slices over " + fmt::format("{:g}", a.thick_slice_mm) +
                            " mm apart: " + a.thick_model
                      : std::string())
            << (vessels ? "; vessel stage: " + a.vessel_model : std::string())
            << (coarse ? "; candidates of " +
                             (a.candidate_model.empty() ? predictor.info().candidate_model : a.candidate_model)
                       : std::string())
            << "\n";
  const BatchResult r = predict_batch(predictor, dirs, bo);
  const double n = std::max<double>(1, static_cast<double>(r.series));
  std::fprintf(
      stderr,
      "predict: %zu series in %.1f s (%.2f s/series: read %.2f, harmonize %.2f, vessels %.2f, roi %.2f, network "
      "%.2f, candidates %.2f); %d fallback(s) -> %s, points in %s\n",
      r.series, r.total_s, r.total_s / n, r.read_s / n, r.harmonize_s / n, r.vessels_s / n, r.roi_s / n,
      r.network_s / n, r.candidates_s / n, r.fallbacks, bo.csv.string().c_str(), bo.points.string().c_str());
  if (vessels && r.vessels_missing)
    std::fprintf(stderr, "predict: the vessel stage found no vessel in %d series (they were searched everywhere)\n",
                 r.vessels_missing);
  return r.fallbacks ? static_cast<int>(ErrorCode::Partial) : 0;
}

}  // namespace

void add_predict(CLI::App& app, Action& action) {
  auto a = std::make_shared<PredictArgs>();
  auto* cmd = app.add_subcommand("predict", describe("predict"));
  cmd->add_option("MODEL_DIR", a->model, "Trained model folder (WORK/runs/<configuration>)")->required();
  cmd->add_option("SERIES_DIR", a->series, "Series folders");
  cmd->add_option("--data", a->data, "Every series of an RSNA-layout folder (series/<uid>/)");
  cmd->add_option("-o,--output", a->out, "predictions.csv (SeriesInstanceUID + the 14 columns)")->required();
  cmd->add_option("--points", a->points,
                  "Folder for the per-series JSON (default: <output stem>_points beside the CSV)");
  cmd->add_option("--folds", a->folds, "Only these folds (default: every trained fold)");
  cmd->add_option("--checkpoint", a->checkpoint,
                  "last: each fold's final weights (EMA), as nnU-Net predicts; best: its best validation epoch (noisy "
                  "with few validation cases)")
      ->check(CLI::IsMember({"last", "best"}));
  cmd->add_option("--probabilities", a->probabilities,
                  "heatmap: each column's largest aneurysm-map value over the ROI (Present: 1 - p(background)); head: "
                  "the label head's, "
                  "the largest over the windows")
      ->check(CLI::IsMember({"heatmap", "head"}));
  cmd->add_option(
         "--location-sigma", a->location_sigma,
         "mm: kernel width of the location prior (the training cases' localizer points relative to their ROI centres, "
         "model.json) mixed into the location columns and points with --probabilities heatmap, and into each "
         "candidate's location distribution for a stage that finds its own candidates (cpu_dots); 0 = without it")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option(
         "--field-edge", a->field_edge,
         "mm: the aneurysm maps fade out near the end of the imaged volume, 0 within half of this, full beyond it "
         "(a vessel cut by the field of view ends in a blob-like stump); default: the model's field_edge_mm (8); 0 = "
         "off")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--thick-model", a->thick_model,
                  "A second model folder for the series whose slices lie more than --thick-slice-mm apart (e.g. "
                  "WORK/runs/cpu_demo beside cpu_fine: a 1 mm model on 5 mm MR slices sees interpolation)");
  cmd->add_option("--thick-slice-mm", a->thick_slice_mm, "Slice distance above which --thick-model predicts (2)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--vessel-model", a->vessel_model,
                  "Two stages: a model folder whose vessel head finds the arteries first (e.g. WORK/runs/cpu_demo); "
                  "MODEL_DIR then runs only the windows within --vessel-margin of them, its maps count only there, "
                  "and the location columns take the territory under the detection. A series where it finds no "
                  "vessel is searched everywhere (a warning and vessel_stage.found false in its JSON)");
  cmd->add_option(
      "--candidate-model", a->candidate_model,
      "A candidate stage's coarse model folder (default: the one it was trained with, model.json): it "
      "predicts the series and lists its heatmap's strongest maxima, MODEL_DIR judges a window around each");
  cmd->add_option("--candidates", a->candidates,
                  "A candidate stage judges this many of the coarse model's strongest maxima, or of the dot "
                  "filter's for one that finds its own (default: its configuration's candidates)")
      ->check(CLI::Range(1, 256))
      ->default_str("");  // unset (0) means the configuration's
  cmd->add_option("--candidate-weight", a->candidate_weight,
                  "A candidate stage's Present: (1 - w) x the coarse model's + w x the largest sqrt(coarse x "
                  "judgement) over the candidates (0.5)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--flip-candidates", a->flip_candidates,
                  "A candidate stage's flip TTA mirrors the windows of only this many candidates, those it judged "
                  "strongest unmirrored; the others keep their one judgement (0: every candidate)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--precision", a->precision,
                  "fp32, or bf16 autocast (about twice as fast on a CPU with AMX or AVX512-BF16; CUDA) (default: "
                  "the model's plans, mixed_precision)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  cmd->add_option("--vessel-margin", a->vessel.margin_mm, "mm: how far from a vessel the aneurysm stage looks (8)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--vessel-threshold", a->vessel.threshold,
                  "A voxel is vessel where the vessel stage's 1 - p(background) reaches this (0.5)")
      ->check(CLI::Range(0.01, 0.99));
  cmd->add_option("--vessel-min-ml", a->vessel.min_ml,
                  "Less vessel than this (ml) counts as none found: the series is searched everywhere (0.5)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--territory-weight", a->vessel.territory_weight,
                  "Weight of the territory under the detection in the location columns and points (0.5; 0 = the "
                  "aneurysm model's own)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--vessel-min-component-mm3", a->vessel.min_component_mm3,
                  "Vessel components (ITK connected components) smaller than this (mm^3) are dropped before the "
                  "vessel stage guides the aneurysm stage (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-component-mm3", a->components.min_aneurysm_mm3,
                  "Aneurysm components (voxels where 1 - p(background) > --component-threshold) smaller than this "
                  "(mm^3) are dropped: their voxels become background before the probabilities and points (0: none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--component-threshold", a->components.threshold,
                  "1 - p(background) above which a voxel belongs to an aneurysm component (0.5)")
      ->check(CLI::Range(0.01, 0.99));
  cmd->add_option("--points-at", a->points_at,
                  "peak: each point at its largest voxel; centre: at the centre of mass of its component")
      ->check(CLI::IsMember({"peak", "centre"}));
  cmd->add_flag("--no-tta", a->no_tta, "No left/right flip test-time augmentation");
  cmd->add_option("--device", a->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--threads", a->threads, "LibTorch threads (default: usable cores)");
  cmd->add_flag("--heatmaps", a->heatmaps,
                "Also write <uid>_roi.nii, <uid>_heatmap.nii (1 - p(background)) and <uid>_vessels.nii (territories) "
                "for aneura report and evaluate");
  cmd->add_option("--shard", a->shard,
                  "I/N: only share I of N of the series (sorted by folder), written to <output>.shard-I-of-N.csv; "
                  "`aneura merge <output>` joins the parts (default in a SLURM job array: its task's)");
  cmd->add_flag("-q,--quiet", a->quiet, "No line per series");
  cmd->callback([&action, a] { action = [a] { return run_predict(*a); }; });
}

}  // namespace aneura::app
