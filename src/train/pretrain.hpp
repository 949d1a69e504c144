// `aneura pretrain`: self-supervised pre-training of a plans configuration's network on every case
// of the cache, labelled or not (RSNA series without labels, BIDS/OpenMind NIfTI, DeepLesion), by
// masked image modelling (as SparK and MAE do in 3D). The training windows are those `train` cuts
// (the same input channels and augmentation); the image and blob channels are hidden in a random
// `mask_ratio` of cubes of `mask_block` voxels (the coordinate channels stay); the network's last
// decoder features and a 1x1x1 head reconstruct the first image channel, and the loss is the mean
// squared error over the hidden voxels only. Dense masking: the hidden cubes are zeros in the input.
//   WORK/pretrain/<configuration>/last.pt     every epoch, atomically: model (the network: its
//                                             encoder feeds `train --init-encoder`), head, optimizer, meta
//   WORK/pretrain/<configuration>/log.jsonl   one line per epoch
//   WORK/pretrain/<configuration>/reconstruction.png   every epoch: a window of the first case as
//                                             the network saw it (hidden cubes outlined), its
//                                             reconstruction and the truth, tri-planar
// A candidate stage that finds its own candidates (candidate_source "dots") pre-trains near the
// arteries: the dot filter's candidates of every case are found once into
//   WORK/pretrain/<configuration>/candidates.json   (as train's; remade for another filter, count or cases)
// and every window is centred on one of them (as its training windows are), cut from crops around
// them when the cases do not fit in memory. Cases of a modality the configuration does not learn
// from are left out (a series without a train.csv row has no modality and stays).
// Random numbers come from (seed, epoch, position) only, so --resume continues exactly.
// Data-parallel as `train` (trainer.hpp): the plans' batch is global, each rank makes its share of
// it (the same samples and masks at the same global positions), the loss is its share of the
// global batch's (its squared errors over the global count of hidden voxels), gradients are summed,
// rank 0 decides the schedule and writes the run folder.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "train/collective.hpp"
#include "train/data.hpp"

namespace aneura {

struct PretrainOptions {
  std::filesystem::path work;
  std::filesystem::path plans_file;  // default WORK/plans.json
  std::string configuration;         // default: the plans' default
  uint64_t seed = 42;
  bool resume = false;
  int epochs = 0;             // 0: the plans' epochs
  double time_budget_s = -1;  // < 0: the plans' budget; 0: none
  int stop_after_epochs = 0;  // > 0: stop after this many epochs of this invocation
  int steps_per_epoch = 0;    // 0: cases / batch, at least 1
  double mask_ratio = 0.6;    // share of the cubes hidden
  int mask_block = 0;         // cube edge in voxels; 0: an eighth of the patch, at least 2
  std::string device;         // "": the plans'
  int threads = 0, workers = -1;
  bool progress = true;
  std::shared_ptr<const Collective> collective;  // the ranks of a data-parallel run; null: one process
};

struct PretrainResult {
  std::filesystem::path run_dir;
  int epochs_done = 0, cases = 0;
  double first_loss = 0, last_loss = 0;  // mean masked-voxel MSE of the first and last epoch of this invocation
  bool stopped_by_budget = false;
};

// The augmentation of the pre-training windows: train's, but no window is steered to a labelled
// aneurysm, and a dot candidate stage's are all centred on candidates.
AugmentOptions pretrain_augmentation(const Configuration& cfg);

// Throws Error: Usage (unknown configuration, device without CUDA, a bad mask), InputNotFound (no
// case, no checkpoint to resume), CorruptInput (unreadable case or checkpoint, cases with other
// channel counts).
PretrainResult pretrain(const PretrainOptions& o);

// The hidden voxels of one input [C, X, Y, Z] (`shape`): [1, X, Y, Z] floats, 1 in round(ratio *
// cubes) cubes of `block` voxels chosen at random from `seed`, 0 elsewhere.
torch::Tensor cube_mask(const torch::IntArrayRef& shape, double ratio, int block, uint64_t seed);

// The voxels whose reconstruction counts in the loss: hidden (`hidden` [N, 1, X, Y, Z], 1) and not
// removed by a defacing (`removed` [N, X, Y, Z]: the batch's first label map, non-zero there, as
// CaseMaps::Deface loads it). Float [N, 1, X, Y, Z], 0 or 1.
torch::Tensor counted_voxels(const torch::Tensor& hidden, const torch::Tensor& removed);

}  // namespace aneura
