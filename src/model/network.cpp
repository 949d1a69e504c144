#include "model/network.hpp"

#include <dlfcn.h>

#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace aneura {

namespace nn = torch::nn;

ResidualBlockImpl::ResidualBlockImpl(int in, int out, int stride) {
  conv1 = register_module("conv1", nn::Conv3d(nn::Conv3dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
  norm1 = register_module("norm1", nn::InstanceNorm3d(nn::InstanceNorm3dOptions(out).affine(true)));
  conv2 = register_module("conv2", nn::Conv3d(nn::Conv3dOptions(out, out, 3).padding(1).bias(false)));
  norm2 = register_module("norm2", nn::InstanceNorm3d(nn::InstanceNorm3dOptions(out).affine(true)));
  if (in != out || stride != 1) {
    skip = register_module("skip", nn::Conv3d(nn::Conv3dOptions(in, out, 1).stride(stride).bias(false)));
    skip_norm = register_module("skip_norm", nn::InstanceNorm3d(nn::InstanceNorm3dOptions(out).affine(true)));
  }
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  auto y = torch::leaky_relu(norm1(conv1(x)), 0.01);
  y = norm2(conv2(y));
  const auto s = skip ? skip_norm(skip(x)) : x;
  return torch::leaky_relu(y + s, 0.01);
}

namespace {

// The reentrant checkpoint (torch.utils.checkpoint's original form): forward without a graph;
// backward runs the block again with one and back-propagates through it. `anchor` is an input that
// requires a gradient so that the backward runs even when x does not (the first stage's image).
class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& anchor, ResidualBlockImpl* block) {
    ctx->save_for_backward({x});
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);
    ctx->saved_data["x_grad"] = x.requires_grad();
    (void)anchor;
    torch::NoGradGuard ng;
    return block->forward(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto* block = reinterpret_cast<ResidualBlockImpl*>(ctx->saved_data["block"].toInt());
    torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(ctx->saved_data["x_grad"].toBool());
    torch::Tensor y;
    {
      torch::AutoGradMode on(true);
      y = block->forward(x);
    }
    torch::autograd::backward({y}, {grad[0]});
    return {x.requires_grad() ? x.grad() : torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpointed(ResidualBlockImpl& block, const torch::Tensor& x) {
  bool params = false;
  for (const auto& p : block.parameters()) params = params || p.requires_grad();
  if (!torch::GradMode::is_enabled() || (!params && !x.requires_grad())) return block.forward(x);
  const auto anchor = torch::zeros({1}, x.options()).requires_grad_();
  return CheckpointFunction::apply(x, anchor, &block);
}

MultiTaskUNetImpl::MultiTaskUNetImpl(const NetworkOptions& o) : opts(o) {
  auto ch = [&](int s) { return std::min(o.base_channels << s, o.max_channels); };
  encoder = register_module("encoder", nn::ModuleList());
  for (int s = 0; s < o.stages; ++s)
    encoder->push_back(ResidualBlock(s == 0 ? o.in_channels : ch(s - 1), ch(s), s == 0 ? 1 : 2));
  up = register_module("up", nn::ModuleList());
  decoder = register_module("decoder", nn::ModuleList());
  for (int s = o.stages - 1; s > 0; --s) {
    up->push_back(nn::ConvTranspose3d(nn::ConvTranspose3dOptions(ch(s), ch(s - 1), 2).stride(2).bias(false)));
    decoder->push_back(ResidualBlock(2 * ch(s - 1), ch(s - 1), 1));
  }
  const int c0 = ch(0);
  vessel_head = register_module("vessel_head", nn::Conv3d(nn::Conv3dOptions(c0, o.vessel_classes, 1)));
  aneurysm_head = register_module("aneurysm_head", nn::Conv3d(nn::Conv3dOptions(c0, o.labels, 1)));
  key = register_module("key", nn::Conv3d(nn::Conv3dOptions(c0, c0, 1)));
  queries = register_parameter("queries", torch::randn({o.labels, c0}) * 0.1);
  label_out = register_module("label_out", nn::Linear(nn::LinearOptions(c0, 1).bias(false)));
  label_bias = register_parameter("label_bias", torch::zeros({o.labels}));
  evidence_weight = register_parameter("evidence_weight", torch::zeros({o.labels}));
  modality_head = register_module("modality_head", nn::Linear(ch(o.stages - 1), o.modalities));
  global_head = register_module("global_head", nn::Linear(c0 + ch(o.stages - 1), o.labels));
}

std::pair<torch::Tensor, torch::Tensor> MultiTaskUNetImpl::trunk(const torch::Tensor& x) {
  std::vector<torch::Tensor> skips;
  torch::Tensor h = x;
  for (size_t s = 0; s < encoder->size(); ++s) {
    auto* block = encoder[s]->as<ResidualBlock>();
    h = opts.checkpoint_blocks && is_training() ? checkpointed(*block, h) : block->forward(h);
    skips.push_back(h);
  }
  const torch::Tensor deep = h;
  for (size_t d = 0; d < decoder->size(); ++d) {
    h = up[d]->as<nn::ConvTranspose3d>()->forward(h);
    auto* dblock = decoder[d]->as<ResidualBlock>();
    const auto in = torch::cat({h, skips[skips.size() - 2 - d]}, 1);
    h = opts.checkpoint_blocks && is_training() ? checkpointed(*dblock, in) : dblock->forward(in);
  }
  return {deep, h};
}

torch::Tensor MultiTaskUNetImpl::features(const torch::Tensor& x) { return trunk(x).second; }

NetworkOutput MultiTaskUNetImpl::forward(const torch::Tensor& x) {
  const auto [deep, h] = trunk(x);
  NetworkOutput out;
  out.modality = modality_head(deep.mean({2, 3, 4}));
  const auto deep_max = deep.amax({2, 3, 4});
  out.vessel = vessel_head(h);
  out.aneurysm = aneurysm_head(h);
  // Attention pooling: per label, softmax over voxels of <query, key(voxel)>, pooled features.
  const auto k = key(h).flatten(2);                                                                      // [N, C, V]
  const auto attn = torch::softmax(torch::matmul(queries, k) / std::sqrt(double(queries.size(1))), -1);  // [N, L, V]
  const auto pooled = torch::matmul(attn, h.flatten(2).transpose(1, 2));                                 // [N, L, C]
  // Instance-normalised features have the same mean in every case, so a near-uniform attention
  // says little early in training: global max pooling of the last decoder and the bottleneck
  // features gives every label a case-specific term from the start.
  const auto global = global_head(torch::cat({h.amax({2, 3, 4}), deep_max}, 1));  // [N, L]
  out.labels = label_out(pooled).squeeze(-1) + label_bias + global + evidence_weight * heatmap_evidence(out.aneurysm);
  return out;
}

torch::Tensor heatmap_evidence(const torch::Tensor& aneurysm_logits) {
  // Log-odds from the logits directly (no clamping, so the gradient never vanishes):
  //   location c: l_c - logsumexp_{k != c} l_k;   any: logsumexp_{k >= 1} l_k - l_0,
  // at the voxel where it is largest. The log-odds are monotone in the class probability, so that
  // voxel is found without gradient on the softmax, and the log-odds are computed at 14 voxels per
  // sample instead of at all of them (as fast as the rest of the network, and the same values and
  // gradients: the maximum's gradient flows to its voxel only).
  const auto l = aneurysm_logits.flatten(2);  // [N, K, V]
  const int64_t n = l.size(0), k = l.size(1);
  torch::Tensor where;  // [N, K]: the voxel of each column's maximum
  {
    torch::NoGradGuard no_grad;
    const auto lp = torch::log_softmax(l, 1);
    where = torch::cat({lp.slice(1, 1, k).argmax(-1), lp.select(1, 0).argmin(-1).unsqueeze(1)}, 1);
  }
  const auto g = l.gather(2, where.unsqueeze(1).expand({n, k, k}));  // [N, class, column]
  // own[k][c] = (k == c + 1): the class of location column c
  const auto own = torch::eye(k, torch::TensorOptions().dtype(torch::kBool).device(l.device())).slice(1, 1, k);
  const auto at_loc = g.slice(2, 0, k - 1);  // [N, K, K-1]
  const auto loc = g.diagonal(-1, 1, 2) -    // g[n, c+1, c]
                   torch::logsumexp(at_loc.masked_fill(own.unsqueeze(0), -INFINITY), 1);
  const auto at_any = g.select(2, k - 1);  // [N, K]
  const auto any = torch::logsumexp(at_any.slice(1, 1, k), 1) - at_any.select(1, 0);
  return torch::cat({loc, any.unsqueeze(1)}, 1);  // [N, 14]
}

Autocast::Autocast(const torch::Device& device, bool on) : on_(on), cuda_(device.is_cuda()) {
  if (!on_) return;
#if TORCH_VERSION_MAJOR >= 2
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, true);
#else
  if (cuda_) {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
#endif
}

Autocast::~Autocast() {
  if (!on_) return;
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_enabled(cuda_ ? at::kCUDA : at::kCPU, false);
#else
  if (cuda_)
    at::autocast::set_enabled(false);
  else
    at::autocast::set_cpu_enabled(false);
#endif
  at::autocast::clear_cache();
}

std::vector<torch::Tensor> encoder_parameters(MultiTaskUNet& net) { return net->encoder->parameters(); }

std::vector<torch::Tensor> decoder_and_head_parameters(MultiTaskUNet& net) {
  std::set<torch::TensorImpl*> enc;
  for (const auto& p : net->encoder->parameters()) enc.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> rest;
  for (const auto& p : net->parameters())
    if (!enc.count(p.unsafeGetTensorImpl())) rest.push_back(p);
  return rest;
}

void set_cpu_threads(int threads) {
  torch::set_num_threads(std::max(1, threads));
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
}

}  // namespace aneura
