// The planner: readable rules from the fingerprint and the hardware to plans (docs/PLANS.md).
#pragma once
#include <string>
#include <vector>

#include "harmonize/pipeline.hpp"
#include "plan/fingerprint.hpp"
#include "plan/hardware.hpp"
#include "plan/plans.hpp"

namespace aneura {

struct PlanResult {
  Plans plans;
  std::vector<std::string> explanation;  // one sentence per decision, in order
};

// cpu_fine is planned (and is the default without a GPU) when at least half of the cases come from
// modalities whose median source spacing is at most kFineSourceMm on every axis (thin-slice CTA and
// TOF) and the cases were made at kFineSpacingMm or finer; its windows are at kFineSpacingMm.
constexpr double kFineSourceMm = 1.0, kFineSpacingMm = 1.0;
// cpu_native: planned beside cpu_fine when the cases were made at kNativeMaxMm or finer; windows at
// the thin-slice modalities' own in-plane spacing (no finer than the cases), trained on those
// modalities only.
constexpr double kNativeMaxMm = 0.8;
// cpu_dots (planned with cpu_native): the dot-filter candidates it judges per series.
constexpr int kDotCandidates = 32;
// cpu_dots' window around each candidate, in voxels per axis (24 at 0.55 mm: 13.2 mm; a multiple of
// 2^(stages - 1) = 8): against 32, more epochs within the budget and better held-out ranks.
constexpr int kDotWindow = 24;

// `cases`: how the case cache was harmonized (WORK/preprocess.json); the plans' `normalization`
// records it, as training reads those cases and prediction repeats their harmonization.
PlanResult make_plans(const Fingerprint& f, const HardwareProfile& h, const HarmonizeParams& cases = {});

// The plans' `normalization` entry for cases harmonized with `p`:
// {"CT": {"scheme", and for clip_zscore "clip", "mean", "std"}, "MR": {"scheme"}}.
nlohmann::json normalization_json(const HarmonizeParams& p);

// Rule helpers, exposed for tests.
// Median spacing per axis; on a strongly anisotropic axis (median > 3x the finest) the 10th percentile.
std::array<double, 3> rule_target_spacing(const ModalitySummary& s, std::string* why = nullptr);
// Activation memory of one training sample, GB (fp32 unless mixed precision), for a U-Net of
// `stages` resolutions on `patch` voxels, channels doubling from `base` up to `max_channels`.
double rule_sample_memory_gb(const std::array<int, 3>& patch, int stages, int base, int max_channels, bool mixed);

}  // namespace aneura
