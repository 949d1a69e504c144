// The harmonization pipeline for one volume:
//   1. head box on the source grid (CT: > -500 HU; MR: 10 % of the p1..p99 range) + margin
//   2. target grid: the box, reoriented to params.orientation (axis permutation/flips), at
//      params.spacing
//   3. ONE resampling from the source voxels onto that grid (anisotropy-aware; intensities
//      linear or B-spline): reorientation and crop cost no copies of the source volume
//   4. head mask on the final grid (same threshold); optional brain mask (harmonize/brain.hpp);
//      optional N4 bias correction (MR); normalization by modality inside the brain mask when made,
//      else the head mask
// Resampling comes before normalization so that CT windows (several channels) are computed once
// on the final grid instead of resampled channel by channel; for the linear schemes the order
// does not change the result away from clipping limits.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/volume.hpp"
#include "harmonize/crop.hpp"
#include "harmonize/normalize.hpp"
#include "harmonize/resample.hpp"

namespace aneura {

struct HarmonizeParams {
  std::string orientation = "RAS";
  Vec3 spacing{1, 1, 1};
  Interp interp = Interp::Linear;
  bool crop = true;
  double crop_margin_mm = 10;
  // CT: "clip_zscore" (nnU-Net CT, one channel), "windows" (one channel per standard window), or
  // "none" (HU)
  std::string ct_normalization = "clip_zscore";
  // The angiography window: clip to [-100, 600] HU (fat to enhanced vessels; bone saturates at the
  // top of the vessels' range), then (HU - 40) / 60: brain ~0, enhanced vessels ~4-8, the scale MR
  // vessels have after their z-score. (A bone-inclusive clip such as [-100, 1200] leaves CTA vessels
  // ~1 unit above brain, 8x weaker than on MRA, and the blob features barely respond to them.)
  double ct_clip_lo = -100, ct_clip_hi = 600, ct_mean = 40, ct_std = 60;
  // MR: "percentile" (p1..p99 -> [0,1]), "zscore" (inside the head), "nyul", "whitestripe" (the
  // white-matter stripe's mean and sd; falls back to zscore, with a warning, when the histogram has
  // no peak) or "none"
  std::string mr_normalization = "zscore";
  NyulModel nyul;                   // fitted landmarks when mr_normalization == "nyul"
  double whitestripe_width = 0.05;  // the stripe: the mode's quantile +- this
  bool whitestripe_last = false;    // the last (T1) instead of the largest mode
  bool n4 = false;                  // N4 bias field correction of MR before normalization (slow; off by default)
  // Brain extraction (harmonize/brain.hpp) after resampling: the brain mask replaces the head mask
  // for N4 and for the MR normalization's statistics, and is kept with the case (brain.nii.gz).
  bool brain_mask = false;
};

// The parameters as JSON (WORK/preprocess.json, model.json): prediction harmonizes a new series
// exactly as the training cases were. from_json throws Error(CorruptInput) on missing keys.
nlohmann::json harmonize_params_to_json(const HarmonizeParams& p);
HarmonizeParams harmonize_params_from_json(const nlohmann::json& j);

struct Harmonized {
  Volume<float> image;     // channels stacked along t
  Volume<uint8_t> mask;    // head mask on the final grid
  Volume<uint8_t> brain;   // brain mask on the final grid (params.brain_mask and found; else empty)
  Volume<uint8_t> deface;  // voxels a defacing removed, on the final grid (OpenMind's anon mask; else empty)
  std::vector<std::string> channels;
  Box crop_box;                                    // in source voxel indices
  nlohmann::json steps = nlohmann::json::array();  // every step with its parameters, in order
  nlohmann::json foreground;                       // intensity statistics inside the mask before normalization
  std::vector<std::string> warnings;               // a step that fell back (no brain, no white-matter peak)
};

// `dicom_modality` is the DICOM Modality tag ("CT" or "MR"), the only modality known at test time.
// T is float or int16_t (source voxels as decoded). `anatomy` (optional, on raw's grid): the voxels
// that hold anatomy (OpenMind's fb_mask); it replaces the intensity threshold for the crop box and
// the head mask. Another grid is an error (BadGeometry). `foreground_statistics` false: no
// Harmonized::foreground (the fingerprint's; prediction does not need it), the image the same.
template <class T>
Harmonized harmonize(const Volume<T>& raw, const std::string& dicom_modality, const HarmonizeParams& p,
                     const Volume<uint8_t>* anatomy = nullptr, bool foreground_statistics = true);

}  // namespace aneura
