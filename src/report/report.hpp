// `aneura report`: an HTML page with
//   - the score, the per-column AUCs, the Present AUC per aneurysm size band (synthetic truth) and
//     the metric per modality (tables);
//   - ROC curves per column and training curves per fold (WORK/runs/<configuration>/fold_<k>/log.jsonl)
//     as SVG charts with titles, labelled axes, ticks and legends;
//   - for selected series, PNG pictures of tri-planar maximum-intensity projections of the ROI with the aneurysm
//     heatmap overlaid (red) and the predicted points (green crosses; true localizers, when known,
//     as yellow rings).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/geometry.hpp"

namespace aneura {

// ROC curve as scikit-learn's roc_curve(drop_intermediate=False): one point per distinct score,
// from (0, 0) to (1, 1). Empty when a class is missing.
std::pair<std::vector<double>, std::vector<double>> roc_curve(const std::vector<int>& truth,
                                                              const std::vector<double>& score);

struct ReportOptions {
  std::filesystem::path work;                            // training logs under WORK/runs
  std::filesystem::path predictions;                     // predictions.csv (optional)
  std::filesystem::path truth;                           // train.csv (optional; ROC needs it)
  std::filesystem::path points;                          // predict's per-series folder (MIPs need --heatmaps output)
  std::map<std::string, std::vector<Vec3>> true_points;  // world LPS by series (optional)
  std::map<std::string, double> largest_radius_mm;       // synthetic truth (optional): Present AUC per size band
  std::map<std::string, std::string> modality;           // by series (optional): the metric per modality
  std::filesystem::path out;                             // folder: index.html + PNGs
  int mip_series = 4;
};

struct ReportResult {
  std::filesystem::path html;
  std::vector<std::filesystem::path> pictures;
  double score = -1;  // competition score when defined
};

// Throws Error(InputNotFound/CorruptInput) for unreadable inputs; outputs are written atomically.
ReportResult write_report(const ReportOptions& o);

}  // namespace aneura
