#include "model/registry.hpp"

#include "core/error.hpp"

namespace aneura {

MultiTaskUNet build_model(const Configuration& c, int in_channels) {
  if (c.model != "resenc_unet_multitask")
    throw Error(ErrorCode::Usage, "unknown model '" + c.model + "' (known: resenc_unet_multitask)");
  NetworkOptions o;
  o.in_channels = in_channels;
  o.stages = c.stages;
  o.base_channels = c.base_channels;
  o.max_channels = c.max_channels;
  o.checkpoint_blocks = c.gradient_checkpointing;
  return MultiTaskUNet(o);
}

}  // namespace aneura
