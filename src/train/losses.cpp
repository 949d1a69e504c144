#include "train/losses.hpp"

namespace aneura {

namespace {

namespace F = torch::nn::functional;

// sum / the global count, or 0 (in the graph) when no rank has a sample.
torch::Tensor global_mean(const torch::Tensor& local_sum, double local_count, const torch::Tensor& anchor,
                          const Collective& c) {
  const double n = c.global_count(torch::tensor(local_count, torch::kDouble)).item<double>();
  return n > 0 ? local_sum / n : anchor.sum() * 0;
}

}  // namespace

torch::Tensor soft_dice_loss(const torch::Tensor& probs, const torch::Tensor& target, double eps, const Collective& c) {
  const int64_t k = probs.size(1);
  // one-hot [N, K, ...] from the target
  auto onehot = torch::zeros_like(probs).scatter_(1, target.unsqueeze(1), 1.0);
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < probs.dim(); ++d) dims.push_back(d);
  // [2K] sums over the batch and voxels (all ranks' batches)
  const auto sums = c.global_sum(torch::cat({(probs * onehot).sum(dims), probs.sum(dims) + onehot.sum(dims)}));
  const auto inter = sums.slice(0, 0, k), denom = sums.slice(0, k, 2 * k);
  const auto dice = (2 * inter + eps) / (denom + eps);
  return c.share(1 - dice.slice(0, 1, k).mean());
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target, const Collective& c) {
  const auto ce = F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  return global_mean(ce, static_cast<double>(target.numel()), logits, c) +
         soft_dice_loss(torch::softmax(logits, 1), target, 1e-5, c);
}

torch::Tensor aneurysm_loss(const torch::Tensor& logits, const torch::Tensor& target, double foreground_weight,
                            const Collective& c) {
  auto w = torch::full({logits.size(1)}, foreground_weight, logits.options());
  w[0] = 1.0;
  // the weighted mean: sum of w[y] * CE over sum of w[y]
  const auto ce = F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().weight(w).reduction(torch::kSum));
  const auto loss = global_mean(ce, w.index({target}).sum().item<double>(), logits, c);
  // Dice of the merged foreground over the samples that hold an aneurysm only: over a sample
  // without one, the batch Dice would reach 1 only with a foreground sum below eps everywhere,
  // which pushes the whole heatmap to 0 (windows without an aneurysm are the most common).
  const auto has = (target > 0).flatten(1).any(1);
  const double holding = has.sum().item<double>();
  if (c.global_count(torch::tensor(holding, torch::kDouble)).item<double>() == 0) return loss + logits.sum() * 0;
  const auto p = torch::softmax(logits.index({has}), 1);
  const auto two = torch::stack({p.select(1, 0), 1 - p.select(1, 0)}, 1);  // [M, 2, ...]
  return loss + soft_dice_loss(two, (target.index({has}) > 0).to(torch::kLong), 1e-5, c) + logits.sum() * 0;
}

LossTerms multitask_loss(const NetworkOutput& out, const Targets& t, const torch::Tensor& pos_weight,
                         const std::map<std::string, double>& weights, const Collective& c) {
  auto w = [&](const char* k) {
    auto it = weights.find(k);
    return it == weights.end() ? 0.0 : it->second;
  };
  // A term without samples is 0 but stays in the graph, so every head always gets a (zero)
  // gradient: the optimizer then steps the same parameters whatever happened before, which keeps
  // a resumed run identical to an uninterrupted one. Every rank makes the same collective calls
  // in the same order, whatever its own samples hold.
  LossTerms l;
  const auto hv = t.has_vessels.to(torch::kBool);
  const bool any_vessels = c.global_count(hv.sum().to(torch::kDouble)).item<double>() > 0;
  l.vessel = any_vessels ? segmentation_loss(out.vessel.index({hv}), t.vessel.index({hv}), c) + out.vessel.sum() * 0
                         : out.vessel.sum() * 0;
  l.aneurysm = aneurysm_loss(out.aneurysm, t.aneurysm, 10, c);
  const auto bce = F::binary_cross_entropy_with_logits(
      out.labels, t.labels, F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight).reduction(torch::kSum));
  l.labels = global_mean(bce, static_cast<double>(t.labels.numel()), out.labels, c);
  const auto known = t.modality >= 0;
  const auto mod_ce = F::cross_entropy(out.modality.index({known}), t.modality.index({known}),
                                       F::CrossEntropyFuncOptions().reduction(torch::kSum));
  l.modality = global_mean(mod_ce, known.sum().item<double>(), out.modality, c) + out.modality.sum() * 0;
  l.total =
      w("vessel") * l.vessel + w("aneurysm") * l.aneurysm + w("classification") * l.labels + w("modality") * l.modality;
  return l;
}

}  // namespace aneura
