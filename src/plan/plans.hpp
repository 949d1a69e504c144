// plans.json: global settings plus named configurations that can inherit from one another
// ("inherits": "<name>"; the child's keys override the parent's). Every field is documented in
// docs/PLANS.md; an unknown key, a missing key after inheritance, a cycle or an unknown model name
// is an error naming the configuration.
#pragma once
#include <array>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aneura {

struct Configuration {
  std::string name;
  std::string device = "cpu";                   // cpu | cuda
  std::string model = "resenc_unet_multitask";  // checked against known_models()
  std::array<double, 3> target_spacing_mm{1, 1, 1};
  std::array<double, 3> roi_mm{128, 128, 112};   // Circle-of-Willis region, RAS extent
  std::array<int, 3> patch_size{128, 128, 112};  // voxels the ROI is resized to
  int stages = 5;                                // encoder resolutions (poolings + 1)
  int base_channels = 32, max_channels = 320;
  int batch_size = 2;
  int loader_workers = 2, queue_length = 4;
  std::string optimizer = "sgd";  // sgd (Nesterov, poly LR) | adamw (cosine)
  double learning_rate = 0.01, weight_decay = 3e-5;
  int epochs = 100;
  double time_budget_s = 0;  // 0: no limit
  bool mixed_precision = false, channels_last = false;
  // Training details (optional in plans.json; these defaults when absent).
  int folds = 5;                            // cross-validation folds
  double ema_decay = 0.99;                  // EMA of weights per step; 0 = off
  double grad_clip = 12;                    // global gradient norm; 0 = off
  bool gradient_checkpointing = false;      // U-Net blocks recomputed in the backward pass (memory for time)
  double positive_oversampling = 2;         // sampling weight of a positive case (rare locations more)
  bool blob_features = false;               // + bright/dark blobness input channels (data.hpp)
  double spatial_augmentation = 0.5;        // windowed: probability of a rotated/scaled window (data.hpp)
  double field_edge_mm = 8;                 // maps fade out near the image's edge (trainer.hpp); 0 = off
  double window_overlap = 0.5;              // windowed prediction: the least share of a patch neighbours overlap
  int focus_windows = 0;                    // windowed prediction: 0 = every window; N = only the windows nearest
                                            // the N strongest bright and N strongest dark blobs (model/input.hpp)
  int candidates = 0;                       // > 0: a candidate stage: it looks only at the N strongest maxima of a
                                            // coarse model's heatmap (train --candidates-from, predict
                                            // --candidate-model; infer/predictor.hpp) and judges each one
  std::string candidate_source = "coarse";  // a candidate stage's candidates: "coarse" (a coarse model's heatmap
                                            // maxima) or "dots" (the image's own: model/input.hpp dot_candidates;
                                            // no coarse model, the stage predicts alone)
  int mine_candidates_every = 0;            // a candidate stage: every N epochs the network judges the training
                                            // cases' candidates and samples them by that judgement (0: uniformly)
  bool mine_online = false;                 // a candidate stage: after each epoch its candidates are drawn by the
                                            // label head's Present on the training windows cut around them then
                                            // (no extra pass; train/trainer.cpp)
  std::vector<std::string> modalities;      // training learns from the cases of these modalities only; empty: all
  bool vessel_stage = false;                // a vessel model (predict --vessel-model): learns from the segmented
                                            // cases only, judged by its vessel Dice
  std::map<std::string, double> loss_weights{{"vessel", 1}, {"aneurysm", 1}, {"classification", 1}, {"modality", 0.2}};
  nlohmann::json normalization;  // {"CT": {...}, "MR": {...}} as HarmonizeParams takes it
};

struct Plans {
  int version = 1;
  std::string default_configuration;
  nlohmann::json global;                                    // fingerprint summary, hardware, labels, rules version
  std::map<std::string, nlohmann::json> raw;                // configurations as written (with "inherits")
  std::map<std::string, Configuration> configurations;      // resolved
  const Configuration& get(const std::string& name) const;  // throws Error(Usage) for unknown names
};

const std::vector<std::string>& known_models();

nlohmann::json to_json(const Plans& p);
nlohmann::json configuration_to_json(const Configuration& c);  // every field, no "inherits"
Plans plans_from_json(const nlohmann::json& j);                // resolves inheritance, validates strictly
Plans read_plans(const std::filesystem::path& file);
void write_plans(const Plans& p, const std::filesystem::path& file);  // atomically

}  // namespace aneura
