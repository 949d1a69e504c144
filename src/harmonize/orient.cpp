#include "harmonize/orient.hpp"

#include <algorithm>
#include <array>
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

AxisMap dcm2niix_rotation(const Geometry& g) {
  const Mat4 s = g.affine_ras();
  bool canonical = true;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) canonical &= i == j ? s[i][j] > 0 : s[i][j] == 0;
  if (canonical) return {};
  // Reversals: the corner closest to the lowest coordinates over all eight corners (the first
  // such corner on ties), as dcm2niix's minCornerFlip.
  auto world = [&](const Vec3& ijk) {
    Vec3 w{0, 0, 0};
    for (int r = 0; r < 3; ++r) w[r] = s[r][0] * ijk[0] + s[r][1] * ijk[1] + s[r][2] * ijk[2] + s[r][3];
    return w;
  };
  std::array<Vec3, 8> corner;
  Vec3 low{1e300, 1e300, 1e300};
  for (int c = 0; c < 8; ++c) {
    Vec3 ijk{0, 0, 0};
    for (int a = 0; a < 3; ++a) ijk[a] = (c >> a) & 1 ? double(g.size[a] - 1) : 0.0;
    corner[c] = world(ijk);
    for (int r = 0; r < 3; ++r) low[r] = std::min(low[r], corner[c][r]);
  }
  int nearest = 0;
  for (int c = 1; c < 8; ++c)
    if (norm(corner[c] - low) < norm(corner[nearest] - low)) nearest = c;
  const double f[3] = {nearest & 1 ? -1.0 : 1.0, nearest & 2 ? -1.0 : 1.0, nearest & 4 ? -1.0 : 1.0};
  // Permutations in dcm2niix's order (input axis i -> output axis col[i]); the first best wins.
  static const int kPerm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  double best = 0;
  int chosen = -1;
  for (int p = 0; p < 6; ++p) {
    double sum = 0;
    for (int i = 0; i < 3; ++i) sum += s[kPerm[p][i]][i] * f[i];  // output axis col[i] along world axis col[i]
    if (sum > best) best = sum, chosen = p;
  }
  AxisMap m;
  if (chosen < 0) return m;
  for (int i = 0; i < 3; ++i) {
    m.from[kPerm[chosen][i]] = i;
    m.flip[kPerm[chosen][i]] = f[i] < 0;
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
