// The network: gradient checkpointing of its blocks gives the same outputs and gradients.
#include <gtest/gtest.h>

#include "model/network.hpp"

namespace aneura {
namespace {

// The gradients of every parameter and of the input for a fixed loss of the outputs.
std::pair<std::vector<torch::Tensor>, torch::Tensor> gradients(bool checkpoint, bool freeze_encoder) {
  NetworkOptions o;
  o.in_channels = 2;
  o.stages = 3;
  o.base_channels = 4;
  o.max_channels = 16;
  o.checkpoint_blocks = checkpoint;
  torch::manual_seed(11);
  MultiTaskUNet net(o);
  net->train();
  for (auto& p : net->encoder->parameters()) p.set_requires_grad(!freeze_encoder);
  torch::manual_seed(12);
  const auto x = torch::randn({2, 2, 16, 16, 16}).requires_grad_();
  const auto w = torch::randn({2, 14, 16, 16, 16});
  const NetworkOutput out = net->forward(x);
  const auto loss = (out.aneurysm * w).sum() + out.vessel.pow(2).mean() + out.labels.sum() + out.modality.sum();
  loss.backward();
  std::vector<torch::Tensor> g;
  for (const auto& p : net->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  return {g, x.grad().clone()};
}

TEST(Network, CheckpointedEncoderGivesTheSameGradients) {
  for (bool frozen : {false, true}) {
    const auto [plain, plain_x] = gradients(false, frozen);
    const auto [ckpt, ckpt_x] = gradients(true, frozen);
    ASSERT_EQ(plain.size(), ckpt.size());
    int defined = 0;
    for (size_t i = 0; i < plain.size(); ++i) {
      ASSERT_EQ(plain[i].defined(), ckpt[i].defined()) << i << (frozen ? " frozen" : "");
      if (!plain[i].defined()) continue;
      ++defined;
      // (float rounding: the backward sums in another order)
      EXPECT_LE((plain[i] - ckpt[i]).abs().max().item<double>(), 1e-5 * plain[i].abs().max().item<double>() + 1e-9)
          << i << " max diff " << (plain[i] - ckpt[i]).abs().max().item<double>() << " of "
          << plain[i].abs().max().item<double>();
    }
    EXPECT_GT(defined, 10);
    EXPECT_LE((plain_x - ckpt_x).abs().max().item<double>(), 1e-5 * plain_x.abs().max().item<double>());
    EXPECT_GT(plain_x.abs().sum().item<double>(), 0);
  }
}

TEST(Network, CheckpointedBlockKeepsNoGraphInside) {
  ResidualBlock block(2, 4, 2);
  const auto x = torch::randn({1, 2, 8, 8, 8});
  const auto y = checkpointed(*block, x);
  EXPECT_TRUE(y.requires_grad());  // the block's parameters need gradients
  EXPECT_NE(y.grad_fn()->name().find("CheckpointFunction"), std::string::npos) << y.grad_fn()->name();
  EXPECT_TRUE(torch::allclose(y, block->forward(x)));
  torch::NoGradGuard ng;
  EXPECT_FALSE(checkpointed(*block, x).requires_grad());
}

}  // namespace
}  // namespace aneura
