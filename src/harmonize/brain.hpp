// Brain extraction (seed 000's optional step, seed 003's pre-processing): a classical, fast mask of
// the brain (parenchyma with its ventricles and the vessels inside it) on a harmonized grid.
//   1. the image smoothed by a Gaussian of sigma_mm (ITK's recursive Gaussian), which takes the
//      noise out of the intensity test;
//   2. brain-like intensities inside the head mask: CT between ct_lo and ct_hi HU (brain over CSF,
//      under enhanced vessels and bone: fixed, as HU are calibrated); MR between mr_lo and mr_hi
//      times the brain's intensity, the mode of the smoothed histogram in the head's core (the
//      central ellipsoid of half the head's extent around its centroid, where the brain dominates);
//   3. eroded by a ball of erode_mm, which cuts the thin bridges to scalp, orbits and neck;
//   4. the connected component (ITK, face-connected) holding the most voxels of the head's core:
//      the brain is seeded at the head's centre;
//   5. dilated back by the same ball, kept within step 2's voxels, and its holes filled in 3D (ITK):
//      the ventricles (dark on CT, bright on T2) and the vessels enclosed by the brain.
// Under min_ml the brain is "not found" (found = false, note says why): callers fall back to the
// head mask and say so.
#pragma once
#include <string>

#include "core/volume.hpp"

namespace aneura {

struct BrainMaskOptions {
  double sigma_mm = 1.0;
  double erode_mm = 2.0;
  double ct_lo = 15, ct_hi = 100;     // HU
  double mr_lo = 0.55, mr_hi = 1.45;  // times the brain's mode; T2's CSF is ~2x brain, TOF's ~0.25x
  double min_ml = 50;
};

struct BrainMask {
  Volume<uint8_t> mask;  // on the image's grid
  bool found = false;
  double volume_ml = 0;
  double reference = 0;  // MR: the brain's intensity mode; CT: 0
  std::string note;      // why it was not found
};

// `image`: one volume (HU for CT, scanner units for MR, before normalization); `head`: its head mask.
BrainMask brain_mask(const Volume<float>& image, const Volume<uint8_t>& head, bool ct, const BrainMaskOptions& o = {});

// Dice of two masks on the same grid (1 when both are empty).
double mask_dice(const Volume<uint8_t>& a, const Volume<uint8_t>& b);

}  // namespace aneura
