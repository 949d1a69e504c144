// Networks by name: plans name a model, and the name is checked here when a model is built.
#pragma once
#include <string>

#include "model/network.hpp"
#include "plan/plans.hpp"

namespace aneura {

// Builds the plans' model for `in_channels` input channels. Throws Error(Usage) for an unknown name.
MultiTaskUNet build_model(const Configuration& c, int in_channels);

}  // namespace aneura
