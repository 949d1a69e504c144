// aneura evaluate and aneura report: predictions against the truth, and the HTML report.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/uid.hpp"
#include "dataset/rsna.hpp"
#include "evaluate/evaluation.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"
#include "report/report.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura::app {

namespace {

std::string fmt_prob(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6f", v);
  return b;
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

void add_evaluate(CLI::App& app, Action& action) {
  auto e = std::make_shared<EvaluateArgs>();
  auto* ev = app.add_subcommand("evaluate", describe("evaluate"));
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
  auto* rp = app.add_subcommand("report", describe("report"));
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
