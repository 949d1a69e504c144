#include "core/geometry.hpp"

#include <cmath>

namespace aneura {

Vec3 operator+(const Vec3& a, const Vec3& b) { return {a[0] + b[0], a[1] + b[1], a[2] + b[2]}; }
Vec3 operator-(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
Vec3 operator*(double s, const Vec3& a) { return {s * a[0], s * a[1], s * a[2]}; }
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 normalized(const Vec3& a) {
  const double n = norm(a);
  return n > 0 ? (1.0 / n) * a : a;
}

Vec3 operator*(const Mat3& m, const Vec3& v) {
  return {m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2], m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
          m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2]};
}

Mat3 rotation_xyz(double ax, double ay, double az) {
  const double cx = std::cos(ax), sx = std::sin(ax), cy = std::cos(ay), sy = std::sin(ay), cz = std::cos(az),
               sz = std::sin(az);
  return {{{cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx},
           {sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx},
           {-sy, cy * sx, cy * cx}}};
}

Vec3 Geometry::index_to_world(const Vec3& ijk) const {
  Vec3 p = origin;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) p[r] += direction[r][c] * spacing[c] * ijk[c];
  return p;
}

Vec3 Geometry::world_to_index(const Vec3& p) const {
  // M = D * diag(s); solve M x = p - origin with the explicit 3x3 inverse (M is well conditioned).
  Mat3 m{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) m[r][c] = direction[r][c] * spacing[c];
  const Vec3 d = p - origin;
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  Mat3 inv{};
  inv[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det;
  inv[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
  inv[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
  inv[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det;
  inv[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
  inv[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
  inv[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det;
  inv[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
  inv[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
  Vec3 x{};
  for (int r = 0; r < 3; ++r) x[r] = inv[r][0] * d[0] + inv[r][1] * d[1] + inv[r][2] * d[2];
  return x;
}

Mat4 Geometry::affine_lps() const {
  Mat4 a{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) a[r][c] = direction[r][c] * spacing[c];
    a[r][3] = origin[r];
  }
  a[3] = {0, 0, 0, 1};
  return a;
}

Mat4 Geometry::affine_ras() const {
  Mat4 a = affine_lps();
  for (int c = 0; c < 4; ++c) {  // LPS -> RAS negates the x and y rows
    a[0][c] = -a[0][c];
    a[1][c] = -a[1][c];
  }
  return a;
}

Geometry Geometry::from_affine_ras(const Mat4& a, const std::array<int64_t, 3>& size) {
  Geometry g;
  g.size = size;
  for (int c = 0; c < 3; ++c) {
    Vec3 col{-a[0][c], -a[1][c], a[2][c]};
    g.spacing[c] = norm(col);
    const Vec3 u = normalized(col);
    for (int r = 0; r < 3; ++r) g.direction[r][c] = u[r];
  }
  g.origin = {-a[0][3], -a[1][3], a[2][3]};
  return g;
}

Geometry Geometry::flipped(int ax) const {
  Geometry g = *this;
  Vec3 last{0, 0, 0};
  last[ax] = static_cast<double>(size[ax] - 1);
  g.origin = index_to_world(last);
  for (int r = 0; r < 3; ++r) g.direction[r][ax] = -direction[r][ax];
  return g;
}

std::string Geometry::orientation_code() const {
  static const char pos[3] = {'L', 'P', 'S'};
  static const char neg[3] = {'R', 'A', 'I'};
  std::string code;
  for (int c = 0; c < 3; ++c) {
    int best = 0;
    for (int r = 1; r < 3; ++r)
      if (std::fabs(direction[r][c]) > std::fabs(direction[best][c])) best = r;
    code += direction[best][c] >= 0 ? pos[best] : neg[best];
  }
  return code;
}

bool same_grid_points(const Geometry& a, const Geometry& b, double tol_mm) {
  if (a.voxel_count() != b.voxel_count()) return false;
  for (int c = 0; c < 8; ++c) {
    const Vec3 ijk{double((c & 1) ? a.size[0] - 1 : 0), double((c & 2) ? a.size[1] - 1 : 0),
                   double((c & 4) ? a.size[2] - 1 : 0)};
    const Vec3 w = a.index_to_world(ijk);
    const Vec3 r = b.world_to_index(w);
    Vec3 snapped;
    for (int k = 0; k < 3; ++k) {
      snapped[k] = std::round(r[k]);
      if (snapped[k] < 0 || snapped[k] > b.size[k] - 1) return false;
    }
    if (norm(b.index_to_world(snapped) - w) > tol_mm) return false;
  }
  return true;
}

}  // namespace aneura
