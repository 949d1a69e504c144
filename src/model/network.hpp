// The multi-task network (after the 2nd-place system of the RSNA 2025 Intracranial Aneurysm Detection challenge): a
// residual-encoder 3D U-Net whose depth and width come from the plans, with
//   vessel head     background + 13 territories (cowseg values 0..13), per voxel
//   aneurysm head   background + 13 locations per voxel (spheres around localizer points, each
//                   labelled with its location), so the heatmap says where and which
//   classification  14 logits (13 locations + "Aneurysm Present"): attention pooling over the
//                   last decoder features (one learned query per label), plus a linear term on
//                   global max-pooled decoder and bottleneck features, plus, with a learned
//                   weight per label, the evidence of the aneurysm heatmap: logit of the largest
//                   voxel probability of that location (of any aneurysm for "Present")
//   modality head   4 logits (CTA, MRA, MRI T2, MRI T1post) from the pooled bottleneck
// Input [N, C, X, Y, Z] (RAS voxel order, as the cases are stored).
#pragma once
#include <torch/torch.h>

namespace aneura {

struct NetworkOptions {
  int in_channels = 1;
  int stages = 4;
  int base_channels = 8, max_channels = 64;
  int vessel_classes = 14, labels = 14, modalities = 4;  // the aneurysm head has `labels` classes
  // Gradient checkpointing: in training, each residual block (encoder and decoder) keeps only its
  // input and output; its inner activations are recomputed in the backward pass (as
  // torch.utils.checkpoint). CPU, 64^3 x 2, 5 stages of base 16: peak memory -27 %, time +7 %.
  bool checkpoint_blocks = false;
};

// Conv3d 3x3x3 -> InstanceNorm (affine) -> LeakyReLU, twice, with a residual connection (1x1x1
// projection when the shape changes).
struct ResidualBlockImpl : torch::nn::Module {
  ResidualBlockImpl(int in, int out, int stride);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv3d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  torch::nn::InstanceNorm3d norm1{nullptr}, norm2{nullptr}, skip_norm{nullptr};
};
TORCH_MODULE(ResidualBlock);

struct NetworkOutput {
  torch::Tensor vessel;    // [N, 14, X, Y, Z]
  torch::Tensor aneurysm;  // [N, 14, X, Y, Z]: background + 13 locations
  torch::Tensor labels;    // [N, 14]
  torch::Tensor modality;  // [N, 4]
};

struct MultiTaskUNetImpl : torch::nn::Module {
  explicit MultiTaskUNetImpl(const NetworkOptions& o);
  NetworkOutput forward(const torch::Tensor& x);
  // The last decoder features [N, base_channels, X, Y, Z] (what the heads see; pre-training adds its own head).
  torch::Tensor features(const torch::Tensor& x);
  // Encoder and decoder: the bottleneck features and the last decoder features.
  std::pair<torch::Tensor, torch::Tensor> trunk(const torch::Tensor& x);

  NetworkOptions opts;
  torch::nn::ModuleList encoder{nullptr};  // ResidualBlock per stage
  torch::nn::ModuleList up{nullptr};       // ConvTranspose3d per decoder step
  torch::nn::ModuleList decoder{nullptr};  // ResidualBlock per decoder step
  torch::nn::Conv3d vessel_head{nullptr}, aneurysm_head{nullptr}, key{nullptr};
  torch::Tensor queries;                 // [labels, key channels]
  torch::nn::Linear label_out{nullptr};  // applied per query (shared weights + per-label bias)
  torch::Tensor label_bias;              // [labels]
  torch::Tensor evidence_weight;         // [labels], weight of the heatmap evidence (learned from 0)
  torch::nn::Linear modality_head{nullptr};
  torch::nn::Linear global_head{nullptr};  // labels from global max pooling (last decoder + bottleneck)
};
TORCH_MODULE(MultiTaskUNet);

// bf16 autocast on `device` (CUDA or CPU) for the guard's scope when `on` (the plans'
// mixed_precision): convolutions and matrix products in bf16, weights and reductions in float. On
// a CPU with AMX or AVX512-BF16 (oneDNN uses them) cpu_dots' network takes about half the time
// per training step and per prediction (bench_network), and its training ~1.5x the windows/s.
// The API differs between LibTorch 1.x and 2.x, both are covered.
class Autocast {
 public:
  Autocast(const torch::Device& device, bool on);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool on_, cuda_;
};

// `block(x)` keeping only x and the result for the backward pass, which runs the block again (with
// gradients) to get the gradients of x and of the block's parameters. The same values and gradients
// as block(x). Without any gradient to compute it is block(x).
torch::Tensor checkpointed(ResidualBlockImpl& block, const torch::Tensor& x);

// Heatmap evidence per label from aneurysm logits [N, 14, ...]: logit of the largest voxel
// probability of each location (classes 1..13) and of "any aneurysm" (1 - background) -> [N, 14].
torch::Tensor heatmap_evidence(const torch::Tensor& aneurysm_logits);

// LibTorch's intra-op threads for CPU work. Debian's LibTorch runs its convolutions through
// OpenBLAS, whose own thread pool then competes with LibTorch's threads for the same cores: it is
// set to one thread (when OpenBLAS is loaded), which made a 32^3 x 4 CPU training step ~30 % faster.
void set_cpu_threads(int threads);

// Parameters of the encoder (for transfer: freezing and differential learning rates).
std::vector<torch::Tensor> encoder_parameters(MultiTaskUNet& net);
std::vector<torch::Tensor> decoder_and_head_parameters(MultiTaskUNet& net);

}  // namespace aneura
