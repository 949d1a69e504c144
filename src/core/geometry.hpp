// Voxel grid geometry in DICOM patient space (LPS, millimetres).
//
// Index (i, j, k) is (column, row, slice) for volumes read from DICOM. A voxel index maps to the
// world point of the voxel centre:  world = origin + D * diag(spacing) * index, where the columns
// of D (direction) are the unit vectors of the i, j and k axes in LPS.
#pragma once
#include <array>
#include <cstdint>
#include <string>

namespace aneura {

using Vec3 = std::array<double, 3>;
using Mat3 = std::array<Vec3, 3>;  // row-major: m[r][c]
using Mat4 = std::array<std::array<double, 4>, 4>;

Vec3 operator+(const Vec3& a, const Vec3& b);
Vec3 operator-(const Vec3& a, const Vec3& b);
Vec3 operator*(double s, const Vec3& a);
double dot(const Vec3& a, const Vec3& b);
Vec3 cross(const Vec3& a, const Vec3& b);
double norm(const Vec3& a);
Vec3 normalized(const Vec3& a);
Vec3 operator*(const Mat3& m, const Vec3& v);
// Rotation by ax, ay, az radians about x, y and z, applied in that order: Rz * Ry * Rx.
Mat3 rotation_xyz(double ax, double ay, double az);

struct Geometry {
  std::array<int64_t, 3> size{0, 0, 0};               // voxels along i, j, k
  Vec3 origin{0, 0, 0};                               // LPS mm of the centre of voxel (0,0,0)
  Vec3 spacing{1, 1, 1};                              // mm between voxel centres along i, j, k
  Mat3 direction{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};  // column c = LPS unit vector of axis c

  int64_t voxel_count() const { return size[0] * size[1] * size[2]; }
  Vec3 axis(int c) const { return {direction[0][c], direction[1][c], direction[2][c]}; }

  // index (continuous) -> world LPS mm
  Vec3 index_to_world(const Vec3& ijk) const;
  // world LPS mm -> index (continuous); exact inverse of index_to_world
  Vec3 world_to_index(const Vec3& p) const;

  // 4x4 index -> world matrices, LPS (DICOM) and RAS (NIfTI / nibabel / dcm2niix convention).
  Mat4 affine_lps() const;
  Mat4 affine_ras() const;
  static Geometry from_affine_ras(const Mat4& a, const std::array<int64_t, 3>& size);

  // Reverse the order of voxels along one axis: same world points, new origin and direction.
  Geometry flipped(int axis) const;

  // Three letters naming where each axis points, e.g. "LPS" or "RAS" (largest component).
  std::string orientation_code() const;
};

// True when both grids hold the same set of voxel centres within tol_mm (whatever the axis order
// or flips): same sizes up to permutation and every corner of `a` on a corner of `b`.
bool same_grid_points(const Geometry& a, const Geometry& b, double tol_mm);

}  // namespace aneura
