#include "infer/location_prior.hpp"

#include <cmath>
#include <stdexcept>

namespace aneura {

void LocationPrior::add(const Vec3& offset_lps, int column) {
  if (column < 0 || column >= kNumLabels - 1) throw std::out_of_range("location column " + std::to_string(column));
  offsets_.push_back(offset_lps);
  columns_.push_back(column);
}

std::array<double, kNumLabels - 1> LocationPrior::posterior(const Vec3& o, double sigma_mm) const {
  constexpr int kLocations = kNumLabels - 1;
  std::array<double, kLocations> p{};
  p.fill(1e-3);
  const double inv = 1.0 / (2 * sigma_mm * sigma_mm);
  auto kernel = [&](const Vec3& q) {
    const double dx = o[0] - q[0], dy = o[1] - q[1], dz = o[2] - q[2];
    return std::exp(-(dx * dx + dy * dy + dz * dz) * inv);
  };
  for (size_t k = 0; k < columns_.size(); ++k) {
    const Vec3& q = offsets_[k];
    p[columns_[k]] += kernel(q);
    p[label_twin(columns_[k])] += kernel({-q[0], q[1], q[2]});  // the mirror: L negated, twin column
  }
  double total = 0;
  for (double v : p) total += v;
  for (double& v : p) v /= total;
  return p;
}

nlohmann::json LocationPrior::to_json() const {
  nlohmann::json j = nlohmann::json::array();
  for (size_t k = 0; k < columns_.size(); ++k)
    j.push_back({offsets_[k][0], offsets_[k][1], offsets_[k][2], columns_[k]});
  return j;
}

LocationPrior LocationPrior::from_json(const nlohmann::json& j) {
  LocationPrior p;
  for (const auto& e : j) {
    if (!e.is_array() || e.size() != 4)
      throw nlohmann::json::type_error::create(302, "a location point is [x, y, z, column]", &e);
    const int column = e.at(3).get<int>();
    if (column < 0 || column >= kNumLabels - 1)
      throw nlohmann::json::out_of_range::create(401, "location column " + std::to_string(column) + " outside 0..12",
                                                 &e);
    p.add({e.at(0).get<double>(), e.at(1).get<double>(), e.at(2).get<double>()}, column);
  }
  return p;
}

}  // namespace aneura
