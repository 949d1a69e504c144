#include "harmonize/normalize.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace aneura {

namespace {

std::vector<float> masked_values(const Volume<float>& v, const Volume<uint8_t>* mask) {
  if (mask && mask->data.size() != v.data.size()) throw Error(ErrorCode::Internal, "mask and image differ in size");
  std::vector<float> out;
  out.reserve(v.data.size());
  for (size_t i = 0; i < v.data.size(); ++i)
    if (!mask || mask->data[i]) out.push_back(v.data[i]);
  return out;
}

template <class F>
Volume<float> map(const Volume<float>& v, F f) {
  Volume<float> out(v.geom, v.volumes);
  for (size_t i = 0; i < v.data.size(); ++i) out.data[i] = static_cast<float>(f(v.data[i]));
  return out;
}

}  // namespace

namespace {
// p-th percentile of sorted values, linear between order statistics (numpy's default).
double sorted_percentile(const std::vector<float>& sorted, double p) {
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * (sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - lo) * (double(sorted[hi]) - sorted[lo]);
}
}  // namespace

namespace {
// The same order statistics as sorted_percentile without sorting: for the percentiles in increasing
// order, nth_element places the lower neighbour (each search starts where the last one ended, so
// the work is linear per percentile) and the upper neighbour is the smallest value above it.
std::vector<double> select_percentiles(std::vector<float>& values, const std::vector<double>& ps) {
  std::vector<size_t> order(ps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ps[a] < ps[b]; });
  std::vector<double> out(ps.size());
  auto from = values.begin();
  for (size_t i : order) {
    const double pos = std::clamp(ps[i], 0.0, 100.0) / 100.0 * (values.size() - 1);
    const auto lo = values.begin() + static_cast<std::ptrdiff_t>(std::floor(pos));
    std::nth_element(from, lo, values.end());
    const double a = *lo, b = lo + 1 < values.end() ? *std::min_element(lo + 1, values.end()) : a;
    out[i] = a + (pos - std::floor(pos)) * (b - a);
    from = lo;
  }
  return out;
}
}  // namespace

double percentile(std::vector<float> values, double p) {
  if (values.empty()) throw Error(ErrorCode::Internal, "percentile of no values");
  return select_percentiles(values, {p})[0];
}

std::vector<double> percentiles(const Volume<float>& v, const std::vector<double>& ps, const Volume<uint8_t>* mask) {
  std::vector<float> values = masked_values(v, mask);
  if (values.empty()) throw Error(ErrorCode::Internal, "percentiles of an empty mask");
  return select_percentiles(values, ps);
}

Volume<float> ct_window(const Volume<float>& hu, double level, double width) {
  const double lo = level - width / 2;
  return map(hu, [&](float x) { return std::clamp((x - lo) / width, 0.0, 1.0); });
}

const std::vector<Window>& standard_windows() {
  static const std::vector<Window> w = {
      {"brain", 40, 80}, {"subdural", 80, 200}, {"bone", 600, 2800}, {"vessel", 300, 600}};
  return w;
}

Volume<float> ct_windows(const Volume<float>& hu, const std::vector<Window>& windows) {
  if (hu.volumes != 1) throw Error(ErrorCode::Internal, "ct_windows expects one volume");
  Volume<float> out(hu.geom, static_cast<int64_t>(windows.size()));
  const size_t n = hu.data.size();
  for (size_t c = 0; c < windows.size(); ++c) {
    const double lo = windows[c].level - windows[c].width / 2, w = windows[c].width;
    for (size_t i = 0; i < n; ++i)
      out.data[c * n + i] = static_cast<float>(std::clamp((hu.data[i] - lo) / w, 0.0, 1.0));
  }
  return out;
}

Volume<float> clip_zscore(const Volume<float>& v, double lo, double hi, double mean, double std) {
  if (!(std > 0)) std = 1;
  return map(v, [&](float x) { return (std::clamp<double>(x, lo, hi) - mean) / std; });
}

Volume<float> percentile_scale(const Volume<float>& v, double p_lo, double p_hi, const Volume<uint8_t>* mask) {
  const auto p = percentiles(v, {p_lo, p_hi}, mask);
  const double span = p[1] > p[0] ? p[1] - p[0] : 1.0;
  return map(v, [&](float x) { return std::clamp((x - p[0]) / span, 0.0, 1.0); });
}

Volume<float> zscore(const Volume<float>& v, const Volume<uint8_t>* mask) {
  const std::vector<float> vals = masked_values(v, mask);
  if (vals.empty()) throw Error(ErrorCode::Internal, "z-score over an empty mask");
  double sum = 0, sq = 0;
  for (float x : vals) sum += x;
  const double mean = sum / vals.size();
  for (float x : vals) sq += (x - mean) * (x - mean);
  double sd = std::sqrt(sq / vals.size());
  if (!(sd > 0)) sd = 1;
  return map(v, [&](float x) { return (x - mean) / sd; });
}

std::vector<double> smoothed_histogram(const std::vector<float>& values, double lo, double hi, int bins,
                                       double sigma_bins) {
  std::vector<double> h(static_cast<size_t>(bins), 0.0), s(static_cast<size_t>(bins), 0.0);
  if (!(hi > lo) || bins < 1) return s;
  for (float x : values)
    if (x >= lo && x <= hi) h[std::min(bins - 1, static_cast<int>((x - lo) / (hi - lo) * bins))] += 1;
  const int reach = static_cast<int>(std::ceil(3 * sigma_bins));
  for (int k = 0; k < bins; ++k) {
    double sum = 0, weight = 0;
    for (int d = -reach; d <= reach; ++d)
      if (k + d >= 0 && k + d < bins) {
        const double w = std::exp(-d * d / (2 * sigma_bins * sigma_bins));
        sum += h[k + d] * w, weight += w;
      }
    s[k] = sum / weight;
  }
  return s;
}

