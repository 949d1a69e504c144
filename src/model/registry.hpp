// Networks by name: plans name a model, and the name is checked here when a model is built.
//   resenc_unet_multitask   the 3D multi-task network (model/network.hpp), the default
//   dualstream_2p5d         the seeds' 2.5D dual-stream classifier (model/dualstream.hpp)
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/dualstream.hpp"
#include "model/network.hpp"
#include "plan/plans.hpp"

namespace aneura {

// Builds the plans' 3D model for `in_channels` input channels. Throws Error(Usage) for another name.
MultiTaskUNet build_model(const Configuration& c, int in_channels);

// A network of either family, as training and prediction hold it: exactly one member is set.
struct Network {
  MultiTaskUNet unet{nullptr};
  DualStream2p5d slices{nullptr};
  torch::nn::Module& module() { return unet ? static_cast<torch::nn::Module&>(*unet) : *slices; }
  std::vector<torch::Tensor> parameters() { return module().parameters(); }
  // Transfer: the 3D encoder, or the two 2D backbones.
  std::vector<torch::Tensor> encoder_parameters();
  std::vector<torch::Tensor> other_parameters();
};

// Builds the plans' model, of either family (`in_channels`: the 3D network's; the 2.5D family takes
// its window). Throws Error(Usage) for an unknown name.
Network build_network(const Configuration& c, int in_channels);

}  // namespace aneura
