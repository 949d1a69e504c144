#include "harmonize/orient.hpp"

#include <cmath>
#include <cstdint>

#include "core/error.hpp"

namespace aneura {

bool AxisMap::identity() const {
  for (int a = 0; a < 3; ++a)
    if (from[a] != a || flip[a]) return false;
  return true;
}

AxisMap orientation_map(const Geometry& g, const std::string& code) {
  if (code.size() != 3) throw Error(ErrorCode::Usage, "orientation must be three letters, e.g. RAS: '" + code + "'");
  // World (LPS) unit vector each letter names.
  auto letter = [&](char c) -> Vec3 {
    switch (c) {
      case 'L':
        return {1, 0, 0};
      case 'R':
        return {-1, 0, 0};
      case 'P':
        return {0, 1, 0};
      case 'A':
        return {0, -1, 0};
      case 'S':
        return {0, 0, 1};
      case 'I':
        return {0, 0, -1};
    }
    throw Error(ErrorCode::Usage, std::string("orientation letter must be one of LRPASI: '") + c + "'");
  };
  AxisMap m;
  bool used[3] = {false, false, false};
  bool world_used[3] = {false, false, false};
  for (int o = 0; o < 3; ++o) {
    const Vec3 want = letter(code[o]);
    for (int w = 0; w < 3; ++w)
      if (want[w] != 0) {
        if (world_used[w]) throw Error(ErrorCode::Usage, "orientation names one direction twice: '" + code + "'");
        world_used[w] = true;
      }
    // The unused input axis most parallel to the wanted direction.
    int best = -1;
    double best_dot = -1;
    for (int a = 0; a < 3; ++a) {
      if (used[a]) continue;
      const double d = std::fabs(dot(g.axis(a), want));
      if (d > best_dot) best_dot = d, best = a;
    }
    used[best] = true;
    m.from[o] = best;
    m.flip[o] = dot(g.axis(best), want) < 0;
  }
  return m;
}

Geometry reorient_geometry(const Geometry& gi, const AxisMap& m) {
  Geometry go;
  for (int o = 0; o < 3; ++o) {
    const int a = m.from[o];
    go.size[o] = gi.size[a];
    go.spacing[o] = gi.spacing[a];
    for (int r = 0; r < 3; ++r) go.direction[r][o] = (m.flip[o] ? -1.0 : 1.0) * gi.direction[r][a];
  }
  // Output voxel 0 is the input voxel at the start (or end, when flipped) of each mapped axis.
  Vec3 first{0, 0, 0};
  for (int o = 0; o < 3; ++o) first[m.from[o]] = m.flip[o] ? double(gi.size[m.from[o]] - 1) : 0.0;
  go.origin = gi.index_to_world(first);
  return go;
}

template <class T>
Volume<T> reorient(const Volume<T>& in, const AxisMap& m) {
  if (m.identity()) return in;
  const Geometry& gi = in.geom;
  const Geometry go = reorient_geometry(gi, m);
  Volume<T> out(go, in.volumes);
  const size_t nvox = static_cast<size_t>(gi.voxel_count());
  // Input stride for a unit step along each output axis.
  const int64_t stride_in[3] = {1, gi.size[0], gi.size[0] * gi.size[1]};
  int64_t step[3], start = 0;
  for (int o = 0; o < 3; ++o) {
    const int a = m.from[o];
    step[o] = m.flip[o] ? -stride_in[a] : stride_in[a];
    if (m.flip[o]) start += (gi.size[a] - 1) * stride_in[a];
  }
  for (int64_t v = 0; v < in.volumes; ++v) {
    const T* src = in.data.data() + v * nvox;
    T* dst = out.data.data() + v * nvox;
    size_t n = 0;
    for (int64_t k = 0; k < go.size[2]; ++k)
      for (int64_t j = 0; j < go.size[1]; ++j) {
        int64_t s = start + k * step[2] + j * step[1];
        for (int64_t i = 0; i < go.size[0]; ++i, s += step[0]) dst[n++] = src[s];
      }
  }
  return out;
}

template Volume<float> reorient(const Volume<float>&, const AxisMap&);
template Volume<uint8_t> reorient(const Volume<uint8_t>&, const AxisMap&);
template Volume<int16_t> reorient(const Volume<int16_t>&, const AxisMap&);

}  // namespace aneura
