#include "harmonize/crop.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "harmonize/normalize.hpp"

namespace aneura {

Volume<uint8_t> threshold_mask(const Volume<float>& v, double threshold) {
  Volume<uint8_t> m(v.geom);
  for (size_t i = 0; i < m.data.size(); ++i) m.data[i] = v.data[i] > threshold ? 1 : 0;
  return m;
}

template <class T>
double mr_foreground_threshold(const Volume<T>& v) {
  // a strided sample is plenty for two percentiles
  std::vector<float> sample;
  const size_t n = static_cast<size_t>(v.geom.voxel_count()), step = std::max<size_t>(1, n / 200000);
  for (size_t i = 0; i < n; i += step) sample.push_back(static_cast<float>(v.data[i]));
  const double p1 = percentile(sample, 1), p99 = percentile(sample, 99);
  return p1 + 0.1 * (p99 - p1);
}

template double mr_foreground_threshold(const Volume<float>&);
template double mr_foreground_threshold(const Volume<int16_t>&);

namespace {

template <class Pred>
Box box_of(const Geometry& g, double margin_mm, Pred inside) {
  const auto& n = g.size;
  Box b;
  b.lo = {n[0], n[1], n[2]};
  b.hi = {0, 0, 0};
  for (int64_t k = 0; k < n[2]; ++k)
    for (int64_t j = 0; j < n[1]; ++j) {
      int64_t first = -1, last = -1;
      for (int64_t i = 0; i < n[0]; ++i)
        if (inside(static_cast<size_t>(i + n[0] * (j + n[1] * k)))) {
          if (first < 0) first = i;
          last = i;
        }
      if (first < 0) continue;
      b.lo[0] = std::min(b.lo[0], first);
      b.hi[0] = std::max(b.hi[0], last + 1);
      b.lo[1] = std::min(b.lo[1], j);
      b.hi[1] = std::max(b.hi[1], j + 1);
      b.lo[2] = std::min(b.lo[2], k);
      b.hi[2] = std::max(b.hi[2], k + 1);
    }
  if (b.empty()) return Box{{0, 0, 0}, {n[0], n[1], n[2]}};
  for (int a = 0; a < 3; ++a) {
    const int64_t m = static_cast<int64_t>(std::ceil(margin_mm / g.spacing[a]));
    b.lo[a] = std::max<int64_t>(0, b.lo[a] - m);
    b.hi[a] = std::min<int64_t>(n[a], b.hi[a] + m);
  }
  return b;
}

}  // namespace

Box mask_box(const Volume<uint8_t>& mask, double margin_mm) {
  return box_of(mask.geom, margin_mm, [&](size_t i) { return mask.data[i] != 0; });
}

template <class T>
Box threshold_box(const Volume<T>& v, double threshold, double margin_mm) {
  return box_of(v.geom, margin_mm, [&](size_t i) { return v.data[i] > threshold; });
}

template Box threshold_box(const Volume<float>&, double, double);
template Box threshold_box(const Volume<int16_t>&, double, double);

Geometry crop_geometry(const Geometry& g, const Box& b) {
  for (int a = 0; a < 3; ++a)
    if (b.lo[a] < 0 || b.hi[a] > g.size[a] || b.hi[a] <= b.lo[a])
      throw Error(ErrorCode::Internal, "crop box outside the volume");
  Geometry c = g;
  c.origin = g.index_to_world({double(b.lo[0]), double(b.lo[1]), double(b.lo[2])});
  for (int a = 0; a < 3; ++a) c.size[a] = b.hi[a] - b.lo[a];
  return c;
}

template <class T>
Volume<T> crop(const Volume<T>& v, const Box& b) {
  const Geometry g = crop_geometry(v.geom, b);
  Volume<T> out(g, v.volumes);
  const size_t nin = static_cast<size_t>(v.geom.voxel_count()), nout = static_cast<size_t>(g.voxel_count());
  for (int64_t t = 0; t < v.volumes; ++t)
    for (int64_t k = 0; k < g.size[2]; ++k)
      for (int64_t j = 0; j < g.size[1]; ++j) {
        const T* src = v.data.data() + t * nin + v.offset(b.lo[0], b.lo[1] + j, b.lo[2] + k);
        std::copy(src, src + g.size[0], out.data.data() + t * nout + out.offset(0, j, k));
      }
  return out;
}

template Volume<float> crop(const Volume<float>&, const Box&);
template Volume<uint8_t> crop(const Volume<uint8_t>&, const Box&);

}  // namespace aneura
