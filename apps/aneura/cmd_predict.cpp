#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/uid.hpp"
#include "dataset/rsna.hpp"
#include "evaluate/evaluation.hpp"
#include "infer/batch.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"
#include "model/network.hpp"
#include "report/report.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura::app {

namespace {

struct PredictArgs {
  std::string model, data, out, points, device = "cpu", checkpoint = "last", probabilities = "heatmap";
  std::vector<std::string> series;
  std::vector<int> folds;
  bool no_tta = false, quiet = false, heatmaps = false;
  int threads = 0;
  double location_sigma = 5;
  double field_edge = -1;
};

std::string fmt_prob(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6f", v);
  return b;
}

int run_predict(const PredictArgs& a) {
  set_cpu_threads(a.threads > 0 ? a.threads : static_cast<int>(default_threads()));
  std::vector<fs::path> dirs;
  for (const auto& s : a.series) dirs.emplace_back(s);
  if (!a.data.empty()) {
    const RsnaDataset d = read_rsna(a.data);
    for (const auto& e : d.series) dirs.push_back(d.series_dir(e.uid));
  }
  if (dirs.empty()) throw Error(ErrorCode::Usage, "no series: give SERIES_DIR arguments or --data DATA");
  PredictOptions po;
  po.folds = a.folds;
  po.flip_tta = !a.no_tta;
  po.checkpoint = a.checkpoint + ".pt";
  po.probabilities = a.probabilities;
  po.location_sigma_mm = a.location_sigma;
  po.field_edge_mm = a.field_edge;
  po.device = a.device;
  po.keep_maps = a.heatmaps;
  Predictor predictor(a.model, po);
  BatchOptions bo;
  bo.csv = a.out;
  bo.points = a.points.empty() ? bo.csv.parent_path() / (bo.csv.stem().string() + "_points") : fs::path(a.points);
  bo.maps = a.heatmaps;
  bo.on_series = [&a](size_t, const fs::path& dir, const SeriesPrediction& p) {
    if (p.fallback)
      std::cerr << "warning: " << dir.string() << ": " << p.error
                << "; the row holds the training prevalence (fallback)\n";
    if (!a.quiet)
      std::fprintf(stderr, "  %s  present %.3f  read %.2f s  harmonize %.2f s  network %.2f s%s\n",
                   p.series_uid.c_str(), p.probability[kPresentColumn], p.read_s, p.harmonize_s, p.network_s,
                   p.fallback ? "  FALLBACK" : "");
  };
  std::cerr << "predict: " << dirs.size() << " series, " << predictor.folds().size() << " fold model(s)"
            << (po.flip_tta ? " x left/right flip" : "") << ", " << torch::get_num_threads() << " thread(s)\n";
  const BatchResult r = predict_batch(predictor, dirs, bo);
  const double n = static_cast<double>(r.series);
  std::fprintf(
      stderr,
      "predict: %zu series in %.1f s (%.2f s/series: read %.2f, harmonize %.2f, network %.2f); %d fallback(s) -> %s, "
      "points in %s\n",
      r.series, r.total_s, r.total_s / n, r.read_s / n, r.harmonize_s / n, r.network_s / n, r.fallbacks,
      bo.csv.string().c_str(), bo.points.string().c_str());
  return r.fallbacks ? static_cast<int>(ErrorCode::Partial) : 0;
}

// True localizer points in world LPS mm for the series of `truth` (headers of their series only).
std::map<std::string, std::vector<Vec3>> true_points_world(const RsnaDataset& d, const TruthTable& truth) {
  std::map<std::string, std::vector<Vec3>> tp;
  for (const auto& [uid, locs] : d.localizers) {
    if (!truth.count(uid)) continue;
    const SeriesPlan plan = plan_series(d.series_dir(uid));
    for (const auto& l : locs) tp[uid].push_back(localizer_to_world(plan, l.sop_uid, l.x, l.y, l.frame));
  }
  return tp;
}

struct EvaluateArgs {
  std::string predictions, truth, points, data, json_out;
  double radius = 5;
};

// The largest aneurysm radius per positive series when DATA is a synthetic dataset (truth.json), else none.
std::map<std::string, double> synthetic_radii_if_any(const std::string& data) {
  std::error_code ec;
  if (data.empty() || !fs::exists(fs::path(data) / "truth.json", ec)) return {};
  return read_synthetic_radii(fs::path(data) / "truth.json");
}

int run_evaluate(const EvaluateArgs& a) {
  const ProbabilityTable pred = read_predictions(a.predictions);
  const TruthTable truth = read_truth(a.truth);
  Evaluation e = evaluate(pred, truth);
  if (!a.points.empty()) {
    if (a.data.empty())
      throw Error(ErrorCode::Usage, "--points needs --data (the DICOM series place the true localizers)");
    const RsnaDataset d = read_rsna(a.data);
    const auto tp = true_points_world(d, truth);
    std::map<std::string, std::vector<Vec3>> pp;
    for (const auto& [uid, l] : truth) {
      if (!is_valid_uid(uid)) continue;
      // vessel Dice where the dataset has a segmentation and predict wrote a vessel map (--heatmaps)
      const fs::path map = fs::path(a.points) / (uid + "_vessels.nii");
      const auto seg = d.cowseg(uid);
      std::error_code ec;
      if (seg && fs::exists(map, ec)) e.vessels[uid] = vessel_dice(read_nifti(*seg), read_nifti(map));
      std::ifstream in(fs::path(a.points) / (uid + ".json"));
      if (!in) continue;
      try {
        const json j = json::parse(in);
        for (const auto& p : j.at("points")) pp[uid].push_back(p.at("world_lps_mm").get<Vec3>());
      } catch (const json::exception& ex) {
        throw Error(ErrorCode::CorruptInput, std::string("bad points file: ") + ex.what(),
                    (fs::path(a.points) / (uid + ".json")).string());
      }
    }
    e.localization = localize(tp, pp, a.radius);
  }
  // A synthetic dataset knows its aneurysms' sizes: "Aneurysm Present" AUC per size band.
  if (const auto radii = synthetic_radii_if_any(a.data); !radii.empty())
    e.size_bands = present_auc_by_radius(pred, truth, radii);
  e.by_modality = scores_by_group(pred, truth, read_modalities(a.truth));
  std::printf("%-45s %8s %9s\n", "column", "AUC", "positives");
  for (int c = 0; c < kNumLabels; ++c)
    std::printf("%-45s %8s %9d\n", label_names()[c].c_str(),
                e.score.auc[c] ? fmt_prob(*e.score.auc[c]).substr(0, 6).c_str() : "n/a", e.positives[c]);
  if (e.score.score)
    std::printf("competition score (weighted AUC): %.4f over %zu series\n", *e.score.score, e.series);
  else
    std::printf(
        "competition score: undefined over %zu series (%zu column(s) with one class only); the same weighting over the "
        "%zu defined columns: %.4f\n",
        e.series, e.score.undefined.size(), kNumLabels - e.score.undefined.size(),
        defined_columns_score(e.score).value_or(NAN));
  if (e.localization) {
    const auto& l = *e.localization;
    std::printf("localization within %.1f mm: %d of %d true points found; %d of %d predicted points on a true one\n",
                l.radius_mm, l.hits, l.true_points, l.predicted_hits, l.predicted_points);
  }
  if (!e.size_bands.empty()) {
    std::printf(
        "Aneurysm Present AUC by the largest aneurysm's radius (synthetic truth; each band's positives against all %d "
        "negatives):",
        e.size_bands.front().negatives);
    for (const auto& b : e.size_bands) {
      if (std::isfinite(b.hi_mm))
        std::printf(" %g-%g mm", b.lo_mm, b.hi_mm);
      else
        std::printf(" >= %g mm", b.lo_mm);
      if (b.auc)
        std::printf(" %.3f (%d)", *b.auc, b.positives);
      else
        std::printf(" n/a (%d)", b.positives);
    }
    std::printf("\n");
  }
  if (!e.by_modality.empty()) {
    std::printf("by modality (series/positive, Aneurysm Present AUC, score over the defined columns):");
    for (const auto& g : e.by_modality)
      std::printf("  %s %d/%d %s %s;", g.group.c_str(), g.series, g.positives,
                  g.present_auc ? fmt_prob(*g.present_auc).substr(0, 5).c_str() : "n/a",
                  g.defined_columns_score ? fmt_prob(*g.defined_columns_score).substr(0, 5).c_str() : "n/a");
    std::printf("\n");
  }
  if (const auto m = mean_vessel_dice(e))
    std::printf(
        "vessel Dice over %zu series with a segmentation (inside the ROI): vessels %.3f, territories (mean) %.3f\n",
        e.vessels.size(), m->foreground, m->territories);
  if (!a.json_out.empty()) write_text_atomically(a.json_out, to_json(e).dump(1) + "\n");
  return 0;
}

struct ReportArgs {
  std::string work, predictions, truth, points, data, out;
  int series = 4;
};

int run_report(const ReportArgs& a) {
  ReportOptions o;
  o.work = a.work;
  o.predictions = a.predictions;
  o.truth = a.truth;
  o.points = a.points;
  o.mip_series = a.series;
  o.out = a.out.empty() ? fs::path(a.work) / "report" : fs::path(a.out);
  if (!a.data.empty() && !a.truth.empty()) o.true_points = true_points_world(read_rsna(a.data), read_truth(a.truth));
  o.largest_radius_mm = synthetic_radii_if_any(a.data);
  if (!a.truth.empty()) o.modality = read_modalities(a.truth);
  const ReportResult r = write_report(o);
  std::cerr << "report: " << r.pictures.size() << " pictures -> " << r.html.string() << "\n";
  return 0;
}

}  // namespace

