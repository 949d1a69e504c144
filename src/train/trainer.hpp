// `aneura train`: one fold of one plans configuration.
//   WORK/runs/<configuration>/model.json      what predict needs (configuration, channels, folds)
//   WORK/runs/<configuration>/fold_<k>/last.pt   every epoch (atomically): weights, EMA, optimizer,
//                                              epoch, step, best score, schedule length, elapsed
//   WORK/runs/<configuration>/fold_<k>/best.pt   when the validation selection score improves
//   WORK/runs/<configuration>/fold_<k>/log.jsonl one line per epoch
// Random numbers come from (seed, epoch, position) only, so `--resume` continues exactly.
#pragma once
#include <array>
#include <filesystem>
#include <string>

#include "harmonize/pipeline.hpp"
#include "model/network.hpp"
#include "plan/plans.hpp"
#include "train/data.hpp"
#include "train/location_prior.hpp"

namespace aneura {

struct TrainOptions {
  std::filesystem::path work;
  std::filesystem::path plans_file;       // default WORK/plans.json
  std::string configuration;              // default: the plans' default configuration
  int fold = 0;
  uint64_t seed = 42;
  bool resume = false;                    // continue from fold_<k>/last.pt
  int epochs = 0;                         // 0: the plans' epochs
  double time_budget_s = -1;              // < 0: the plans' budget; 0: none
  int stop_after_epochs = 0;              // > 0: stop after this many epochs of this invocation (resume later)
  int steps_per_epoch = 0;                // 0: training cases / batch, at least 1
  std::string device;                     // "" : the plans' device
  int threads = 0;                        // LibTorch intra-op threads; 0: usable cores
  int workers = -1;                       // loader workers; < 0: the plans'
  bool augment = true;
  // Transfer (seed 001)
  std::filesystem::path init_encoder;     // checkpoint whose encoder initialises ours
  int freeze_encoder_epochs = 0;
  double encoder_lr_multiplier = 1.0;
  bool progress = true;
};

struct TrainResult {
  std::filesystem::path run_dir;          // fold folder
  int epochs_done = 0;
  double best_selection = 0;
  bool stopped_by_budget = false;
  double train_loss_last = 0;
};

// Throws Error: Usage (unknown model/configuration, bad fold, device without CUDA), InputNotFound
// (no cases, no checkpoint to resume), CorruptInput (unreadable checkpoint or case), NoDicom (an
// empty training set).
TrainResult train(const TrainOptions& o);

// Weights of a checkpoint into `net`: the EMA weights when the checkpoint has them and `ema`.
void load_weights(const std::filesystem::path& checkpoint, MultiTaskUNet& net, bool ema = true);

// The network over a whole ROI input x [C, X, Y, Z] (roi_input), no gradient: one forward when the
// configuration is not windowed, else the windows of window_starts, `batch` at a time. With
// `mirror`, the network sees the mirrored input (mirror_input) and the outputs are mirrored back
// (maps flipped, twin columns and classes swapped), so they describe the unmirrored ROI.
struct RoiOutput {
  torch::Tensor head_labels;  // [14] the label head's probabilities: the largest over the windows (CPU, double)
  torch::Tensor aneurysm;  // [14, X, Y, Z] softmax, the mean over the windows covering a voxel (CPU)
  torch::Tensor vessel;    // [14, X, Y, Z] likewise (only with `vessels`)
  torch::Tensor modality;  // [4] softmax, the mean over the windows (CPU, double)
};
RoiOutput roi_forward(MultiTaskUNet& net, const torch::Tensor& x, const Configuration& cfg, bool mirror,
                      bool vessels = false, int batch = 4);

// A series' 14 probabilities from its aneurysm maps [14, X, Y, Z] (softmax; class 0 background,
// class c + 1 location column c): column c's is the largest p(c + 1) over the voxels, "Aneurysm
// Present" the largest 1 - p(background). On held-out synthetic series this ranked series better
// than the label head (docs/CLI.md, predict). Returns [14] (CPU, double).
torch::Tensor heatmap_probabilities(const torch::Tensor& aneurysm);

// Per voxel of the ROI grid `roi` [X, Y, Z] (double): mm to the nearest face of the image's box
// (`image`, its voxels' extent: half a voxel beyond the edge voxels' centres); negative outside.
torch::Tensor field_distance_mm(const Geometry& image, const Geometry& roi);
// The field of view's edge: a vessel cut by the end of the imaged volume (a TOF slab's inferior
// border cuts both ICAs) ends in a bright stump the maps take for an aneurysm. Weights [X, Y, Z]
// (float): 0 outside the image's box and within margin / 2 mm of its faces, rising linearly to 1
// at `margin` mm inside; all 1 when margin <= 0.
torch::Tensor field_edge_weights(const torch::Tensor& distance_mm, double margin_mm);
torch::Tensor field_edge_weights(const Geometry& image, const Geometry& roi, double margin_mm);
// Scales the aneurysm classes of `aneurysm` [14, X, Y, Z] by `w` [X, Y, Z]; the background takes
// the rest, so a voxel's probabilities still sum to 1.
void damp_field_edge(torch::Tensor& aneurysm, const torch::Tensor& w);

struct TrainCase;
// The 14 probabilities of one case: its unaugmented ROI through `net` (eval mode, roi_forward),
// from the maps (heatmap_probabilities), or with `head` the label head's.
std::array<double, 14> predict_case(MultiTaskUNet& net, const TrainCase& c, const Configuration& cfg, bool head = false);

// model.json of a run folder, read back: configuration and input channels.
struct ModelInfo {
  Configuration cfg;
  int in_channels = 1;
  int folds = 1;
  HarmonizeParams harmonize;  // as the training cases were made (WORK/preprocess.json)
  std::array<double, 14> prior{};  // prevalence per column in the labelled cases (fallback rows)
  LocationPrior locations;         // the cases' localizer points relative to their ROI centres
  RoiOffsets roi_offsets;          // ROI centre = anchor + offset (learned in training; defaults for older models)
};
ModelInfo read_model_info(const std::filesystem::path& model_dir);

}  // namespace aneura
