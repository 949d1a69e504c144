#include "train/losses.hpp"

namespace aneura {

namespace {

namespace F = torch::nn::functional;

// `local_sum` / the global `count`, or 0 (in the graph) when no rank has a sample.
torch::Tensor over(const torch::Tensor& local_sum, double count, const torch::Tensor& anchor) {
  return count > 0 ? local_sum / count : anchor.sum() * 0;
}

// A batch Dice's local sums [2K]: per class, sum p*y and sum p + sum y over the batch and voxels.
torch::Tensor dice_sums(const torch::Tensor& probs, const torch::Tensor& target) {
  auto onehot = torch::zeros_like(probs).scatter_(1, target.unsqueeze(1), 1.0);
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < probs.dim(); ++d) dims.push_back(d);
  return torch::cat({(probs * onehot).sum(dims), probs.sum(dims) + onehot.sum(dims)});
}

// 1 - the mean foreground Dice from (global) sums [2K].
torch::Tensor dice_loss_of(const torch::Tensor& sums, double eps) {
  const int64_t k = sums.size(0) / 2;
  const auto dice = (2 * sums.slice(0, 0, k) + eps) / (sums.slice(0, k, 2 * k) + eps);
  return 1 - dice.slice(0, 1, k).mean();
}

torch::Tensor class_weights(const torch::Tensor& logits, double foreground_weight) {
  auto w = torch::full({logits.size(1)}, foreground_weight, logits.options());
  w[0] = 1.0;
  return w;
}

// The aneurysm term's Dice input: 1 - p(background) against target > 0, over the samples that hold
// an aneurysm voxel (an empty batch when none does).
std::pair<torch::Tensor, torch::Tensor> merged_foreground(const torch::Tensor& logits, const torch::Tensor& target) {
  const auto has = (target > 0).flatten(1).any(1);
  const auto p = torch::softmax(logits.index({has}), 1);
  return {torch::stack({p.select(1, 0), 1 - p.select(1, 0)}, 1), (target.index({has}) > 0).to(torch::kLong)};
}

// Sums of `parts` over the ranks in one collective (differentiable; double precision for counts).
std::vector<torch::Tensor> global_sums(const std::vector<torch::Tensor>& parts, const Collective& c) {
  std::vector<torch::Tensor> flat;
  for (const auto& p : parts) flat.push_back(p.reshape({-1}).to(torch::kDouble));
  const auto all = c.global_sum(torch::cat(flat));
  std::vector<torch::Tensor> out;
  int64_t off = 0;
  for (const auto& p : parts) {
    out.push_back(all.slice(0, off, off + p.numel()).to(p.scalar_type()));
    off += p.numel();
  }
  return out;
}

}  // namespace

torch::Tensor soft_dice_loss(const torch::Tensor& probs, const torch::Tensor& target, double eps, const Collective& c) {
  return c.share(dice_loss_of(c.global_sum(dice_sums(probs, target)), eps));
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target, const Collective& c) {
  const auto ce = F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  const auto probs = torch::softmax(logits, 1);
  const auto g = global_sums({torch::tensor({static_cast<double>(target.numel())}), dice_sums(probs, target)}, c);
  return over(ce, g[0].item<double>(), logits) + c.share(dice_loss_of(g[1], 1e-5));
}

torch::Tensor aneurysm_loss(const torch::Tensor& logits, const torch::Tensor& target, double foreground_weight,
                            const Collective& c) {
  const auto w = class_weights(logits, foreground_weight);
  // the weighted mean: sum of w[y] * CE over sum of w[y]
  const auto ce = F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().weight(w).reduction(torch::kSum));
  const auto [two, fg] = merged_foreground(logits, target);
  const auto counts =
      torch::tensor(std::vector<double>{w.index({target}).sum().item<double>(), static_cast<double>(two.size(0))})
          .to(logits.device());
  const auto g = global_sums({counts, dice_sums(two, fg)}, c);
  const auto loss = over(ce, g[0][0].item<double>(), logits) + logits.sum() * 0;
  // Dice of the merged foreground over the samples that hold an aneurysm only: over a sample
  // without one, the batch Dice would reach 1 only with a foreground sum below eps everywhere,
  // which pushes the whole heatmap to 0 (windows without an aneurysm are the most common).
  return g[0][1].item<double>() > 0 ? loss + c.share(dice_loss_of(g[1], 1e-5)) : loss;
}

LossTerms multitask_loss(const NetworkOutput& out, const Targets& t, const torch::Tensor& pos_weight,
                         const std::map<std::string, double>& weights, const Collective& c) {
  auto w = [&](const char* k) {
    auto it = weights.find(k);
    return it == weights.end() ? 0.0 : it->second;
  };
  // A term without samples is 0 but stays in the graph, so every head always gets a (zero)
  // gradient: the optimizer then steps the same parameters whatever happened before, which keeps
  // a resumed run identical to an uninterrupted one. One collective brings every global count and
  // Dice sum, whatever this rank's samples hold.
  const auto hv = t.has_vessels.to(torch::kBool);
  const auto known = t.modality >= 0;
  const auto aw = class_weights(out.aneurysm, 10);
  const auto v_logits = out.vessel.index({hv});
  const auto v_target = t.vessel.index({hv});
  const auto [two, fg] = merged_foreground(out.aneurysm, t.aneurysm);
  // counts: vessel voxels, aneurysm CE weights, samples holding an aneurysm, labels, known modalities
  const auto counts =
      torch::tensor(std::vector<double>{static_cast<double>(v_target.numel()),
                                        aw.index({t.aneurysm}).sum().item<double>(), static_cast<double>(two.size(0)),
                                        static_cast<double>(t.labels.numel()),
                                        static_cast<double>(known.sum().item<int64_t>())})
          .to(out.aneurysm.device());
  const auto g = global_sums({counts, dice_sums(torch::softmax(v_logits, 1), v_target), dice_sums(two, fg)}, c);
  const auto n = g[0].cpu();
  const auto count = [&](int i) { return n[i].item<double>(); };
  LossTerms l;
  l.vessel = out.vessel.sum() * 0;
  if (count(0) > 0) {
    const auto ce = F::cross_entropy(v_logits, v_target, F::CrossEntropyFuncOptions().reduction(torch::kSum));
    l.vessel = l.vessel + over(ce, count(0), out.vessel) + c.share(dice_loss_of(g[1], 1e-5));
  }
  const auto a_ce =
      F::cross_entropy(out.aneurysm, t.aneurysm, F::CrossEntropyFuncOptions().weight(aw).reduction(torch::kSum));
  l.aneurysm = over(a_ce, count(1), out.aneurysm) + out.aneurysm.sum() * 0;
  if (count(2) > 0) l.aneurysm = l.aneurysm + c.share(dice_loss_of(g[2], 1e-5));
  const auto bce = F::binary_cross_entropy_with_logits(
      out.labels, t.labels, F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight).reduction(torch::kSum));
  l.labels = over(bce, count(3), out.labels);
  const auto mod_ce = F::cross_entropy(out.modality.index({known}), t.modality.index({known}),
                                       F::CrossEntropyFuncOptions().reduction(torch::kSum));
  l.modality = over(mod_ce, count(4), out.modality) + out.modality.sum() * 0;
  l.total =
      w("vessel") * l.vessel + w("aneurysm") * l.aneurysm + w("classification") * l.labels + w("modality") * l.modality;
  return l;
}

}  // namespace aneura
