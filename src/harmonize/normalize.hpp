// Intensity normalization by modality (seeds 000, 002, 003). All functions map values voxel by
// voxel and keep the geometry.
//
// Which scheme applies: the fine modality (CTA / MRA / T2 / T1post) is not among the test-time
// DICOM tags, only Modality CT or MR is. CT data is in HU, so CT gets windows / the nnU-Net CT
// scheme; MR data has arbitrary units, so MR gets percentile scaling or a z-score inside the head.
#pragma once
#include <string>
#include <vector>

#include "core/volume.hpp"

namespace aneura {

// Value of the p-th percentile (0..100) of `values` (linear between order statistics, as numpy).
double percentile(std::vector<float> values, double p);
// Percentiles of the voxels where mask != 0 (all voxels when mask is null).
std::vector<double> percentiles(const Volume<float>& v, const std::vector<double>& ps,
                                const Volume<uint8_t>* mask = nullptr);

// CT window (level/width in HU) -> [0, 1]: (x - (level - width/2)) / width, clipped.
Volume<float> ct_window(const Volume<float>& hu, double level, double width);

struct Window {
  const char* name;
  double level, width;
};
// The seed windows: brain 40/80, subdural 80/200, bone 600/2800, and a CTA vessel window 300/600.
const std::vector<Window>& standard_windows();
// One channel per window, stacked along t (Volume::volumes = number of windows).
Volume<float> ct_windows(const Volume<float>& hu, const std::vector<Window>& windows);

// nnU-Net CT scheme: clip to [lo, hi] (dataset foreground percentiles 0.5 / 99.5), then
// (x - mean) / std with the dataset foreground mean and std.
Volume<float> clip_zscore(const Volume<float>& v, double lo, double hi, double mean, double std);

// MR: clip to the p_lo / p_hi percentiles of the foreground, scale to [0, 1].
Volume<float> percentile_scale(const Volume<float>& v, double p_lo, double p_hi, const Volume<uint8_t>* mask = nullptr);

// z-score with mean and std of the voxels inside `mask` (all voxels when null); std 0 -> 1.
Volume<float> zscore(const Volume<float>& v, const Volume<uint8_t>* mask = nullptr);

// Histogram of the values in [lo, hi] with `bins` bins, smoothed by a Gaussian of `sigma_bins`
// (a kernel density estimate); near the ends the kernel is renormalized over the bins that exist,
// so a falling histogram keeps its maximum at its end.
std::vector<double> smoothed_histogram(const std::vector<float>& values, double lo, double hi, int bins,
                                       double sigma_bins);

// WhiteStripe (Shinohara et al. 2014; seed 001): the normal-appearing white matter's mode in the
// smoothed histogram of the voxels inside `mask` (the brain), the "stripe" of voxels whose quantile
// lies within `width` of the mode's, and the image scaled by that stripe's mean and sd, so white
// matter lands at 0 whatever the scanner's scale and offset. Which mode: the largest (T2-weighted,
// TOF, and MR in general: the test-time tags do not say T1 or T2) or the last, the highest-intensity
// peak below the 96th percentile (T1-weighted, where white matter is the brightest tissue).
// A histogram with no peak (its maximum at an end, or less than 20 % above the valleys on either
// side; the last mode needs its lower valley only), or a stripe without spread, gives found =
// false and the note says why.
struct WhiteStripe {
  bool found = false;
  double mode = 0, mean = 0, sd = 1;  // the mode; the stripe's mean and sd
  double lo = 0, hi = 0;              // the stripe's intensity limits
  size_t voxels = 0;                  // in the stripe
  std::string note;
};
WhiteStripe whitestripe_fit(const Volume<float>& v, const Volume<uint8_t>* mask, double width = 0.05,
                            bool last_mode = false);
// (x - mean) / sd with the fitted stripe.
Volume<float> whitestripe_apply(const Volume<float>& v, const WhiteStripe& w);

// Nyul-Udupa histogram standardization: landmarks at fixed percentiles of each training image are
// mapped linearly onto a standard scale; the standard landmarks are the mean over training images.
struct NyulModel {
  std::vector<double> percentiles{1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 99};
  std::vector<double> standard;  // landmark values on the standard scale (same length)
  double scale_min = 0, scale_max = 100;
};
// Fits the standard landmarks: each image's landmarks are mapped so its p1 -> scale_min and its
// p99 -> scale_max, then averaged.
NyulModel nyul_fit(const std::vector<const Volume<float>*>& images, const std::vector<const Volume<uint8_t>*>& masks,
                   NyulModel model = {});
// The same from landmarks already measured (one vector per training image, model.percentiles).
NyulModel nyul_fit_landmarks(const std::vector<std::vector<double>>& landmarks, NyulModel model = {});
// Piecewise-linear map of the image's own landmarks onto model.standard (linear beyond the ends).
Volume<float> nyul_apply(const Volume<float>& v, const NyulModel& model, const Volume<uint8_t>* mask = nullptr);

}  // namespace aneura
