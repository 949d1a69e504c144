// The two fields aneura needs from the Siemens CSA image header (0029,xx10, "SV10" format):
// the number of slices in a mosaic and the slice normal.
#pragma once
#include <gdcmDataSet.h>

#include "core/geometry.hpp"

namespace aneura {

struct SiemensCsa {
  int images_in_mosaic = 0;  // 0 = unknown
  bool has_slice_normal = false;
  Vec3 slice_normal{0, 0, 0};
};

// Reads (0019,100A) NumberOfImagesInMosaic when present, else the CSA image header.
SiemensCsa read_siemens_csa(const gdcm::DataSet& ds);

}  // namespace aneura
