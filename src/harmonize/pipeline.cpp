#include "harmonize/pipeline.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "harmonize/bias.hpp"
#include "harmonize/brain.hpp"
#include "harmonize/orient.hpp"

namespace aneura {

using nlohmann::json;

namespace {

nlohmann::json vec(const Vec3& v) { return {v[0], v[1], v[2]}; }

}  // namespace

template <class T>
Harmonized harmonize(const Volume<T>& raw, const std::string& dicom_modality, const HarmonizeParams& p,
                     const Volume<uint8_t>* anatomy, bool foreground_statistics) {
  if (raw.volumes != 1) throw Error(ErrorCode::Unsupported, "harmonize expects one volume (got a series with several)");
  if (anatomy && anatomy->geom.size != raw.geom.size)
    throw Error(ErrorCode::BadGeometry, "the anatomy mask's grid differs from the image's");
  const bool ct = dicom_modality == "CT";
  Harmonized h;
  auto t = SteadyClock::now();  // each step records its seconds

  const double threshold = ct ? -500.0 : mr_foreground_threshold(raw);
  h.crop_box = Box{{0, 0, 0}, {raw.geom.size[0], raw.geom.size[1], raw.geom.size[2]}};
  if (p.crop)
    h.crop_box = anatomy ? mask_box(*anatomy, p.crop_margin_mm) : threshold_box(raw, threshold, p.crop_margin_mm);
  const Geometry cropped = crop_geometry(raw.geom, h.crop_box);
  const Geometry oriented = reorient_geometry(cropped, orientation_map(cropped, p.orientation));
  h.steps.push_back({{"step", "crop"},
                     {"enabled", p.crop},
                     {"foreground", anatomy ? "anatomy mask" : "intensity threshold"},
                     {"foreground_threshold", threshold},
                     {"margin_mm", p.crop_margin_mm},
                     {"box_lo", h.crop_box.lo},
                     {"box_hi", h.crop_box.hi},
                     {"box_in", "source voxel indices"},
                     {"seconds", seconds_since(t)}});
  h.steps.push_back({{"step", "orient"},
                     {"from", raw.geom.orientation_code()},
                     {"to", oriented.orientation_code()},
                     {"exact", true},
                     {"applied", "as the target grid of the resampling (no separate copy)"}});

  t = SteadyClock::now();
  const float outside = ct ? -1024.f : 0.f;
  const Geometry target = resampled_grid(oriented, p.spacing);
  Volume<float> v = resample_onto(raw, target, p.interp, outside, 3.0, &cropped);
  if (anatomy) {  // nearest neighbour onto the final grid
    Volume<float> m(anatomy->geom);
    std::copy(anatomy->data.begin(), anatomy->data.end(), m.data.begin());
    h.mask = threshold_mask(resample_onto(m, target, Interp::Nearest, 0.f, 3.0, &cropped), 0.5);
  } else {
    h.mask = threshold_mask(v, threshold);
  }
  const Vec3 before = raw.geom.spacing;
  const double anisotropy_ratio = 3.0;
  static const char* interp_names[] = {"nearest", "linear", "bspline"};
  h.steps.push_back({{"step", "resample"},
                     {"from_spacing_mm", vec(before)},
                     {"to_spacing_mm", vec(p.spacing)},
                     {"interpolation", interp_names[static_cast<int>(p.interp)]},
                     {"anisotropy_ratio", anisotropy_ratio},
                     {"direction", "output voxel centre -> input point (identity transform)"},
                     {"size", v.geom.size},
                     {"with", "the head mask on the final grid"},
                     {"seconds", seconds_since(t)}});

  if (p.brain_mask) {
    t = SteadyClock::now();
    const BrainMask b = brain_mask(v, h.mask, ct);
    nlohmann::json step = {
        {"step", "brain_mask"},
        {"method", "smoothed intensity range, erosion, component at the head's centre, holes filled"},
        {"found", b.found},
        {"volume_ml", b.volume_ml}};
    if (!ct) step["brain_intensity_mode"] = b.reference;
    if (b.found) {
      h.brain = b.mask;
    } else {
      step["note"] = b.note;
      h.warnings.push_back("no brain found (" + b.note + "): the head mask serves instead");
    }
    step["seconds"] = seconds_since(t);
    h.steps.push_back(step);
  }
  const Volume<uint8_t>& inside = h.brain.data.empty() ? h.mask : h.brain;

  if (!ct && p.n4) {
    t = SteadyClock::now();
    v = n4_correct(v, inside);
    h.steps.push_back({{"step", "bias_correction"},
                       {"method", "N4 (ITK)"},
                       {"shrink", N4Options{}.shrink},
                       {"levels", N4Options{}.levels},
                       {"iterations_per_level", N4Options{}.iterations},
                       {"seconds", seconds_since(t)}});
  }
  t = SteadyClock::now();
  auto nonempty = [](const Volume<uint8_t>& mask) {
    return std::any_of(mask.data.begin(), mask.data.end(), [](uint8_t x) { return x != 0; }) ? &mask : nullptr;
  };
  const Volume<uint8_t>* m = nonempty(inside);
  // Foreground statistics of the intensities before normalization (HU for CT), inside the head
  // mask whether or not a brain mask was made: the fingerprint pools them into the dataset's clip
  // limits and z-score constants.
  if (foreground_statistics) {
    const Volume<uint8_t>* fg = nonempty(h.mask);
    const auto pr = percentiles(v, {0.5, 50, 99.5}, fg);
    double sum = 0, sq = 0, cnt = 0;
    for (size_t i = 0; i < v.data.size(); ++i)
      if (!fg || h.mask.data[i]) sum += v.data[i], sq += double(v.data[i]) * v.data[i], ++cnt;
    const double mean = cnt > 0 ? sum / cnt : 0;
    h.foreground = {{"p00_5", pr[0]},
                    {"p50", pr[1]},
                    {"p99_5", pr[2]},
                    {"mean", mean},
                    {"std", cnt > 0 ? std::sqrt(std::max(0.0, sq / cnt - mean * mean)) : 0.0},
                    {"voxels", cnt},
                    {"volume_ml", cnt * v.geom.spacing[0] * v.geom.spacing[1] * v.geom.spacing[2] / 1000}};
  }
  nlohmann::json norm = {{"step", "normalize"}, {"modality", dicom_modality}};
  const std::string& scheme = ct ? p.ct_normalization : p.mr_normalization;
  norm["scheme"] = scheme;
  if (ct && scheme == "windows") {
    v = ct_windows(v, standard_windows());
    for (const auto& w : standard_windows()) {
      h.channels.push_back(w.name);
      norm["windows"].push_back({{"name", w.name}, {"level", w.level}, {"width", w.width}});
    }
  } else if (ct && scheme == "clip_zscore") {
    v = clip_zscore(v, p.ct_clip_lo, p.ct_clip_hi, p.ct_mean, p.ct_std);
    norm["clip"] = {p.ct_clip_lo, p.ct_clip_hi};
    norm["mean"] = p.ct_mean;
    norm["std"] = p.ct_std;
  } else if (!ct && scheme == "percentile") {
    const auto pr = percentiles(v, {1, 99}, m);
    v = percentile_scale(v, 1, 99, m);
    norm["p1"] = pr[0];
    norm["p99"] = pr[1];
  } else if (!ct && scheme == "zscore") {
    v = zscore(v, m);
  } else if (!ct && scheme == "whitestripe") {
    const WhiteStripe w = whitestripe_fit(v, m, p.whitestripe_width, p.whitestripe_last);
    norm["mode"] = p.whitestripe_last ? "last" : "largest";
    norm["width"] = p.whitestripe_width;
    norm["found"] = w.found;
    if (w.found) {
      v = whitestripe_apply(v, w);
      norm["white_matter_mode"] = w.mode;
      norm["stripe"] = {w.lo, w.hi};
      norm["stripe_voxels"] = w.voxels;
      norm["mean"] = w.mean;
      norm["sd"] = w.sd;
    } else {
      v = zscore(v, m);
      norm["note"] = w.note;
      norm["fallback"] = "zscore";
      h.warnings.push_back("WhiteStripe: " + w.note + ": z-score instead");
    }
  } else if (!ct && scheme == "nyul") {
    v = nyul_apply(v, p.nyul, m);
    norm["standard_landmarks"] = p.nyul.standard;
  } else if (scheme != "none") {
    throw Error(ErrorCode::Usage, "unknown normalization '" + scheme + "' for " + dicom_modality);
  }
  if (h.channels.empty()) h.channels.push_back(ct ? "ct" : "mr");
  h.image = std::move(v);
  norm["seconds"] = seconds_since(t);
  h.steps.push_back(norm);
  return h;
}

template Harmonized harmonize(const Volume<float>&, const std::string&, const HarmonizeParams&, const Volume<uint8_t>*,
                              bool);
template Harmonized harmonize(const Volume<int16_t>&, const std::string&, const HarmonizeParams&,
                              const Volume<uint8_t>*, bool);

json harmonize_params_to_json(const HarmonizeParams& p) {
  return {{"orientation", p.orientation},
          {"spacing_mm", p.spacing},
          {"interp", p.interp == Interp::BSpline   ? "bspline"
                     : p.interp == Interp::Nearest ? "nearest"
                                                   : "linear"},
          {"crop", p.crop},
          {"crop_margin_mm", p.crop_margin_mm},
          {"ct_normalization", p.ct_normalization},
          {"ct_clip", {p.ct_clip_lo, p.ct_clip_hi}},
          {"ct_mean", p.ct_mean},
          {"ct_std", p.ct_std},
          {"mr_normalization", p.mr_normalization},
          {"n4", p.n4},
          {"brain_mask", p.brain_mask},
          {"whitestripe", {{"width", p.whitestripe_width}, {"mode", p.whitestripe_last ? "last" : "largest"}}},
          {"nyul",
           {{"percentiles", p.nyul.percentiles},
            {"standard", p.nyul.standard},
            {"scale_min", p.nyul.scale_min},
            {"scale_max", p.nyul.scale_max}}}};
}

HarmonizeParams harmonize_params_from_json(const json& j) {
  HarmonizeParams p;
  try {
    p.orientation = j.at("orientation");
    p.spacing = j.at("spacing_mm").get<Vec3>();
    const std::string in = j.at("interp");
    p.interp = in == "bspline" ? Interp::BSpline : in == "nearest" ? Interp::Nearest : Interp::Linear;
    p.crop = j.at("crop");
    p.crop_margin_mm = j.at("crop_margin_mm");
    p.ct_normalization = j.at("ct_normalization");
    p.ct_clip_lo = j.at("ct_clip")[0];
    p.ct_clip_hi = j.at("ct_clip")[1];
    p.ct_mean = j.at("ct_mean");
    p.ct_std = j.at("ct_std");
    p.mr_normalization = j.at("mr_normalization");
    p.n4 = j.at("n4");
    // (absent in files written before brain masks and WhiteStripe: their defaults)
    p.brain_mask = j.value("brain_mask", false);
    if (j.contains("whitestripe")) {
      p.whitestripe_width = j.at("whitestripe").at("width");
      const std::string mode = j.at("whitestripe").at("mode");
      if (mode != "last" && mode != "largest")
        throw Error(ErrorCode::CorruptInput, "harmonization parameters: WhiteStripe mode '" + mode + "'");
      p.whitestripe_last = mode == "last";
    }
    p.nyul.percentiles = j.at("nyul").at("percentiles").get<std::vector<double>>();
    p.nyul.standard = j.at("nyul").at("standard").get<std::vector<double>>();
    p.nyul.scale_min = j.at("nyul").at("scale_min");
    p.nyul.scale_max = j.at("nyul").at("scale_max");
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("harmonization parameters: ") + e.what());
  }
  return p;
}

}  // namespace aneura
