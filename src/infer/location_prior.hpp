// Where the aneurysms of each location lie relative to the ROI centre. The network's
// heatmap tells where an aneurysm is well before it tells which artery it sits on (after a 240 s
// demo run its location distribution at the points it found was near uniform), while the 13
// locations are anatomical: their offsets from the ROI centre (the Circle of Willis) separate them.
// The training cases' localizer points, each with its left-right mirror carrying the twin column,
// give a Gaussian kernel estimate of p(location | offset).
#pragma once
#include <array>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/geometry.hpp"
#include "core/labels.hpp"

namespace aneura {

class LocationPrior {
 public:
  LocationPrior() = default;
  // offset: world LPS mm of a localizer point minus its case's ROI centre; column 0..12.
  void add(const Vec3& offset_lps, int column);
  size_t size() const { return columns_.size(); }
  bool empty() const { return columns_.empty(); }
  // p(column | offset) for the 13 location columns (sums to 1): per column, the sum over the points
  // and their mirrors of exp(-d^2 / (2 sigma^2)), plus 1e-3 (so an offset far from every point
  // gets the uniform distribution), normalised. Uniform when empty.
  std::array<double, kNumLabels - 1> posterior(const Vec3& offset_lps, double sigma_mm) const;
  // [[x, y, z, column], ...] (the points as added, without their mirrors)
  nlohmann::json to_json() const;
  // Throws nlohmann::json::exception (type or range) on a malformed list, a column outside 0..12.
  static LocationPrior from_json(const nlohmann::json& j);

 private:
  std::vector<Vec3> offsets_;
  std::vector<int> columns_;
};

}  // namespace aneura
