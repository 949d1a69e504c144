// The network alone, on CPU or CUDA: prediction (a batch of inputs, no gradient) and one training
// step (forward, backward, AdamW) of the plans' MultiTaskUNet at a given input size, in float32 or
// with bf16 autocast (CUDA or CPU). It depends on src/model and LibTorch only, so it also builds where
// the rest of aneura cannot (e.g. against the CUDA LibTorch of a PyTorch install):
//   g++ -O2 -std=c++17 bench/bench_network.cpp src/model/network.cpp -Isrc -I$T/include
//       -I$T/include/torch/csrc/api/include -L$T/lib -ltorch -ltorch_cpu -ltorch_cuda -lc10
//       -Wl,-rpath,$T/lib -o bench_network          (one command line; T = the LibTorch folder)
// Usage: bench_network DEVICE SIZE BATCH BASE STAGES IN_CHANNELS [bf16] [ckpt] [cl]
//   e.g. cuda 128 2 32 5 4 bf16 (gpu_full: 128^3-ish ROI at 1 mm) or cpu 32 4 8 4 6 (cpu_demo windows);
//   ckpt: gradient checkpointing of the U-Net's blocks; cl: weights and input channels-last (3D).
//   Prints the process' peak memory (CPU: its resident set, which holds the activations of the
//   training step).
#include <torch/torch.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "model/network.hpp"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: bench_network DEVICE SIZE BATCH BASE STAGES IN_CHANNELS [bf16]\n");
    return 2;
  }
  const std::string dev_name = argv[1];
  const int size = std::atoi(argv[2]), batch = std::atoi(argv[3]);
  aneura::NetworkOptions o;
  o.base_channels = std::atoi(argv[4]);
  o.stages = std::atoi(argv[5]);
  o.in_channels = std::atoi(argv[6]);
  o.max_channels = o.base_channels >= 32 ? 320 : 64;
  bool bf16 = false, channels_last = false;
  for (int a = 7; a < argc; ++a) {
    bf16 = bf16 || std::string(argv[a]) == "bf16";
    channels_last = channels_last || std::string(argv[a]) == "cl";
    o.checkpoint_blocks = o.checkpoint_blocks || std::string(argv[a]) == "ckpt";
  }
  if (dev_name == "cuda" && !torch::cuda::is_available()) {
    std::fprintf(stderr, "no CUDA device\n");
    return 2;
  }
  const torch::Device dev(dev_name == "cuda" ? torch::kCUDA : torch::kCPU);
  torch::manual_seed(0);
  aneura::MultiTaskUNet net(o);
  net->to(dev);
  if (channels_last)
    for (auto& p : net->parameters())
      if (p.dim() == 5) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast3d));
  auto opt = torch::optim::AdamW(net->parameters(), torch::optim::AdamWOptions(1e-4));
  auto x = torch::randn({batch, o.in_channels, size, size, size}, torch::TensorOptions().device(dev));
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast3d);
  auto target = torch::zeros({batch, size, size, size}, torch::TensorOptions().dtype(torch::kLong).device(dev));
  auto step = [&] {
    opt.zero_grad();
    aneura::NetworkOutput out;
    {
      aneura::Autocast ac(dev, bf16);
      out = net->forward(x);
    }
    const auto loss = torch::nn::functional::cross_entropy(out.aneurysm.to(torch::kFloat), target) +
                      out.labels.to(torch::kFloat).pow(2).mean() +
                      torch::nn::functional::cross_entropy(out.vessel.to(torch::kFloat), target);
    loss.backward();
    opt.step();
  };
  auto infer = [&] {
    torch::NoGradGuard ng;
    aneura::Autocast ac(dev, bf16);
    auto out = net->forward(x);
    (void)out;
  };
  for (int i = 0; i < 2; ++i) step(), infer();  // warm-up (cuDNN autotuning, allocations)
  sync(dev);
  const int n = dev.is_cuda() ? 10 : 3;
  double t = now();
  for (int i = 0; i < n; ++i) step();
  sync(dev);
  const double train_s = (now() - t) / n;
  t = now();
  for (int i = 0; i < n; ++i) infer();
  sync(dev);
  const double infer_s = (now() - t) / n;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "%s%s%s%s input %d^3 x %d, base %d, %d stages, %d input channels: training step %.4f s (%.1f samples/s), "
      "prediction %.4f s per batch (%.4f s per input), peak resident %.0f MB\n",
      dev_name.c_str(), bf16 ? " bf16" : "", channels_last ? " channels-last" : "", o.checkpoint_blocks ? " ckpt" : "",
      size, batch, o.base_channels, o.stages, o.in_channels, train_s, batch / train_s, infer_s, infer_s / batch,
      ru.ru_maxrss / 1024.0);
  return 0;
}
