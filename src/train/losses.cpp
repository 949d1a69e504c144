#include "train/losses.hpp"

namespace aneura {

torch::Tensor soft_dice_loss(const torch::Tensor& probs, const torch::Tensor& target, double eps) {
  const int64_t k = probs.size(1);
  // one-hot [N, K, ...] from the target
  auto onehot = torch::zeros_like(probs).scatter_(1, target.unsqueeze(1), 1.0);
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < probs.dim(); ++d) dims.push_back(d);
  const auto inter = (probs * onehot).sum(dims);  // [K]
  const auto denom = probs.sum(dims) + onehot.sum(dims);
  const auto dice = (2 * inter + eps) / (denom + eps);
  return 1 - dice.slice(0, 1, k).mean();
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target) {
  const auto ce = torch::nn::functional::cross_entropy(logits, target);
  return ce + soft_dice_loss(torch::softmax(logits, 1), target);
}

torch::Tensor aneurysm_loss(const torch::Tensor& logits, const torch::Tensor& target, double foreground_weight) {
  auto w = torch::full({logits.size(1)}, foreground_weight, logits.options());
  w[0] = 1.0;
  const auto ce =
      torch::nn::functional::cross_entropy(logits, target, torch::nn::functional::CrossEntropyFuncOptions().weight(w));
  // Dice of the merged foreground over the samples that hold an aneurysm only: over a sample
  // without one, the batch Dice would reach 1 only with a foreground sum below eps everywhere,
  // which pushes the whole heatmap to 0 (windows without an aneurysm are the most common).
  const auto has = (target > 0).flatten(1).any(1);
  if (!has.any().item<bool>()) return ce + logits.sum() * 0;
  const auto p = torch::softmax(logits.index({has}), 1);
  const auto two = torch::stack({p.select(1, 0), 1 - p.select(1, 0)}, 1);  // [M, 2, ...]
  return ce + soft_dice_loss(two, (target.index({has}) > 0).to(torch::kLong));
}

LossTerms multitask_loss(const NetworkOutput& out, const Targets& t, const torch::Tensor& pos_weight,
                         const std::map<std::string, double>& weights) {
  auto w = [&](const char* k) {
    auto it = weights.find(k);
    return it == weights.end() ? 0.0 : it->second;
  };
  // A term without samples is 0 but stays in the graph, so every head always gets a (zero)
  // gradient: the optimizer then steps the same parameters whatever happened before, which keeps
  // a resumed run identical to an uninterrupted one.
  LossTerms l;
  const auto hv = t.has_vessels.to(torch::kBool);
  l.vessel =
      hv.any().item<bool>() ? segmentation_loss(out.vessel.index({hv}), t.vessel.index({hv})) : out.vessel.sum() * 0;
  l.aneurysm = aneurysm_loss(out.aneurysm, t.aneurysm);
  l.labels = torch::nn::functional::binary_cross_entropy_with_logits(
      out.labels, t.labels, torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight));
  const auto known = t.modality >= 0;
  l.modality = known.any().item<bool>()
                   ? torch::nn::functional::cross_entropy(out.modality.index({known}), t.modality.index({known}))
                   : out.modality.sum() * 0;
  l.total =
      w("vessel") * l.vessel + w("aneurysm") * l.aneurysm + w("classification") * l.labels + w("modality") * l.modality;
  return l;
}

}  // namespace aneura
