// Training windows of the 2.5D family (model/dualstream.hpp): make_slice_sample.
#include <algorithm>
#include <cmath>

#include "model/dualstream.hpp"
#include "model/input.hpp"
#include "train/data.hpp"

namespace aneura {

Sample make_slice_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng,
                         const AugmentOptions& aug) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const auto& n = c.image.geom.size;
  const int W = cfg.patch_size[2], h = W / 2;
  const int64_t S = cfg.patch_size[0];
  // Points as voxel indices of the case
  std::vector<std::pair<Vec3, int>> pts;
  for (const auto& [w, col] : c.points) pts.push_back({c.image.geom.world_to_index(w), col});
  // The window's centre slice: near a point (focus_on_aneurysm), else anywhere; unaugmented, a point's or the middle
  const bool a = aug.enabled;
  int64_t k = n[2] / 2;
  if (!pts.empty() && (!a || u(rng) < aug.focus_on_aneurysm)) {
    const auto& p = pts[static_cast<size_t>(u(rng) * pts.size()) % pts.size()].first;
    k = std::lround(p[2]) + (a ? static_cast<int64_t>(std::floor(u(rng) * W)) - h : 0);
  } else if (a) {
    k = static_cast<int64_t>(u(rng) * n[2]);
  }
  k = std::clamp<int64_t>(k, 0, n[2] - 1);
  const int64_t lo = std::max<int64_t>(0, k - h), hi = std::min<int64_t>(n[2] - 1, k + h);
  const auto raw = window_at(raw_slices(c.image, lo, hi - lo + 1), k - lo, W);  // [W, Y, X], ends repeated

  // Labels: the locations whose aneurysm spheres reach into the window's slices; a positive case
  // without label maps (no localizers) keeps the case's labels.
  Sample s;
  s.labels = torch::zeros({kNumLabels});
  const bool maps = c.label_maps.volumes >= 2 && !c.label_maps.data.empty();
  if (maps) {
    const size_t plane = static_cast<size_t>(n[0] * n[1]), vol = plane * static_cast<size_t>(n[2]);
    for (int64_t z = lo; z <= hi; ++z)
      for (size_t i = 0; i < plane; ++i) {
        const int v = static_cast<int>(std::lround(c.label_maps.data[vol + static_cast<size_t>(z) * plane + i]));
        if (v > 0 && v <= kNumLocations) s.labels[v - 1] = 1.0f, s.labels[kPresentColumn] = 1.0f;
      }
  } else if (c.labels[kPresentColumn]) {
    for (int col = 0; col < kNumLabels; ++col) s.labels[col] = static_cast<float>(c.labels[col]);
  }

  // The ROI stream: a box of kBoxFraction of the slice around a point in the window, or around a
  // random place of the slice's middle (negatives get crops too, so a crop says nothing by itself),
  // with its centre as coordinates; otherwise the full window again and zero coordinates, as at inference.
  const auto full = resize_slices(raw, S);
  torch::Tensor roi = full, coords = torch::zeros({2});
  if (a && u(rng) < 0.5) {
    double ci = (0.15 + 0.7 * u(rng)) * (n[0] - 1), cj = (0.15 + 0.7 * u(rng)) * (n[1] - 1);
    std::vector<const Vec3*> inside;
    for (const auto& [p, col] : pts)
      if (std::abs(p[2] - k) <= h + 0.5) inside.push_back(&p);
    if (!inside.empty()) {
      const Vec3& p = *inside[static_cast<size_t>(u(rng) * inside.size()) % inside.size()];
      ci = p[0], cj = p[1];
    }
    const double bx = std::max(2.0, kBoxFraction * n[0] / 2), by = std::max(2.0, kBoxFraction * n[1] / 2);
    auto edge = [](double v, int64_t size) { return std::clamp<int64_t>(std::lround(v), 0, size - 1); };
    const int64_t x0 = edge(ci - bx, n[0]), x1 = std::max(x0 + 1, edge(ci + bx, n[0]));
    const int64_t y0 = edge(cj - by, n[1]), y1 = std::max(y0 + 1, edge(cj + by, n[1]));
    roi = resize_slices(raw.slice(1, y0, y1 + 1).slice(2, x0, x1 + 1), S);
    coords = torch::tensor({static_cast<float>(ci / std::max<int64_t>(1, n[0] - 1)),
                            static_cast<float>(cj / std::max<int64_t>(1, n[1] - 1))});
  }
  const bool identical = roi.data_ptr() == full.data_ptr();
  torch::Tensor x = torch::cat({full, roi});  // [2W, S, S]
  if (a) {
    x = augment_intensity(x.unsqueeze(-1), rng).squeeze(-1);
    if (identical) x = torch::cat({x.slice(0, 0, W), x.slice(0, 0, W)});
    if (u(rng) < aug.flip_probability) {  // columns are x: a left-right mirror, twin labels swapped
      x = x.flip({2});
      if (!identical) coords[0] = 1 - coords[0];
      s.labels = s.labels.index_select(0, label_twin_lut());
    }
  }
  s.image = x.contiguous();
  s.coords = coords;
  s.vessel = torch::zeros({0}, torch::kLong);
  s.aneurysm = torch::zeros({0}, torch::kLong);
  s.modality = c.modality_id;
  s.labelled = c.labelled;
  return s;
}

}  // namespace aneura
