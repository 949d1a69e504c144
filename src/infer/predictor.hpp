// Prediction per series (issue 7): ingest -> harmonize as the training cases were -> ROI ->
// every fold's network x left/right flip (the flipped output's twin columns and heatmap
// location values swapped back) -> 14 probabilities and the most likely aneurysm points.
#pragma once
#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "core/labels.hpp"
#include "model/network.hpp"
#include "train/trainer.hpp"

namespace aneura {

struct PredictedPoint {
  Vec3 world_lps{0, 0, 0};
  double probability = 0;                  // heatmap: 1 - p(background) at the point
  int column = 0;                          // most likely location at the point
  std::array<double, kNumLabels - 1> location{};  // location distribution at the point (sums to 1)
  std::string sop_uid;                     // nearest instance, and the point on it in pixels
  int frame = 0;
  double x = 0, y = 0;
};

struct SeriesPrediction {
  std::string series_uid;                  // from the DICOM headers (or the folder name on failure)
  std::array<double, kNumLabels> probability{};
  std::vector<PredictedPoint> points;      // best first; inside the image (none outside its field of view)
  std::string modality, predicted_modality;
  double read_s = 0, harmonize_s = 0, network_s = 0;
  bool fallback = false;                   // the series could not be read: prior probabilities
  Volume<float> roi, heatmap, vessels;     // with PredictOptions::keep_maps: the ROI input (first
                                           // channel), 1 - p(background) and the vessel territory
                                           // map (cowseg values 0..13), on the ROI grid
  std::string error;
};

struct PredictOptions {
  std::vector<int> folds;                  // empty: every fold with a checkpoint
  bool flip_tta = true;
  std::string probabilities = "heatmap";   // "heatmap": heatmap_probabilities of the averaged maps; "head": the label head's
  double field_edge_mm = -1;               // the aneurysm maps fade out within this many mm of the image's edge
                                           // (field_edge_weights); < 0: the model's configuration's
  double location_sigma_mm = 5;            // with "heatmap": kernel width of the location prior (model.json); 0 = maps alone
  std::string checkpoint = "last.pt";      // per fold (the final weights); last.pt when the file asked for is missing
  std::string device = "cpu";
  int max_points = 3;
  double min_point_probability = 0.05;
  double point_separation_mm = 10;
  bool keep_maps = false;
};

class Predictor {
 public:
  // Loads model.json and the folds' checkpoints once. Throws Error (InputNotFound, CorruptInput).
  Predictor(const std::filesystem::path& model_dir, const PredictOptions& o);
  // Never throws for a bad series: the result is the documented fallback with `error` set.
  SeriesPrediction predict_series(const std::filesystem::path& series_dir);
  // The network part alone on a harmonized image (tests, evaluation on cached cases).
  SeriesPrediction predict_image(const Volume<float>& image);
  const ModelInfo& info() const { return info_; }
  const std::vector<int>& folds() const { return folds_; }
  const std::array<double, kNumLabels>& prior() const { return info_.prior; }

 private:
  ModelInfo info_;
  PredictOptions o_;
  std::vector<int> folds_;
  std::vector<MultiTaskUNet> nets_;
  torch::Device dev_{torch::kCPU};
};

}  // namespace aneura
