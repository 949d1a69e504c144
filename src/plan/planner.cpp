#include "plan/planner.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "harmonize/pipeline.hpp"

using nlohmann::json;

namespace aneura {

namespace {

std::string fmt(double v, int prec = 3) {
  std::ostringstream s;
  s.precision(prec);
  s << v;
  return s.str();
}

std::string fmt3(const std::array<double, 3>& v) { return fmt(v[0]) + " x " + fmt(v[1]) + " x " + fmt(v[2]); }
std::string fmt3(const std::array<int, 3>& v) {
  return std::to_string(v[0]) + " x " + std::to_string(v[1]) + " x " + std::to_string(v[2]);
}

// Encoder resolutions for a patch: halve until the smallest side would drop below 4 voxels, 2..6.
int stages_for(const std::array<int, 3>& voxels) {
  const int smallest = *std::min_element(voxels.begin(), voxels.end());
  return std::clamp(static_cast<int>(std::floor(std::log2(smallest / 4.0))) + 1, 2, 6);
}

std::array<int, 3> round_patch(const std::array<double, 3>& vox, int stages) {
  const int m = 1 << (stages - 1);
  std::array<int, 3> p{};
  for (int a = 0; a < 3; ++a) p[a] = std::max(m, static_cast<int>(std::lround(vox[a] / m)) * m);
  return p;
}

struct Sized {
  std::array<double, 3> spacing;
  std::array<int, 3> patch;
  int stages, batch;
  double sample_gb;
};

// Fits ROI, network and batch into a memory budget: the patch keeps the ROI's extent and the
// spacing grows (coarser voxels) until two samples fit; then the batch takes what is left.
Sized fit_budget(std::array<double, 3> spacing, const std::array<double, 3>& roi, int base, int max_ch, bool mixed,
                 double budget_gb, int max_batch, std::vector<std::string>& why, const std::string& device) {
  for (int guard = 0; guard < 20; ++guard) {
    std::array<double, 3> vox{};
    for (int a = 0; a < 3; ++a) vox[a] = roi[a] / spacing[a];
    std::array<int, 3> patch{};
    for (int a = 0; a < 3; ++a) patch[a] = static_cast<int>(std::lround(vox[a]));
    const int stages = stages_for(patch);
    patch = round_patch(vox, stages);
    const double gb = rule_sample_memory_gb(patch, stages, base, max_ch, mixed);
    if (2 * gb <= budget_gb || guard == 19) {
      const int batch = std::clamp(static_cast<int>(budget_gb / gb), 1, max_batch);
      why.push_back(device + ": patch " + fmt3(patch) + " voxels at " + fmt3(spacing) + " mm, " +
                    std::to_string(stages) + " stages, ~" + fmt(gb) + " GB per sample; budget " + fmt(budget_gb) +
                    " GB -> batch " + std::to_string(batch) + ".");
      return {spacing, patch, stages, batch, gb};
    }
    for (double& s : spacing) s *= 1.25;  // coarser until it fits
  }
  return {};
}

}  // namespace

std::array<double, 3> rule_target_spacing(const ModalitySummary& s, std::string* why) {
  std::array<double, 3> t = s.spacing_median;
  const double finest = *std::min_element(t.begin(), t.end());
  const int thick = static_cast<int>(std::max_element(t.begin(), t.end()) - t.begin());
  std::string w = "target spacing = median source spacing per axis (" + fmt3(s.spacing_median) + " mm)";
  if (finest > 0 && t[thick] > 3 * finest) {
    t[thick] = s.spacing_p10[thick];
    w += "; axis " + std::to_string(thick) +
         " is strongly anisotropic (> 3x the finest), so it takes the 10th percentile " + fmt(t[thick]) + " mm";
  }
  if (why) *why = w + ".";
  return t;
}

double rule_sample_memory_gb(const std::array<int, 3>& patch, int stages, int base, int max_channels, bool mixed) {
  // Per stage: voxels / 8^s with min(base * 2^s, max) channels; ~12 feature maps kept per stage for
  // backprop (two residual convs with norm + activation, encoder and decoder side, plus gradients).
  const double voxels = double(patch[0]) * patch[1] * patch[2];
  double elems = 0;
  for (int s = 0; s < stages; ++s) elems += voxels / std::pow(8.0, s) * std::min(base << s, max_channels);
  return elems * 12 * (mixed ? 2 : 4) / 1e9;
}

json normalization_json(const HarmonizeParams& p) {
  json ct = {{"scheme", p.ct_normalization}};
  if (p.ct_normalization == "clip_zscore") {
    ct["clip"] = {p.ct_clip_lo, p.ct_clip_hi};
    ct["mean"] = p.ct_mean;
    ct["std"] = p.ct_std;
  }
  json mr = {{"scheme", p.mr_normalization}, {"inside", p.brain_mask ? "brain mask" : "head mask"}};
  if (p.mr_normalization == "whitestripe") {
    mr["width"] = p.whitestripe_width;
    mr["mode"] = p.whitestripe_last ? "last" : "largest";
  }
  return {{"CT", ct}, {"MR", mr}};
}

PlanResult make_plans(const Fingerprint& f, const HardwareProfile& h, const HarmonizeParams& hp) {
  PlanResult r;
  auto& why = r.explanation;
  if (f.all.cases == 0) throw Error(ErrorCode::Usage, "the fingerprint holds no case");

  std::string w;
  const std::array<double, 3> full_spacing = rule_target_spacing(f.all, &w);
  why.push_back(w);
  const std::array<double, 3> roi{128, 128, 112};
  why.push_back(
      "ROI 128 x 128 x 112 mm (RAS) around the Circle of Willis: both ICAs to the MCA branches, "
      "infraclinoid ICA to the ACA, with margin.");

  // Normalization per DICOM modality, as the cases were made (WORK/preprocess.json): by default
  // CT the angiography window, MR z-score inside the head.
  const json norm = normalization_json(hp);
  std::string ct_why;
  if (hp.ct_normalization == "clip_zscore")
    ct_why =
        "CT: clip to the window [" + fmt(hp.ct_clip_lo) + ", " + fmt(hp.ct_clip_hi) + "] HU, then (HU - " +
        fmt(hp.ct_mean) + ") / " + fmt(hp.ct_std) + ", as the cases were made" +
        (hp.ct_clip_lo == -100 && hp.ct_clip_hi == 600 ? " (the angiography window): brain ~0 and enhanced vessels "
                                                         "~4-8, the scale of MR vessels after their z-score"
                                                       : std::string());
  else
    ct_why = "CT: '" + hp.ct_normalization + "', as the cases were made";
  if (f.by_dicom_modality.count("CT")) {
    const auto& ct = f.by_dicom_modality.at("CT");
    ct_why += " (the dataset's pooled CT foreground: 0.5/99.5 percentiles [" + fmt(ct.p00_5) + ", " + fmt(ct.p99_5) +
              "] HU, mean " + fmt(ct.mean) + ", std " + fmt(ct.std) +
              "; a clip to those would keep bone and leave vessels ~1 unit above brain)";
  }
  why.push_back(ct_why + ".");
  const std::string inside = hp.brain_mask ? "brain mask (preprocess --brain-mask)" : "head mask";
  if (hp.mr_normalization == "zscore")
    why.push_back("MR: arbitrary units, so z-score inside the " + inside + " per case, as the cases were made.");
  else if (hp.mr_normalization == "whitestripe")
    why.push_back("MR: WhiteStripe inside the " + inside + ", as the cases were made: the " +
                  (hp.whitestripe_last ? "last (T1)" : "largest") + " histogram peak's stripe (quantile +- " +
                  fmt(hp.whitestripe_width) + ") scaled to mean 0, sd 1; z-score where a case has no peak.");
  else
    why.push_back("MR: '" + hp.mr_normalization + "', as the cases were made" +
                  (hp.brain_mask ? ", statistics inside the brain mask." : "."));

  Configuration base;
  base.name = "base";
  base.normalization = norm;
  base.roi_mm = roi;

  // CPU demo: the time budget rules; AdamW + cosine converges in few epochs.
  const double cpu_budget = std::max(0.5, 0.25 * h.ram_available_gb);
  Configuration cpu = base;
  cpu.device = "cpu";
  cpu.base_channels = 8;
  cpu.max_channels = 64;
  // Windowed: 16^3 windows at 2 mm (32 mm: an aneurysm with its parent vessel; the coordinate
  // channels say where the window lies): ~0.01 s forward + backward on a CPU core pair, so minutes
  // hold tens of thousands of samples (32^3 windows: ~0.09 s, and the heatmap had not learnt to
  // find aneurysms within 240 s), and a 2 mm voxel still shows an aneurysm of 2 mm radius.
  std::array<double, 3> cpu_spacing{};
  for (int a = 0; a < 3; ++a) cpu_spacing[a] = std::max(2.0, full_spacing[a]);
  cpu.target_spacing_mm = cpu_spacing;
  for (int a = 0; a < 3; ++a)
    cpu.patch_size[a] = std::min(16, 8 * std::max(1, static_cast<int>(std::lround(roi[a] / cpu_spacing[a] / 8))));
  cpu.stages = stages_for(cpu.patch_size);
  const double cpu_gb = rule_sample_memory_gb(cpu.patch_size, cpu.stages, cpu.base_channels, cpu.max_channels, false);
  cpu.batch_size = std::clamp(static_cast<int>(cpu_budget / cpu_gb), 1, 16);
  cpu.blob_features = true;
  why.push_back(
      "cpu_demo: blob features (Hessian objectness, bright and dark) as input channels: a small network trained for "
      "minutes does not learn to tell an aneurysm from a vessel by itself.");
  why.push_back("cpu_demo: windows of " + fmt3(cpu.patch_size) + " voxels at " + fmt3(cpu_spacing) +
                " mm (at least 2 mm) inside the ROI, " + std::to_string(cpu.stages) + " stages, 8 base channels, ~" +
                fmt(cpu_gb) + " GB per sample -> batch " + std::to_string(cpu.batch_size) +
                " (at most 16): a window costs ~0.01 s on 2 cores, so minutes hold tens of thousands of samples; "
                "prediction slides half-overlapping windows over the ROI.");
  cpu.loader_workers = std::max(1, h.cores / 2);
  cpu.optimizer = "adamw";
  cpu.learning_rate = 3e-3;
  cpu.weight_decay = 1e-4;
  cpu.epochs = 100;
  cpu.time_budget_s = 240;
  why.push_back("cpu_demo: " + std::to_string(cpu.loader_workers) + " loader workers (half of " +
                std::to_string(h.cores) + " usable cores; the model needs the rest), AdamW 3e-3 with cosine decay, " +
                "100 epochs, as many as fit in 240 s (the schedule is fitted to the budget).");

  // CPU fine: where most series are thin-slice with fine pixels (CTA, TOF), the same windows at
  // 1 mm: an aneurysm of 1-2 mm radius is a voxel or two at 2 mm and several at 1 mm.
  int fine_cases = 0;
  for (const auto& [name, m] : f.by_modality)
    if (m.cases > 0 && *std::max_element(m.spacing_median.begin(), m.spacing_median.end()) <= kFineSourceMm)
      fine_cases += m.cases;
  const double cache_mm = std::max({hp.spacing[0], hp.spacing[1], hp.spacing[2]});
  const bool plan_fine = 2 * fine_cases >= f.all.cases && cache_mm <= kFineSpacingMm + 1e-6;
  Configuration fine = cpu;
  if (plan_fine) {
    fine.target_spacing_mm = {kFineSpacingMm, kFineSpacingMm, kFineSpacingMm};
    fine.patch_size = {32, 32, 32};
    fine.stages = stages_for(fine.patch_size);
    const double fine_gb =
        rule_sample_memory_gb(fine.patch_size, fine.stages, fine.base_channels, fine.max_channels, false);
    fine.batch_size = std::clamp(static_cast<int>(cpu_budget / fine_gb), 1, 4);
    fine.time_budget_s = 1200;
    fine.epochs = 1000;
    why.push_back("cpu_fine: " + std::to_string(fine_cases) + " of " + std::to_string(f.all.cases) +
                  " cases are thin-slice with fine pixels (median spacing <= " + fmt(kFineSourceMm) +
                  " mm on every axis), so windows of 32^3 voxels at " + fmt(kFineSpacingMm) +
                  " mm (the same 32 mm of context as cpu_demo's), " + std::to_string(fine.stages) + " stages, batch " +
                  std::to_string(fine.batch_size) +
                  ", as many epochs as fit in 1200 s (~15 samples/s on 2 cores): on the CTA and TOF series it ranks "
                  "aneurysms of under 2 mm radius above chance, where cpu_demo's 2 mm grid does not; prediction "
                  "takes ~7 s per series and flip.");
  } else {
    why.push_back(cache_mm > kFineSpacingMm + 1e-6
                      ? "cpu_fine: not planned; the cases were made at " + fmt(cache_mm) +
                            " mm (aneura preprocess --spacing), " + "coarser than its " + fmt(kFineSpacingMm) +
                            " mm windows."
                      : "cpu_fine: not planned; " + std::to_string(fine_cases) + " of " + std::to_string(f.all.cases) +
                            " cases are thin-slice with fine pixels (median spacing <= " + fmt(kFineSourceMm) +
                            " mm on every axis), under half.");
  }

  // CPU vessels: the vessel stage of a two-stage prediction (predict --vessel-model): cpu_demo's
  // windows and input, the vessel territories alone, learnt from the cases with a segmentation.
  Configuration vessels = cpu;
  vessels.vessel_stage = true;
  vessels.loss_weights = {{"vessel", 1}, {"aneurysm", 0}, {"classification", 0}, {"modality", 0}};
  vessels.epochs = 3000;
  why.push_back(
      "cpu_vessels: the vessel stage (predict --vessel-model WORK/runs/cpu_vessels): cpu_demo's windows and input, "
      "the 14 vessel classes alone (the other loss weights 0), learnt from the cases with a segmentation only (a "
      "few per cent of the series: many short epochs, as many as fit in 240 s), judged by its vessel Dice.");

  // CPU fine vessels: the vessel classes alone with cpu_fine's network and windows, whose encoder
  // then initialises cpu_fine (train --init-encoder), as the 1st place system pre-trained its
  // classifier's encoder on the vessel segmentation.
  Configuration fine_vessels = fine;
  fine_vessels.vessel_stage = true;
  fine_vessels.loss_weights = vessels.loss_weights;
  fine_vessels.epochs = 3000;
  fine_vessels.time_budget_s = 600;
  if (plan_fine)
    why.push_back(
        "cpu_fine_vessels: cpu_fine's network and windows learning the 14 vessel classes alone from the segmented "
        "cases (600 s); its encoder initialises cpu_fine (aneura train WORK -c cpu_fine --init-encoder "
        "WORK/runs/cpu_fine_vessels/fold_K/last.pt), as the RSNA 2025 winner pre-trained its classifier on the vessel "
        "segmentation. Measured with two seeds each (docs/EXPERIMENTS.md): score 0.648 and 0.625 against 0.619 and "
        "0.642 from scratch, CTA/TOF aneurysms under 2 mm 0.547 and 0.502 against 0.445 and 0.562: no gain beyond "
        "the spread between seeds at this scale (15 segmented training cases); it also serves as a 1 mm vessel stage "
        "(predict --vessel-model).");

  // CPU native: the thin-slice modalities at their own in-plane spacing (CTA and TOF pixels are
  // 0.4-0.7 mm; a 1-2 mm aneurysm is 3-8 of them across), where the cases were made that fine.
  // Prediction over the whole ROI costs ~10x cpu_fine's windows: it is meant to run behind a vessel
  // stage (predict --vessel-model), which runs only the windows near the arteries.
  std::vector<std::string> fine_modalities;
  double inplane = 0;
  for (const auto& [name, m] : f.by_modality)
    if (m.cases > 0 && modality_index(name) >= 0 &&
        *std::max_element(m.spacing_median.begin(), m.spacing_median.end()) <= kFineSourceMm) {
      fine_modalities.push_back(name);
      auto sp = m.spacing_median;
      std::sort(sp.begin(), sp.end());
      inplane += 0.5 * (sp[0] + sp[1]) * m.cases / std::max(1, fine_cases);  // case-weighted in-plane median
    }
  const double native_mm = std::max(cache_mm, std::round(inplane * 20) / 20);  // to 0.05 mm
  const bool plan_native = plan_fine && !fine_modalities.empty() && cache_mm <= kNativeMaxMm + 1e-6;
  Configuration native = fine;
  if (plan_native) {
    native.target_spacing_mm = {native_mm, native_mm, native_mm};
    native.blob_features = false;  // the Hessian of ~15 M voxels per case costs more than it gives here
    native.modalities = fine_modalities;
    native.time_budget_s = 1800;
    std::string names;
    for (const auto& m : fine_modalities) names += (names.empty() ? "" : ", ") + m;
    why.push_back("cpu_native: the cases were made at " + fmt(cache_mm) + " mm and the thin-slice modalities (" +
                  names + ") have in-plane pixels of " + fmt(inplane) + " mm, so windows of 32^3 voxels at " +
                  fmt(native_mm) +
                  " mm, trained on those modalities only, without blob channels (hard negatives from the blob measure "
                  "on a 2 mm copy), as many epochs as fit in 1800 s; predict it behind a vessel stage "
                  "(--vessel-model WORK/runs/cpu_vessels): the whole ROI is ~3000 windows per series and flip.");
  }
  // CPU candidate stage: cpu_native's windows judging only the strongest maxima of a coarse model's
  // heatmap (cpu_fine's), trained on those maxima as hard negatives.
  Configuration candidates = native;
  candidates.candidates = 16;
  if (plan_native) {
    why.push_back(
        "cpu_candidates: cpu_native's windows as a second stage: trained with --candidates-from "
        "WORK/runs/cpu_fine (the 16 strongest maxima of its heatmap on every case are the hard negatives, found "
        "once within the budget), it predicts behind cpu_fine, judging a window around each of the 16 and mixing "
        "the largest sqrt(coarse x judgement) into Present (predict takes the coarse model from model.json); "
        "not the default: two seeds on 100 held-out medium series scored 0.641 and 0.640 against cpu_fine's 0.637 "
        "(docs/EXPERIMENTS.md).");
  }
  // CPU candidate stage on the image's own candidates: the dot-enhancement filter's strongest maxima
  // (model/input.hpp dot_candidates) instead of a coarse model's; it predicts alone.
  Configuration dots = candidates;
  dots.candidates = kDotCandidates;
  dots.candidate_source = "dots";
  dots.mine_online = true;
  dots.mixed_precision = h.cpu_bf16;
  dots.patch_size = {kDotWindow, kDotWindow, kDotWindow};
  // Its windows are cut from crops around the candidates held in RAM (~2 ms each against ~80 ms for
  // a training step of 4): on 2 cores a loader thread beside the network's two OpenMP threads
  // interrupts their parallel regions more than it saves, so the batches are made between steps.
  if (h.cores <= 2) dots.loader_workers = 0;
  if (plan_native) {
    why.push_back("cpu_dots: cpu_native's windows judging the " + std::to_string(kDotCandidates) +
                  " strongest maxima of a Hessian dot filter (blobs of radius ~1-3 mm, as classic aneurysm CAD "
                  "finds its candidates) in the ROI at " +
                  fmt(native_mm) +
                  " mm; no coarse model: Present, the locations and the points come from its judgements alone; "
                  "its candidates are drawn by its own head's judgement of them on the training windows "
                  "(mine_online). Its candidates reached 12 of 19 held-out aneurysms under 2 mm (cpu_fine's maxima: "
                  "5 of 20); after 25 epochs from crops around the candidates its judge ranked the 76 CTA/TOF "
                  "series' Present at 0.897, 0.799 and 0.789 with mining over three seeds (under 2 mm 0.778, "
                  "0.592 and 0.535), against 0.789 and 0.814 without for the first two (0.537 and 0.670; cpu_fine "
                  "0.728), scores of 0.926, 0.824 and 0.814 over the 13 defined columns against 0.825 and 0.833: "
                  "mining is on because it never cost much and once gained 0.1, but its gain is not settled. Not "
                  "the default: it learns from CTA and TOF only (docs/EXPERIMENTS.md).");
    why.push_back(
        h.cpu_bf16 ? "cpu_dots: this CPU computes bf16 natively (AMX-BF16 or AVX512-BF16), so it trains and "
                     "predicts with bf16 autocast (mixed_precision; predict --precision fp32 overrides): on 2 "
                     "cores 12-16 training windows/s of 32^3 against 9-10 in float32 (35-39 epochs in 1800 s "
                     "instead of 25) and the judge in about half the time, with the same held-out judgements; within "
                     "1800 s three seeds averaged Present 0.870 against 0.828 for 25 float32 epochs (under 2 mm "
                     "0.719 against 0.635, docs/EXPERIMENTS.md)"
                   : "cpu_dots: float32 (this CPU has no native bf16: no AMX-BF16 or AVX512-BF16 flag)");
    why.push_back("cpu_dots: windows of " + std::to_string(kDotWindow) + "^3 voxels (" + fmt(kDotWindow * native_mm) +
                  " mm) around each candidate: in bf16 within 1800 s they trained 41-43 epochs against 29-35 for "
                  "32^3 and ranked the 76 held-out CTA/TOF series' Present at 0.908 and 0.915 over two seeds (under "
                  "2 mm 0.798 and 0.822, scores 0.910 and 0.931) against 0.861 and 0.885 for 32^3 with the same "
                  "seeds (0.697 and 0.757; 0.887 and 0.889; docs/EXPERIMENTS.md); with OpenBLAS and no loader thread "
                  "(below) a 2-core machine trained 113 and 125 epochs in the 1800 s: Present 0.925 and 0.978, "
                  "under 2 mm 0.835 and 0.952, scores 0.934 and 0.971 (seeds 7 and 2)");
    why.push_back(
        dots.loader_workers == 0
            ? "cpu_dots: no loader thread on " + std::to_string(h.cores) +
                  " cores: its windows are cut from crops held in RAM (~2 ms each), and a loader thread beside "
                  "the network's threads slowed training fed by it from 47-52 to 38-39 windows/s "
                  "(aneura_bench_loader, docs/EXPERIMENTS.md); the batches are made between steps (a run whose "
                  "crops do not fit in RAM reads its cases per sample and takes one loader thread)"
            : "cpu_dots: " + std::to_string(dots.loader_workers) + " loader threads, as cpu_demo");
  } else {
    why.push_back(cache_mm > kNativeMaxMm + 1e-6
                      ? "cpu_native: not planned; the cases were made at " + fmt(cache_mm) + " mm, coarser than " +
                            fmt(kNativeMaxMm) + " mm (aneura preprocess --spacing 0.5 makes them at CTA/TOF pixels)."
                      : "cpu_native: not planned; cpu_fine is not.");
  }

  // CPU 2.5D: the seeds' baseline (seed 002) as a second model family, so its result can be set
  // beside the 3D network's on the same cases and budget: windows of 5 axial slices of the cases'
  // first channel at 224 x 224, two 2D backbones (full window; ROI crop in training) and the
  // coordinates, 14 outputs, BCE; a series' probability is its windows' largest.
  Configuration slices = cpu;
  slices.model = "dualstream_2p5d";
  slices.patch_size = {224, 224, 5};
  slices.stages = 5;
  slices.base_channels = 16;
  slices.max_channels = 128;
  slices.batch_size = 16;
  slices.learning_rate = 1e-3;
  slices.blob_features = false;
  slices.focus_windows = 0;
  slices.window_overlap = 0.6;  // window centres every 2nd slice
  slices.epochs = 1000;
  slices.time_budget_s = plan_fine ? fine.time_budget_s : cpu.time_budget_s;
  why.push_back(
      "cpu_2p5d: the seeds' 2.5D dual-stream baseline (model dualstream_2p5d: 5-slice windows at 224 x 224, "
      "a residual 2D backbone per stream instead of the seed's ImageNet EfficientNet-B0, which LibTorch "
      "lacks), the same " +
      std::to_string(static_cast<int>(slices.time_budget_s)) + " s budget as " + (plan_fine ? "cpu_fine" : "cpu_demo") +
      "; not the default: on 240 training and 100 held-out medium series it scored 0.53-0.57 against cpu_fine's "
      "0.62-0.64, and ranked aneurysms of 3 mm or more at 0.55-0.65 against 1.00 (docs/EXPERIMENTS.md).");

  // GPU full: the GPU's free memory rules; SGD Nesterov + poly as nnU-Net.
  Configuration gpu = base;
  gpu.device = "cuda";
  gpu.base_channels = 32;
  gpu.max_channels = 320;
  gpu.mixed_precision = true;
  gpu.channels_last = true;
  const double gpu_free = h.gpus.empty() ? 0.0 : h.gpus[0].free_gb;
  const double gpu_budget = h.gpus.empty() ? 10.0 : 0.8 * gpu_free;
  why.push_back(h.gpus.empty() ? "gpu_full: no GPU here; planned for a 12 GB GPU budget (10 GB usable) so the "
                                 "configuration is ready for a CUDA machine."
                               : "gpu_full: " + h.gpus[0].name + " with " + fmt(gpu_free) +
                                     " GB free; 80 % of it is the training budget (mixed precision).");
  const Sized gs =
      fit_budget(full_spacing, roi, gpu.base_channels, gpu.max_channels, true, gpu_budget, 8, why, "gpu_full");
  gpu.target_spacing_mm = gs.spacing;
  gpu.patch_size = gs.patch;
  gpu.stages = gs.stages;
  gpu.batch_size = std::max(2, gs.batch);
  gpu.loader_workers = std::clamp(h.cores - 2, 1, 12);
  gpu.optimizer = "sgd";
  gpu.learning_rate = 0.01;
  gpu.epochs = 300;
  why.push_back("gpu_full: " + std::to_string(gpu.loader_workers) + " loader workers (cores - 2, at most 12), SGD " +
                "Nesterov 0.01 with poly decay, 300 epochs.");

  // Prefetch queue from free RAM: 5 % of it, at most 4 samples per worker.
  auto queue = [&](const Configuration& c) {
    const double channels = 1 + 2;  // image + two label volumes
    const double bytes = double(c.patch_size[0]) * c.patch_size[1] * c.patch_size[2] * channels * 4;
    return std::clamp(static_cast<int>(0.05 * h.ram_available_gb * 1e9 / bytes), 2, 4 * std::max(1, c.loader_workers));
  };
  cpu.queue_length = queue(cpu);
  fine.queue_length = queue(fine);
  native.queue_length = queue(native);
  candidates.queue_length = queue(candidates);
  dots.queue_length = queue(dots);
  vessels.queue_length = queue(vessels);
  fine_vessels.queue_length = queue(fine_vessels);
  slices.queue_length = queue(slices);
  gpu.queue_length = queue(gpu);
  why.push_back("queue length: 5 % of " + fmt(h.ram_available_gb) + " GB free RAM, 2 .. 4 per worker -> cpu_demo " +
                std::to_string(cpu.queue_length) + ", gpu_full " + std::to_string(gpu.queue_length) + ".");

  // Write: base holds the shared fields, the two configurations inherit and override.
  const json jb = configuration_to_json(base), jc = configuration_to_json(cpu), jg = configuration_to_json(gpu),
             jf = configuration_to_json(fine), jn = configuration_to_json(native),
             jcand = configuration_to_json(candidates), jdots = configuration_to_json(dots),
             jv = configuration_to_json(vessels), jfv = configuration_to_json(fine_vessels),
             js = configuration_to_json(slices);
  auto diff = [&](const json& child) {
    json d = {{"inherits", "base"}};
    for (const auto& [k, v] : child.items())
      if (jb.at(k) != v) d[k] = v;
    return d;
  };
  Plans& p = r.plans;
  p.raw["base"] = jb;
  p.raw["cpu_demo"] = diff(jc);
  p.raw["gpu_full"] = diff(jg);
  p.raw["cpu_vessels"] = diff(jv);
  if (plan_fine) p.raw["cpu_fine"] = diff(jf);
  if (plan_fine) p.raw["cpu_fine_vessels"] = diff(jfv);
  if (plan_native) p.raw["cpu_native"] = diff(jn);
  if (plan_native) p.raw["cpu_candidates"] = diff(jcand);
  if (plan_native) p.raw["cpu_dots"] = diff(jdots);
  p.raw["cpu_2p5d"] = diff(js);
  p.default_configuration = !h.gpus.empty() ? "gpu_full" : plan_fine ? "cpu_fine" : "cpu_demo";
  why.push_back("default configuration: " + p.default_configuration +
                (!h.gpus.empty() ? " (a GPU is present)."
                 : plan_fine     ? " (no GPU; the series are fine enough for 1 mm windows)."
                                 : " (no GPU)."));
  std::vector<std::string> names;
  for (const auto& n : label_names()) names.push_back(n);
  p.global = {{"rules", "aneura planner v1 (docs/PLANS.md)"},
              {"hardware", to_json(h)},
              {"fingerprint",
               {{"cases", f.all.cases},
                {"positives", f.all.positives},
                {"spacing_median_ras_mm", f.all.spacing_median},
                {"spacing_p10_ras_mm", f.all.spacing_p10}}},
              {"labels", names},
              {"explanation", why}};
  p = plans_from_json(to_json(p));  // resolves and validates what was planned
  return r;
}

}  // namespace aneura
