// Losses of the multi-task network (weights from plans):
//   vessel     CE + soft Dice over the 14 cowseg classes, only for samples with vessel labels
//   aneurysm   CE over background + 13 locations (weighted) + soft Dice of aneurysm (any location)
//              vs background over the samples holding one
//   labels     BCE with logits, positive weights per column
//   modality   CE, samples with an unknown modality (-1) ignored
// With a collective of several ranks (collective.hpp) each is this rank's share of the loss of the
// global batch: means divide by the global count, Dice sums are global.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "model/network.hpp"
#include "train/collective.hpp"

namespace aneura {

// Soft Dice loss (nnU-Net's batch Dice): 1 - mean over foreground classes of
// (2 sum p*y + eps) / (sum p + sum y + eps), sums over the batch and voxels; background (class 0)
// excluded. `probs` [N, K, ...] softmax output, `target` [N, ...] long.
torch::Tensor soft_dice_loss(const torch::Tensor& probs, const torch::Tensor& target, double eps = 1e-5,
                             const Collective& c = local_collective());

// CE + soft Dice on logits [N, K, ...] and target [N, ...].
torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target,
                                const Collective& c = local_collective());

// The aneurysm term: CE over the 14 classes, the 13 location classes weighted `foreground_weight`
// (an aneurysm sphere is ~0.1 % of a window), plus the soft Dice loss of the merged foreground
// (1 - p(background) against target > 0; absent locations do not dominate it) over the samples
// that hold an aneurysm voxel (0 when none does).
torch::Tensor aneurysm_loss(const torch::Tensor& logits, const torch::Tensor& target, double foreground_weight = 10,
                            const Collective& c = local_collective());

// The classification term alone (the 2.5D family): BCE with logits [N, 14] against labels [N, 14],
// positive weights per column; with several ranks, this rank's share of the global batch's mean.
torch::Tensor label_loss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& pos_weight,
                         const Collective& c = local_collective());

struct Targets {
  torch::Tensor vessel;       // [N, X, Y, Z] long
  torch::Tensor aneurysm;     // [N, X, Y, Z] long
  torch::Tensor labels;       // [N, 14] float
  torch::Tensor modality;     // [N] long, -1 = unknown
  torch::Tensor has_vessels;  // [N] bool
};

struct LossTerms {
  torch::Tensor total, vessel, aneurysm, labels, modality;  // scalars (0 when a term has no samples)
};

// `pos_weight` [14]: BCE positive weights (negatives / positives of the training set, capped).
LossTerms multitask_loss(const NetworkOutput& out, const Targets& t, const torch::Tensor& pos_weight,
                         const std::map<std::string, double>& weights, const Collective& c = local_collective());

}  // namespace aneura