WhiteStripe whitestripe_fit(const Volume<float>& v, const Volume<uint8_t>* mask, double width, bool last_mode) {
  WhiteStripe w;
  std::vector<float> values = masked_values(v, mask);
  if (values.size() < 100) {
    w.note = "fewer than 100 voxels to take a histogram of";
    return w;
  }
  std::sort(values.begin(), values.end());
  const double lo = sorted_percentile(values, 0.5), hi = sorted_percentile(values, last_mode ? 96 : 99.5);
  if (!(hi > lo)) {
    w.note = "the intensities have no spread";
    return w;
  }
  constexpr int kBins = 200;
  const std::vector<double> s = smoothed_histogram(values, lo, hi, kBins, 3.0);
  const double top = *std::max_element(s.begin(), s.end());
  // A peak: a local maximum with a valley at least 20 % lower on both sides (on its lower side only
  // for the last mode, whose upper side the 96th percentile cuts).
  auto is_peak = [&](int k, bool both_sides) {
    if (k == 0 || k == kBins - 1 || s[k] < s[k - 1] || s[k] < s[k + 1]) return false;
    const double left = *std::min_element(s.begin(), s.begin() + k),
                 right = *std::min_element(s.begin() + k + 1, s.end());
    return left <= 0.8 * s[k] && (!both_sides || right <= 0.8 * s[k]);
  };
  int mode = -1;
  if (last_mode) {
    for (int k = kBins - 2; k > 0 && mode < 0; --k)
      if (s[k] >= 0.1 * top && is_peak(k, false)) mode = k;
  } else {
    const int k = static_cast<int>(std::max_element(s.begin(), s.end()) - s.begin());
    if (is_peak(k, true)) mode = k;
  }
  if (mode < 0) {
    w.note = "no white-matter peak in the histogram";
    return w;
  }
  w.mode = lo + (mode + 0.5) * (hi - lo) / kBins;
  const double q = static_cast<double>(std::lower_bound(values.begin(), values.end(), w.mode) - values.begin()) /
                   static_cast<double>(values.size());
  w.lo = sorted_percentile(values, std::max(0.0, q - width) * 100);
  w.hi = sorted_percentile(values, std::min(1.0, q + width) * 100);
  double sum = 0, sq = 0;
  for (auto it = std::upper_bound(values.begin(), values.end(), w.lo); it != values.end() && *it < w.hi; ++it)
    sum += *it, sq += double(*it) * *it, ++w.voxels;
  if (w.voxels < 10) {
    w.note = "the white-matter stripe holds fewer than 10 voxels";
    return w;
  }
  w.mean = sum / static_cast<double>(w.voxels);
  w.sd = std::sqrt(std::max(0.0, sq / static_cast<double>(w.voxels) - w.mean * w.mean));
  if (!(w.sd > 0)) {
    w.note = "the white-matter stripe has no spread";
    return w;
  }
  w.found = true;
  return w;
}

Volume<float> whitestripe_apply(const Volume<float>& v, const WhiteStripe& w) {
  if (!w.found) throw Error(ErrorCode::Internal, "WhiteStripe applied without a stripe");
  return map(v, [&](float x) { return (x - w.mean) / w.sd; });
}

NyulModel nyul_fit_landmarks(const std::vector<std::vector<double>>& landmarks, NyulModel model) {
  if (landmarks.empty()) throw Error(ErrorCode::Usage, "Nyul fitting needs at least one training image");
  if (model.percentiles.size() < 2) throw Error(ErrorCode::Usage, "Nyul needs at least two landmarks");
  model.standard.assign(model.percentiles.size(), 0.0);
  for (const auto& lm : landmarks) {
    if (lm.size() != model.percentiles.size()) throw Error(ErrorCode::Internal, "landmark count mismatch");
    const double span = lm.back() > lm.front() ? lm.back() - lm.front() : 1.0;
    for (size_t k = 0; k < lm.size(); ++k)
      model.standard[k] += model.scale_min + (lm[k] - lm.front()) / span * (model.scale_max - model.scale_min);
  }
  for (double& s : model.standard) s /= static_cast<double>(landmarks.size());
  return model;
}

NyulModel nyul_fit(const std::vector<const Volume<float>*>& images, const std::vector<const Volume<uint8_t>*>& masks,
                   NyulModel model) {
  std::vector<std::vector<double>> landmarks;
  for (size_t n = 0; n < images.size(); ++n)
    landmarks.push_back(percentiles(*images[n], model.percentiles, n < masks.size() ? masks[n] : nullptr));
  return nyul_fit_landmarks(landmarks, model);
}

Volume<float> nyul_apply(const Volume<float>& v, const NyulModel& model, const Volume<uint8_t>* mask) {
  if (model.standard.size() != model.percentiles.size() || model.standard.size() < 2)
    throw Error(ErrorCode::Usage, "Nyul model is not fitted");
  const auto lm = percentiles(v, model.percentiles, mask);
  const size_t last = lm.size() - 1;
  return map(v, [&](float x) {
    // segment: first landmark above x (clamped to the end segments, which extrapolate linearly)
    size_t k = std::upper_bound(lm.begin(), lm.end(), x) - lm.begin();
    k = std::clamp<size_t>(k, 1, last);
    const double x0 = lm[k - 1], x1 = lm[k], y0 = model.standard[k - 1], y1 = model.standard[k];
    return x1 > x0 ? y0 + (x - x0) * (y1 - y0) / (x1 - x0) : y0;
  });
}

}  // namespace aneura
