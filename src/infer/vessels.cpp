#include "infer/vessels.hpp"

#include <algorithm>
#include <cmath>

#include "infer/components.hpp"
#include "infer/maps.hpp"

namespace aneura {

namespace {

// Maps [C, X, Y, Z] on `from` sampled at the voxels of `to` (trilinear; 0 outside `from`).
torch::Tensor sample_between(const torch::Tensor& maps, const Geometry& from, const Geometry& to) {
  const auto idx = index_on(from, to, torch::kFloat);
  std::array<torch::Tensor, 3> norm;  // normalized source coordinate per source axis (align_corners)
  for (int k = 0; k < 3; ++k)
    norm[static_cast<size_t>(k)] = idx[static_cast<size_t>(k)] * (2.0 / std::max<double>(1, from.size[k] - 1)) - 1;
  // grid_sample's last grid axis is (W, H, D) = the source's (Z, Y, X)
  const auto grid = torch::stack({norm[2], norm[1], norm[0]}, -1).unsqueeze(0);
  namespace F = torch::nn::functional;
  return F::grid_sample(
             maps.to(torch::kFloat).unsqueeze(0), grid,
             F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true))
      .squeeze(0);
}

// Max-filter of [C, X, Y, Z] over a box reaching margin_mm along each axis of `grid`: one pass per
// axis (a box's maximum is separable), each no wider than the grid needs.
torch::Tensor dilate(const torch::Tensor& t, const Geometry& grid, double margin_mm) {
  namespace F = torch::nn::functional;
  auto out = t.unsqueeze(0);
  for (int a = 0; a < 3; ++a) {
    const int64_t reach =
        std::min<int64_t>(static_cast<int64_t>(std::floor(margin_mm / grid.spacing[a])), grid.size[a] - 1);
    if (reach <= 0) continue;
    std::vector<int64_t> k{1, 1, 1}, pad{0, 0, 0};
    k[static_cast<size_t>(a)] = 2 * reach + 1;
    pad[static_cast<size_t>(a)] = reach;
    out = F::max_pool3d(out, F::MaxPool3dFuncOptions(k).stride(1).padding(pad));
  }
  return out.squeeze(0);
}

}  // namespace

VesselMap make_vessel_map(torch::Tensor territories, const Geometry& grid, const VesselStageOptions& o) {
  VesselMap v;
  v.grid = grid;
  v.p = territories.to(torch::kCPU, torch::kFloat).contiguous();
  v.dropped_components = drop_small_components(v.p, grid, o.threshold, o.min_component_mm3);
  const auto mask = (1 - v.p[0]) >= o.threshold;
  const int64_t count = mask.sum().item<int64_t>();
  v.volume_ml = static_cast<double>(count) * grid.spacing[0] * grid.spacing[1] * grid.spacing[2] / 1000.0;
  v.found = v.volume_ml >= o.min_ml && count > 0;
  if (!v.found) {
    v.note = "the vessel stage found " + std::to_string(v.volume_ml).substr(0, 5) + " ml of vessel (under " +
             std::to_string(o.min_ml).substr(0, 4) + "): the aneurysm stage looked at the whole ROI";
    return v;
  }
  const auto idx = mask.nonzero();  // [count, 3]
  const auto lo = std::get<0>(idx.min(0)), hi = std::get<0>(idx.max(0));
  Vec3 a{0, 0, 0}, b{0, 0, 0};
  for (int k = 0; k < 3; ++k) {
    a[k] = static_cast<double>(lo[k].item<int64_t>());
    b[k] = static_cast<double>(hi[k].item<int64_t>());
  }
  const Vec3 wa = grid.index_to_world(a), wb = grid.index_to_world(b);
  for (int k = 0; k < 3; ++k) {
    v.lo[k] = std::min(wa[k], wb[k]);
    v.hi[k] = std::max(wa[k], wb[k]);
  }
  return v;
}

// Both are dilated on the vessel model's (coarser) grid, then sampled onto the ROI: the margin is
// rounded down to whole voxels of that grid, and the cost stays that of the coarse grid.
torch::Tensor vessel_neighbourhood(const VesselMap& map, const Geometry& roi, const VesselStageOptions& o) {
  const auto vessel = ((1 - map.p[0]) >= o.threshold).to(torch::kFloat).unsqueeze(0);
  return sample_between(dilate(vessel, map.grid, o.margin_mm), map.grid, roi)[0] >= 0.5;
}

torch::Tensor territory_distribution(const VesselMap& map, const Geometry& roi, const VesselStageOptions& o) {
  std::vector<int64_t> order;  // column c <- cowseg value column_to_cowseg(c)
  for (int c = 0; c < kNumLocations; ++c) order.push_back(column_to_cowseg(c));
  const auto by_column = map.p.index_select(0, torch::tensor(order, torch::kLong));
  const auto near = sample_between(dilate(by_column, map.grid, o.margin_mm), map.grid, roi);
  const auto total = near.sum(0, true);
  return torch::where(total > 1e-3, near / total.clamp_min(1e-3), torch::zeros_like(near)).contiguous();
}

torch::Tensor vessel_labels_on(const VesselMap& map, const Geometry& roi) {
  auto on_roi = sample_between(map.p, map.grid, roi);
  on_roi[0] += 1 - on_roi.sum(0);  // outside the vessel model's grid: background
  return on_roi.argmax(0);
}

std::array<double, kNumLocations> territory_evidence(const torch::Tensor& aneurysm, const torch::Tensor& territories) {
  const auto any = (1 - aneurysm[0].to(torch::kFloat)).unsqueeze(0);  // [1, X, Y, Z]
  const auto e = (any * territories).flatten(1).amax(1).to(torch::kDouble).contiguous();
  std::array<double, kNumLocations> out{};
  for (int c = 0; c < kNumLocations; ++c) out[c] = e[c].item<double>();
  return out;
}

}  // namespace aneura
