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

// A loss term in two halves around the one collective of a step: what this rank sums (the
// numerator of its mean, the counts that divide, a batch Dice's sums), then the term from the
// global sums.
struct LocalSums {
  torch::Tensor numerator;     // this rank's sum of the per-element losses
  std::vector<double> counts;  // [0]: the mean's denominator; more when the term needs them
  torch::Tensor dice;          // [2K] dice_sums, or undefined
};
struct GlobalSums {
  std::vector<double> counts;
  torch::Tensor dice;
};

// The global sums of every term's counts and Dice sums, in one collective (differentiable, in
// double precision for the counts).
std::vector<GlobalSums> global_sums(const std::vector<LocalSums>& terms, const Collective& c) {
  const auto device = terms.front().numerator.device();
  std::vector<torch::Tensor> flat;
  for (const auto& t : terms) {
    flat.push_back(torch::tensor(t.counts, torch::kDouble).to(device));
    if (t.dice.defined()) flat.push_back(t.dice.to(torch::kDouble));
  }
  const auto all = c.global_sum(torch::cat(flat));
  const auto host = all.detach().cpu();
  std::vector<GlobalSums> out;
  int64_t off = 0;
  for (const auto& t : terms) {
    GlobalSums g;
    for (size_t i = 0; i < t.counts.size(); ++i) g.counts.push_back(host[off++].item<double>());
    if (t.dice.defined()) {
      g.dice = all.slice(0, off, off + t.dice.numel()).to(t.dice.scalar_type());
      off += t.dice.numel();
    }
    out.push_back(g);
  }
  return out;
}

// CE + soft Dice: counts {voxels}.
LocalSums segmentation_sums(const torch::Tensor& logits, const torch::Tensor& target) {
  return {F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().reduction(torch::kSum)),
          {static_cast<double>(target.numel())},
          dice_sums(torch::softmax(logits, 1), target)};
}
torch::Tensor segmentation_term(const LocalSums& l, const GlobalSums& g, const torch::Tensor& anchor,
                                const Collective& c) {
  return over(l.numerator, g.counts[0], anchor) + c.share(dice_loss_of(g.dice, 1e-5));
}

// The weighted mean of the CE (sum of w[y] * CE over sum of w[y]) + the merged foreground's Dice:
// counts {sum of w[y], samples holding an aneurysm}.
LocalSums aneurysm_sums(const torch::Tensor& logits, const torch::Tensor& target, const torch::Tensor& w) {
  const auto [two, fg] = merged_foreground(logits, target);
  return {F::cross_entropy(logits, target, F::CrossEntropyFuncOptions().weight(w).reduction(torch::kSum)),
          {w.index({target}).sum().item<double>(), static_cast<double>(two.size(0))},
          dice_sums(two, fg)};
}
// The labels' BCE with logits, positive weights per column: counts {elements}.
LocalSums label_sums(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& pos_weight) {
  return {
      F::binary_cross_entropy_with_logits(
          logits, labels, F::BinaryCrossEntropyWithLogitsFuncOptions().pos_weight(pos_weight).reduction(torch::kSum)),
      {static_cast<double>(labels.numel())},
      {}};
}

torch::Tensor aneurysm_term(const LocalSums& l, const GlobalSums& g, const torch::Tensor& anchor, const Collective& c) {
  const auto loss = over(l.numerator, g.counts[0], anchor) + anchor.sum() * 0;
  // Dice of the merged foreground over the samples that hold an aneurysm only: over a sample
  // without one, the batch Dice would reach 1 only with a foreground sum below eps everywhere,
  // which pushes the whole heatmap to 0 (windows without an aneurysm are the most common).
  return g.counts[1] > 0 ? loss + c.share(dice_loss_of(g.dice, 1e-5)) : loss;
}

}  // namespace

torch::Tensor soft_dice_loss(const torch::Tensor& probs, const torch::Tensor& target, double eps, const Collective& c) {
  return c.share(dice_loss_of(c.global_sum(dice_sums(probs, target)), eps));
}

torch::Tensor segmentation_loss(const torch::Tensor& logits, const torch::Tensor& target, const Collective& c) {
  const auto l = segmentation_sums(logits, target);
  return segmentation_term(l, global_sums({l}, c)[0], logits, c);
}

torch::Tensor aneurysm_loss(const torch::Tensor& logits, const torch::Tensor& target, double foreground_weight,
                            const Collective& c) {
  const auto l = aneurysm_sums(logits, target, class_weights(logits, foreground_weight));
  return aneurysm_term(l, global_sums({l}, c)[0], logits, c);
}

torch::Tensor label_loss(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& pos_weight,
                         const Collective& c) {
  const auto l = label_sums(logits, labels, pos_weight);
  return over(l.numerator, global_sums({l}, c)[0].counts[0], logits);
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
  const std::vector<LocalSums> local = {segmentation_sums(out.vessel.index({hv}), t.vessel.index({hv})),
                                        aneurysm_sums(out.aneurysm, t.aneurysm, class_weights(out.aneurysm, 10)),
                                        label_sums(out.labels, t.labels, pos_weight),
                                        {F::cross_entropy(out.modality.index({known}), t.modality.index({known}),
                                                          F::CrossEntropyFuncOptions().reduction(torch::kSum)),
                                         {static_cast<double>(known.sum().item<int64_t>())},
                                         {}}};
  const auto g = global_sums(local, c);
  LossTerms l;
  l.vessel = out.vessel.sum() * 0;
  if (g[0].counts[0] > 0) l.vessel = l.vessel + segmentation_term(local[0], g[0], out.vessel, c);
  l.aneurysm = aneurysm_term(local[1], g[1], out.aneurysm, c);
  l.labels = over(local[2].numerator, g[2].counts[0], out.labels);
  l.modality = over(local[3].numerator, g[3].counts[0], out.modality) + out.modality.sum() * 0;
  l.total =
      w("vessel") * l.vessel + w("aneurysm") * l.aneurysm + w("classification") * l.labels + w("modality") * l.modality;
  return l;
}

}  // namespace aneura
