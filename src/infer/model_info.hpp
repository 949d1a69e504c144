// WORK/runs/<configuration>/model.json: everything prediction needs besides the weights, written by
// training and read by prediction, here alone:
//   configuration, plans     the configuration (every field) and the plans' global section
//   in_channels, folds       the network's input channels; the folds of the run (fold_<k>/)
//   modalities, labels       the modality head's and the label columns' names (for readers)
//   harmonize                how the training cases were made (WORK/preprocess.json): predict repeats it
//   prior                    prevalence per column: the row of a series that cannot be read
//   location_points          the training localizer points relative to their ROI centres
//   roi_offsets              ROI centre = the finder's anchor + the offset of its rule
//   candidate_model          a candidate stage's coarse model (train --candidates-from), or null
#pragma once
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/labels.hpp"
#include "harmonize/pipeline.hpp"
#include "harmonize/roi.hpp"
#include "infer/location_prior.hpp"
#include "plan/plans.hpp"

namespace aneura {

struct ModelInfo {
  Configuration cfg;
  nlohmann::json plans_global = nlohmann::json::object();  // the plans' global section, kept for readers
  int in_channels = 1;
  int folds = 1;
  HarmonizeParams harmonize;               // as the training cases were made
  std::array<double, kNumLabels> prior{};  // prevalence per column in the labelled cases (fallback rows)
  LocationPrior locations;                 // the cases' localizer points relative to their ROI centres
  RoiOffsets roi_offsets;                  // learned in training; the defaults for models from before them
  std::string init_encoder;                // the checkpoint whose encoder initialised training ("": none)
  std::string candidate_model;             // a candidate stage: the coarse model folder its candidates came from
};

// Throws Error: InputNotFound (no model.json), CorruptInput (malformed, unknown configuration).
ModelInfo read_model_info(const std::filesystem::path& model_dir);
// Writes model_dir/model.json atomically. Throws Error(OutputFailed).
void write_model_info(const std::filesystem::path& model_dir, const ModelInfo& m);

}  // namespace aneura
