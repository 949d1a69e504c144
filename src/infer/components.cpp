#include "infer/components.hpp"

#include <itkConnectedComponentImageFilter.h>
#include <itkImage.h>

#include <cmath>

#include "core/error.hpp"

namespace aneura {

Components connected_components(const torch::Tensor& value, double threshold, const Geometry& grid) {
  if (value.dim() != 3) throw Error(ErrorCode::Internal, "connected_components expects [X, Y, Z]");
  const auto v = value.to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t nx = v.size(0), ny = v.size(1), nz = v.size(2), n = v.numel();
  // The tensor's memory order (z fastest) as an ITK image of axes (z, y, x): face connectivity
  // does not depend on the axes' order, and the labels come back in the tensor's order.
  using Mask = itk::Image<uint8_t, 3>;
  using Labels = itk::Image<int32_t, 3>;
  auto mask = Mask::New();
  Mask::SizeType size;
  size[0] = static_cast<itk::SizeValueType>(nz);
  size[1] = static_cast<itk::SizeValueType>(ny);
  size[2] = static_cast<itk::SizeValueType>(nx);
  mask->SetRegions(size);
  mask->Allocate();
  const float* p = v.data_ptr<float>();
  uint8_t* m = mask->GetBufferPointer();
  for (int64_t i = 0; i < n; ++i) m[i] = p[i] > threshold ? 1 : 0;
  auto cc = itk::ConnectedComponentImageFilter<Mask, Labels>::New();
  cc->SetInput(mask);
  cc->SetFullyConnected(false);
  cc->Update();
  Components out;
  out.labels = torch::empty({nx, ny, nz}, torch::kInt);
  std::copy(cc->GetOutput()->GetBufferPointer(), cc->GetOutput()->GetBufferPointer() + n,
            out.labels.data_ptr<int32_t>());
  const size_t count = cc->GetObjectCount();
  std::vector<double> weight(count, 0.0), voxels(count, 0.0);
  out.centre.assign(count, Vec3{0, 0, 0});
  out.peak.assign(count, 0.f);
  const int32_t* l = out.labels.data_ptr<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (l[i] <= 0) continue;
    const size_t c = static_cast<size_t>(l[i] - 1);
    const double w = p[i];
    const Vec3 idx{static_cast<double>(i / (ny * nz)), static_cast<double>((i / nz) % ny), static_cast<double>(i % nz)};
    for (int a = 0; a < 3; ++a) out.centre[c][a] += w * idx[a];
    weight[c] += w, voxels[c] += 1;
    out.peak[c] = std::max(out.peak[c], p[i]);
  }
  const double voxel_mm3 = grid.spacing[0] * grid.spacing[1] * grid.spacing[2];
  for (size_t c = 0; c < count; ++c) {
    out.volume_mm3.push_back(voxels[c] * voxel_mm3);
    for (int a = 0; a < 3; ++a) out.centre[c][a] /= std::max(weight[c], 1e-12);
  }
  return out;
}

int drop_small_components(torch::Tensor& maps, const Geometry& grid, double threshold, double min_mm3) {
  if (min_mm3 <= 0) return 0;
  const Components c = connected_components(1 - maps[0], threshold, grid);
  std::vector<int32_t> small;
  for (size_t k = 0; k < c.volume_mm3.size(); ++k)
    if (c.volume_mm3[k] < min_mm3) small.push_back(static_cast<int32_t>(k + 1));
  if (small.empty()) return 0;
  const auto drop = torch::isin(c.labels, torch::tensor(small, torch::kInt));  // [X, Y, Z]
  maps.index_put_({torch::indexing::Slice(), drop}, 0.f);
  maps[0].masked_fill_(drop, 1.f);
  return static_cast<int>(small.size());
}

void points_to_centres(std::vector<PredictedPoint>& points, const torch::Tensor& maps, const Geometry& grid,
                       double threshold) {
  if (points.empty()) return;
  const Components c = connected_components(1 - maps[0], threshold, grid);
  const auto acc = c.labels.accessor<int32_t, 3>();
  for (auto& pt : points) {
    const Vec3 i = grid.world_to_index(pt.world_lps);
    const int64_t x = std::lround(i[0]), y = std::lround(i[1]), z = std::lround(i[2]);
    if (x < 0 || y < 0 || z < 0 || x >= c.labels.size(0) || y >= c.labels.size(1) || z >= c.labels.size(2)) continue;
    const int32_t l = acc[x][y][z];
    if (l > 0) pt.world_lps = grid.index_to_world(c.centre[static_cast<size_t>(l - 1)]);
  }
}

}  // namespace aneura
