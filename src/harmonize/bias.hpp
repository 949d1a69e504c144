// N4 bias field correction (ITK's N4BiasFieldCorrectionImageFilter) for MR: off by default.
// The field is estimated on a grid `shrink` times coarser (N4's usual speed-up), turned into a
// multiplicative field (input / corrected), interpolated linearly onto the full grid, and divided
// out. Values are shifted to be positive inside the mask first, as N4 works in the log domain.
#pragma once
#include "core/volume.hpp"

namespace aneura {

struct N4Options {
  int shrink = 4;
  int levels = 3;
  int iterations = 50;  // per level
};

Volume<float> n4_correct(const Volume<float>& v, const Volume<uint8_t>& mask, const N4Options& o = {});

}  // namespace aneura
