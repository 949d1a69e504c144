// What a training step needs from the other processes of a data-parallel run. One process: every
// operation is the identity (LocalCollective). Several (src/train/distributed.hpp): LibTorch's
// c10d over Gloo. The losses (losses.hpp) are written so that each rank's loss is its share of the
// loss of the global batch: a mean's numerator is local and its denominator global, a batch Dice's
// sums are global. Summing the ranks' gradients then gives the gradient of the global batch exactly
// (to the order of float additions), whatever the world size.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace aneura {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const { return 0; }
  virtual int world() const { return 1; }
  bool main() const { return rank() == 0; }
  // In place on every rank (CPU tensors; the same shapes and the same call order on every rank).
  virtual void sum(torch::Tensor&) const {}
  virtual void max(torch::Tensor&) const {}
  virtual void broadcast(torch::Tensor&) const {}  // rank 0's values
  virtual void barrier() const {}
  // Rank 0's values of `v` on every rank (decisions taken by rank 0's clock).
  std::vector<int64_t> from_rank0(std::vector<int64_t> v) const;
  // Sums each defined gradient over the ranks, in buckets (the same parameters on every rank), and
  // `also` (a small tensor, in place) with the first bucket.
  virtual void sum_gradients(const std::vector<torch::Tensor>& params, torch::Tensor also = {}) const;
  // Overlap with the backward pass (several ranks): hooks on `params` start each bucket's sum as
  // soon as the backward pass has produced every gradient in it (buckets in reverse parameter order,
  // launched in one fixed order on every rank); sum_gradients(params) then sends what is left and
  // waits. Call once before the first step. Without it, every bucket is sent after the backward pass.
  virtual void overlap_gradients(const std::vector<torch::Tensor>&) const {}

  // The global sum of `x` as part of the loss (differentiable): forward sums over the ranks; the
  // gradient of a term that every rank computes from the global sum and adds to its loss divided by
  // world() (share()) is then that of the global loss.
  torch::Tensor global_sum(const torch::Tensor& x) const;
  // A term computed from global sums, as one rank's share of the global loss.
  torch::Tensor share(const torch::Tensor& term) const { return world() == 1 ? term : term / world(); }
  // The global sum of a count or other non-differentiable denominator.
  torch::Tensor global_count(const torch::Tensor& x) const;
};

// The single-process collective.
const Collective& local_collective();

// One rank's contiguous share [begin, end) of `n` items split over `world` ranks (sizes differ by
// at most one): the global batch of a step, the validation cases.
std::pair<size_t, size_t> rank_share(size_t n, int rank, int world);

}  // namespace aneura
