// Prediction over many series (the library under `aneura predict`): every series through one
// Predictor, a bad series recorded as its fallback row and the batch going on, then
//   <csv>                    SeriesInstanceUID + the 14 columns, one row per series, written
//                            atomically when every series is done (never a partial file)
//   <points>/<uid>.json      per series: probabilities, points (world LPS and on their DICOM
//                            instance), modality, timing, the error of a fallback row
//   <points>/<uid>_{roi,heatmap,vessels}.nii   with `maps` (PredictOptions::keep_maps)
// A file is named by the series' UID only when it is a valid DICOM UID, else series_<index>.
#pragma once
#include <filesystem>
#include <functional>
#include <vector>

#include "infer/predictor.hpp"

namespace aneura {

struct BatchOptions {
  std::filesystem::path csv;     // predictions.csv
  std::filesystem::path points;  // per-series folder (created)
  bool maps = false;             // the predictor must keep its maps (PredictOptions::keep_maps)
  // Called after each series (e.g. a line on the console); may be empty.
  std::function<void(size_t index, const std::filesystem::path& dir, const SeriesPrediction& p)> on_series;
};

struct BatchResult {
  size_t series = 0;
  int fallbacks = 0;
  int vessels_missing = 0;  // series whose vessel stage found no vessel (looked everywhere)
  double total_s = 0, read_s = 0, harmonize_s = 0, vessels_s = 0, roi_s = 0, network_s = 0,
         candidates_s = 0;  // sums over the series
};

// Throws Error(OutputFailed) when an output cannot be written; a series that cannot be read never throws.
BatchResult predict_batch(Predictor& predictor, const std::vector<std::filesystem::path>& series_dirs,
                          const BatchOptions& o);

// The per-series JSON record (what <points>/<uid>.json holds).
nlohmann::json series_json(const SeriesPrediction& p, const std::filesystem::path& dir);

}  // namespace aneura
