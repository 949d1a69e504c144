#include "model/registry.hpp"

#include <set>

#include "core/error.hpp"

namespace aneura {

MultiTaskUNet build_model(const Configuration& c, int in_channels) {
  if (c.model != "resenc_unet_multitask")
    throw Error(ErrorCode::Usage, "configuration '" + c.name + "' names model '" + c.model +
                                      "', not the 3D network (resenc_unet_multitask) this step needs");
  NetworkOptions o;
  o.in_channels = in_channels;
  o.stages = c.stages;
  o.base_channels = c.base_channels;
  o.max_channels = c.max_channels;
  o.checkpoint_blocks = c.gradient_checkpointing;
  return MultiTaskUNet(o);
}

Network build_network(const Configuration& c, int in_channels) {
  Network n;
  if (slice_model(c))
    n.slices = DualStream2p5d(c.patch_size[2], c.stages, c.base_channels, c.max_channels);
  else
    n.unet = build_model(c, in_channels);
  return n;
}

std::vector<torch::Tensor> Network::encoder_parameters() {
  if (unet) return aneura::encoder_parameters(unet);
  auto p = slices->full_stream->parameters(), r = slices->roi_stream->parameters();
  p.insert(p.end(), r.begin(), r.end());
  return p;
}

std::vector<torch::Tensor> Network::other_parameters() {
  if (unet) return decoder_and_head_parameters(unet);
  auto p = slices->coord->parameters(), h = slices->head->parameters();
  p.insert(p.end(), h.begin(), h.end());
  return p;
}

}  // namespace aneura
