#include "infer/batch.hpp"

#include <spdlog/fmt/fmt.h>

#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "core/uid.hpp"
#include "io/nifti.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

json point_json(const PredictedPoint& p) {
  json loc = json::object();
  for (int c = 0; c < kNumLocations; ++c) loc[label_names()[c]] = p.location[c];
  json j = {{"world_lps_mm", p.world_lps},
            {"probability", p.probability},
            {"location", label_names()[p.column]},
            {"location_probabilities", loc}};
  if (!p.sop_uid.empty()) j["dicom"] = {{"SOPInstanceUID", p.sop_uid}, {"x", p.x}, {"y", p.y}, {"frame", p.frame}};
  return j;
}

}  // namespace

json series_json(const SeriesPrediction& p, const fs::path& dir) {
  json j = {{"SeriesInstanceUID", p.series_uid},
            {"folder", dir.string()},
            {"fallback", p.fallback},
            {"model", p.model},
            {"modality", p.modality},
            {"predicted_modality", p.predicted_modality},
            {"timing_s",
             {{"read", p.read_s},
              {"harmonize", p.harmonize_s},
              {"vessels", p.vessels_s},
              {"roi", p.roi_s},
              {"network", p.network_s},
              {"candidates", p.candidates_s}}},
            {"windows", {{"run", p.windows_run}, {"of", p.windows_total}}}};
  if (!p.warnings.empty()) j["warnings"] = p.warnings;
  j["components_dropped"] = p.dropped_components;
  if (p.vessel_stage) {
    j["vessel_stage"] = {{"found", p.vessels_found}, {"volume_ml", p.vessel_ml}, {"note", p.vessel_note}};
    if (p.vessels_found) j["vessel_stage"]["box_lps_mm"] = {p.vessel_lo, p.vessel_hi};
  }
  json probs = json::object();
  for (int c = 0; c < kNumLabels; ++c) probs[label_names()[c]] = p.probability[c];
  j["probabilities"] = probs;
  j["points"] = json::array();
  for (const auto& pt : p.points) j["points"].push_back(point_json(pt));
  if (!p.candidates.empty()) {
    j["candidates"] = json::array();
    for (const auto& c : p.candidates) {
      json cj = {{"world_lps_mm", c.world_lps},  {"coarse", c.coarse},     {"fine", c.fine},
                 {"fine_centre", c.fine_centre}, {"fine_mm3", c.fine_mm3}, {"head", c.head}};
      if (c.head >= 0) {  // judged: the evidence of its location column
        cj["head_locations"] = c.head_locations;
        cj["fine_locations"] = c.fine_locations;
        cj["prior_locations"] = c.prior_locations;
      }
      j["candidates"].push_back(cj);
    }
  }
  if (p.fallback) j["error"] = p.error;
  return j;
}

BatchResult predict_batch(Predictor& predictor, const std::vector<fs::path>& series_dirs, const BatchOptions& o) {
  std::error_code ec;
  fs::create_directories(o.points, ec);
  if (ec) throw Error(ErrorCode::OutputFailed, "cannot create the points folder: " + ec.message(), o.points.string());
  std::ostringstream csv;
  csv << "SeriesInstanceUID";
  for (const auto& n : label_names()) csv << "," << n;
  csv << "\n";
  BatchResult r;
  const auto t0 = SteadyClock::now();
  for (size_t i = 0; i < series_dirs.size(); ++i) {
    const SeriesPrediction p = predictor.predict_series(series_dirs[i]);
    ++r.series;
    r.read_s += p.read_s;
    r.harmonize_s += p.harmonize_s;
    r.vessels_s += p.vessels_s;
    r.roi_s += p.roi_s;
    r.network_s += p.network_s;
    r.candidates_s += p.candidates_s;
    r.vessels_missing += p.vessel_stage && !p.vessels_found && !p.fallback;
    r.fallbacks += p.fallback;
    csv << p.series_uid;
    for (double v : p.probability) csv << "," << fmt::format("{:.6f}", v);
    csv << "\n";
    // The UID names a file only when it is a valid UID.
    const std::string name = is_valid_uid(p.series_uid) ? p.series_uid : "series_" + std::to_string(i);
    if (o.maps && !p.fallback && !p.heatmap.data.empty()) {  // (the 2.5D family has no maps)
      write_nifti(p.roi, o.points / (name + "_roi.nii"));
      write_nifti(p.heatmap, o.points / (name + "_heatmap.nii"));
      write_nifti(p.vessels, o.points / (name + "_vessels.nii"));
    }
    write_text_atomically(o.points / (name + ".json"),
                          series_json(p, series_dirs[i]).dump(1, ' ', false, json::error_handler_t::replace) + "\n");
    if (o.on_series) o.on_series(i, series_dirs[i], p);
  }
  write_text_atomically(o.csv, csv.str());
  r.total_s = seconds_since(t0);
  return r;
}

}  // namespace aneura
