#include "train/collective.hpp"

namespace aneura {

namespace {

// Forward: the sum over the ranks. Backward: the incoming gradient times the world size: every
// rank adds the same term / world() to its loss, so the global loss' gradient with respect to this
// rank's summand is the sum of the ranks' identical incoming gradients.
class GlobalSum : public torch::autograd::Function<GlobalSum> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const Collective* c) {
    ctx->saved_data["world"] = static_cast<int64_t>(c->world());
    torch::Tensor y = x.detach().clone().contiguous();
    c->sum(y);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    return {grad[0] * static_cast<double>(ctx->saved_data["world"].toInt()), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor Collective::global_sum(const torch::Tensor& x) const {
  if (world() == 1) return x;
  return GlobalSum::apply(x, this);
}

torch::Tensor Collective::global_count(const torch::Tensor& x) const {
  if (world() == 1) return x;
  torch::Tensor y = x.detach().to(torch::kCPU).clone().contiguous();
  sum(y);
  return y.to(x.device());
}

std::vector<int64_t> Collective::from_rank0(std::vector<int64_t> v) const {
  if (world() == 1) return v;
  torch::Tensor t = torch::tensor(v, torch::kLong);
  broadcast(t);
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

void Collective::sum_gradients(const std::vector<torch::Tensor>&, torch::Tensor) const {}

const Collective& local_collective() {
  static const Collective c;
  return c;
}

std::pair<size_t, size_t> rank_share(size_t n, int rank, int world) {
  const auto r = static_cast<size_t>(rank), w = static_cast<size_t>(std::max(1, world));
  return {n * r / w, n * (r + 1) / w};
}

}  // namespace aneura
