// `aneura train`: one fold of one plans configuration, in phases (nnU-Net's nnUNetTrainer is the
// model): prepare the run (plans, cases, folds, ROI offsets, model.json) -> build the networks ->
// resume -> per epoch: train (steps from the asynchronous loader) -> validate (a Predictor over
// the network in memory, src/infer) -> checkpoint and log -> end (time budget, last epoch).
//   WORK/runs/<configuration>/model.json      what predict needs (src/infer/model_info.hpp)
//   WORK/runs/<configuration>/fold_<k>/last.pt   every epoch (atomically): weights, EMA, optimizer,
//                                              epoch, step, best score, schedule length, elapsed
//   WORK/runs/<configuration>/fold_<k>/best.pt   when the validation selection score improves
//   WORK/runs/<configuration>/fold_<k>/log.jsonl one line per epoch
// Random numbers come from (seed, epoch, position) only, so `--resume` continues exactly.
// Data-parallel (TrainOptions::collective of several ranks): the plans' batch is the global batch,
// each rank makes and trains on its share of it (the same samples at the same global positions),
// gradients are summed over the ranks, validation cases are shared out and the results summed, the
// time budget's decisions are rank 0's, and rank 0 alone writes the run folder. The result is that
// of one process (to float rounding), and a run resumes with any number of ranks.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "train/collective.hpp"

namespace aneura {

struct TrainOptions {
  std::filesystem::path work;
  std::filesystem::path plans_file;  // default WORK/plans.json
  std::string configuration;         // default: the plans' default configuration
  int fold = 0;
  uint64_t seed = 42;
  bool resume = false;        // continue from fold_<k>/last.pt
  int epochs = 0;             // 0: the plans' epochs
  double time_budget_s = -1;  // < 0: the plans' budget; 0: none
  int stop_after_epochs = 0;  // > 0: stop after this many epochs of this invocation (resume later)
  int steps_per_epoch = 0;    // 0: training cases / batch, at least 1
  std::string device;         // "" : the plans' device
  int threads = 0;            // LibTorch intra-op threads; 0: usable cores
  int workers = -1;           // loader workers; < 0: the plans'
  bool augment = true;
  // Transfer: the encoder of another run (e.g. pre-trained), frozen at first, its own learning rate
  std::filesystem::path init_encoder;  // checkpoint whose encoder initialises ours
  // A candidate stage (configuration candidates > 0): the coarse model folder whose heatmap maxima
  // on every case are its hard negatives and its validation's candidates (WORK/runs/<configuration>/
  // candidates.json, made once)
  std::filesystem::path candidates_from;
  int freeze_encoder_epochs = 0;
  double encoder_lr_multiplier = 1.0;
  bool progress = true;
  std::shared_ptr<const Collective> collective;  // the ranks of a data-parallel run; null: one process
};

struct TrainResult {
  std::filesystem::path run_dir;  // fold folder
  int epochs_done = 0;
  double best_selection = 0;
  bool stopped_by_budget = false;
  double train_loss_last = 0;
};

// Throws Error: Usage (unknown model/configuration, bad fold, device without CUDA), InputNotFound
// (no cases, no checkpoint to resume), CorruptInput (unreadable checkpoint or case), NoDicom (an
// empty training set), Distributed (another rank stopped or did not answer).
TrainResult train(const TrainOptions& o);

}  // namespace aneura
