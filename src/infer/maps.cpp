#include "infer/maps.hpp"

#include <algorithm>

namespace aneura {

torch::Tensor heatmap_probabilities(const torch::Tensor& aneurysm) {
  const auto a = aneurysm.to(torch::kCPU, torch::kDouble).flatten(1);  // [14, V]
  const int64_t k = a.size(0);
  return torch::cat({a.slice(0, 1, k).amax(1), (1 - a[0]).amax().unsqueeze(0)}).contiguous();
}

std::array<torch::Tensor, 3> index_on(const Geometry& from, const Geometry& to, torch::Dtype dtype) {
  const auto& n = to.size;
  const Vec3 t = from.world_to_index(to.index_to_world({0, 0, 0}));
  std::array<Vec3, 3> m;
  for (int c = 0; c < 3; ++c) {
    Vec3 e{0, 0, 0};
    e[c] = 1;
    m[static_cast<size_t>(c)] = from.world_to_index(to.index_to_world(e)) - t;
  }
  std::array<torch::Tensor, 3> axis;
  for (int c = 0; c < 3; ++c) {
    std::vector<int64_t> shape{1, 1, 1};
    shape[static_cast<size_t>(c)] = n[c];
    axis[static_cast<size_t>(c)] = torch::arange(n[c], dtype).reshape(shape);
  }
  std::array<torch::Tensor, 3> out;
  for (int k = 0; k < 3; ++k)
    out[static_cast<size_t>(k)] =
        (axis[0] * m[0][k] + axis[1] * m[1][k] + axis[2] * m[2][k] + t[k]).expand({n[0], n[1], n[2]});
  return out;
}

torch::Tensor field_distance_mm(const Geometry& image, const Geometry& roi) {
  const auto idx = index_on(image, roi);
  torch::Tensor dist;
  for (int k = 0; k < 3; ++k) {
    const auto& i = idx[static_cast<size_t>(k)];
    const auto d = torch::minimum(i + 0.5, image.size[k] - 0.5 - i) * image.spacing[k];
    dist = dist.defined() ? torch::minimum(dist, d) : d;
  }
  return dist.contiguous();
}

torch::Tensor field_edge_weights(const torch::Tensor& distance_mm, double margin_mm) {
  if (margin_mm <= 0) return torch::ones(distance_mm.sizes());
  return ((distance_mm - margin_mm / 2) / (margin_mm / 2)).clamp(0, 1).to(torch::kFloat).contiguous();
}

torch::Tensor field_edge_weights(const Geometry& image, const Geometry& roi, double margin_mm) {
  return field_edge_weights(field_distance_mm(image, roi), margin_mm);
}

void damp_field_edge(torch::Tensor& aneurysm, const torch::Tensor& w) {
  const int64_t k = aneurysm.size(0);
  auto fg = aneurysm.slice(0, 1, k) * w.to(aneurysm.scalar_type()).unsqueeze(0);
  aneurysm = torch::cat({(1 - fg.sum(0)).clamp_min(0).unsqueeze(0), fg}).contiguous();
}

std::array<double, kNumLocations> location_prior_evidence(const torch::Tensor& aneurysm, const Geometry& grid,
                                                          const Vec3& roi_centre, const LocationPrior& prior,
                                                          double sigma_mm) {
  const auto any_flat = (1 - aneurysm[0]).flatten();
  const auto top = any_flat.topk(std::min<int64_t>(4096, any_flat.numel()));
  const auto values = std::get<0>(top).contiguous(), where = std::get<1>(top).contiguous();
  const float floor = 0.1f * values[0].item<float>();
  const int64_t ny = aneurysm.size(2), nz = aneurysm.size(3);
  std::array<double, kNumLocations> best{};
  for (int64_t i = 0; i < values.numel(); ++i) {
    const float v = values.data_ptr<float>()[i];
    if (v < floor) break;  // sorted, largest first
    const int64_t flat = where.data_ptr<int64_t>()[i];
    const Vec3 at = grid.index_to_world({double(flat / (ny * nz)), double((flat / nz) % ny), double(flat % nz)});
    const auto post = prior.posterior(at - roi_centre, sigma_mm);
    for (int k = 0; k < kNumLocations; ++k) best[k] = std::max(best[k], v * post[k]);
  }
  return best;
}

std::vector<PredictedPoint> heatmap_points(const torch::Tensor& aneurysm, const torch::Tensor& field_mm,
                                           const Geometry& grid, const PointOptions& o) {
  std::vector<PredictedPoint> points;
  if (o.max_points <= 0) return points;
  auto any = (1 - aneurysm[0]).masked_fill(field_mm < 0, -1).contiguous();
  auto acc = any.accessor<float, 3>();
  const auto hacc = aneurysm.accessor<float, 4>();
  const int64_t nx = any.size(0), ny = any.size(1), nz = any.size(2);
  for (int k = 0; k < o.max_points; ++k) {
    int64_t ix = 0, iy = 0, iz = 0;
    float pmax = -1;
    for (int64_t a = 0; a < nx; ++a)
      for (int64_t b = 0; b < ny; ++b)
        for (int64_t c = 0; c < nz; ++c)
          if (acc[a][b][c] > pmax) pmax = acc[a][b][c], ix = a, iy = b, iz = c;
    if (pmax < 0 || (k > 0 && pmax < o.min_probability)) break;
    PredictedPoint pt;
    pt.world_lps = grid.index_to_world({double(ix), double(iy), double(iz)});
    pt.probability = pmax;
    double total = 0;
    for (int c = 1; c < kNumLabels; ++c) total += hacc[c][ix][iy][iz];
    total = std::max(total, 1e-12);
    for (int c = 0; c < kNumLocations; ++c) {
      pt.location[c] = hacc[c + 1][ix][iy][iz] / total;
      if (pt.location[c] > pt.location[pt.column]) pt.column = c;
    }
    points.push_back(pt);
    const double rad = o.separation_mm;  // suppress the neighbourhood
    for (int64_t a = 0; a < nx; ++a)
      for (int64_t b = 0; b < ny; ++b)
        for (int64_t c = 0; c < nz; ++c) {
          const double dx = (a - ix) * grid.spacing[0], dy = (b - iy) * grid.spacing[1],
                       dz = (c - iz) * grid.spacing[2];
          if (dx * dx + dy * dy + dz * dz <= rad * rad) acc[a][b][c] = std::min(acc[a][b][c], 0.f);
        }
  }
  return points;
}

}  // namespace aneura