void add_predict(CLI::App& app, Action& action) {
  auto a = std::make_shared<PredictArgs>();
  auto* cmd = app.add_subcommand("predict",
                                 "14 probabilities and aneurysm points per DICOM series, with every fold x flip TTA");
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
         "model.json) mixed into the location columns and points with --probabilities heatmap; 0 = the maps alone")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option(
         "--field-edge", a->field_edge,
         "mm: the aneurysm maps fade out near the end of the imaged volume, 0 within half of this, full beyond it "
         "(a vessel cut by the field of view ends in a blob-like stump); default: the model's field_edge_mm (8); 0 = "
         "off")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-tta", a->no_tta, "No left/right flip test-time augmentation");
  cmd->add_option("--device", a->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--threads", a->threads, "LibTorch threads (default: usable cores)");
  cmd->add_flag("--heatmaps", a->heatmaps,
                "Also write <uid>_roi.nii, <uid>_heatmap.nii (1 - p(background)) and <uid>_vessels.nii (territories) "
                "for aneura report and evaluate");
  cmd->add_flag("-q,--quiet", a->quiet, "No line per series");
  cmd->callback([&action, a] { action = [a] { return run_predict(*a); }; });

  auto e = std::make_shared<EvaluateArgs>();
  auto* ev = app.add_subcommand("evaluate",
                                "Competition score (weighted AUC), per-column AUC and localization of predictions");
  ev->add_option("PREDICTIONS", e->predictions, "predictions.csv")->required();
  ev->add_option("TRUTH", e->truth, "train.csv (or any CSV with SeriesInstanceUID and the 14 columns)")->required();
  ev->add_option("--points", e->points,
                 "Per-series JSON folder from predict: localization against the localizers, and vessel Dice against "
                 "the segmentations (maps from predict --heatmaps)");
  ev->add_option("--data", e->data, "RSNA-layout folder (train_localizers.csv, series/) for --points");
  ev->add_option("--radius", e->radius, "Hit radius in mm");
  ev->add_option("--json", e->json_out, "Write the evaluation as JSON");
  ev->callback([&action, e] { action = [e] { return run_evaluate(*e); }; });

  auto r = std::make_shared<ReportArgs>();
  auto* rp =
      app.add_subcommand("report", "HTML report: scores, ROC curves, training curves, MIPs with heatmap and points");
  rp->add_option("WORK", r->work, "Work folder (training logs in WORK/runs)")->required();
  rp->add_option("--predictions", r->predictions, "predictions.csv from aneura predict");
  rp->add_option("--truth", r->truth, "train.csv of the predicted series (ROC curves, score)");
  rp->add_option("--points", r->points, "predict's per-series folder (MIPs need predict --heatmaps)");
  rp->add_option("--data", r->data, "RSNA-layout folder of the series: true localizers drawn on the MIPs");
  rp->add_option("--series", r->series, "Series pictured (highest Aneurysm Present first)");
  rp->add_option("-o,--output", r->out, "Report folder (default WORK/report)");
  rp->callback([&action, r] { action = [r] { return run_report(*r); }; });
}

}  // namespace aneura::app
