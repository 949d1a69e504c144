// Test fixtures: DICOM series with hand-chosen geometry and a known voxel pattern, written with
// aneura's GDCM-based writer into a fresh temporary folder.
#pragma once
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "io/dicom_writer.hpp"

namespace aneura::test {

// A fresh empty folder under the system temp dir, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

struct FixtureSpec {
  std::string series_uid = "1.2.826.0.1.3680043.8.498.100";
  std::string modality = "CT";
  int rows = 6, cols = 5, slices = 4;
  Vec3 row_cos{1, 0, 0}, col_cos{0, 1, 0};
  double row_spacing = 0.5, col_spacing = 0.75, step = 1.25;  // step < 0: descending positions
  Vec3 first_position{-100, -120, 50};
  bool shuffle = false;     // file order and InstanceNumber not spatial
  bool multiframe = false;  // one enhanced multi-frame file
  bool per_frame_groups = true;
  std::vector<double> slopes{1}, intercepts{-1024};
  std::string photometric = "MONOCHROME2";
  int bits_stored = 16, pixel_representation = 0;
  Syntax syntax = Syntax::ExplicitLittle;
  std::vector<int> skip_slices;     // physical slice indices not written (missing slices)
  std::string mr_acquisition_type;  // MRAcquisitionType (0018,0023): "3D" makes dcm2niix turn the volume
};

// Stored value of pixel (i = column, j = row) of physical slice s (before rescale).
int fixture_stored(int i, int j, int s);

// Writes the series into `dir`; returns the written file names.
std::vector<std::filesystem::path> write_fixture(const FixtureSpec& spec, const std::filesystem::path& dir);

// Position of physical slice s.
Vec3 fixture_position(const FixtureSpec& spec, int s);

// A CT acquired with the gantry tilted (18.5 degrees unless stated): the image planes tilt about x
// and the table moves along z, so each position drifts along the columns' direction off the slice
// normal. Every pixel holds hu() of its own world position, a linear function.
struct TiltedSeries {
  static constexpr int kRows = 48, kCols = 40, kSlices = 12;
  static constexpr double kSpacing = 0.5, kTable = 1.0, kSlope = 0.05;
  static constexpr const char* kSeriesUid = "1.2.826.0.1.3680043.8.498.300";
  double tilt;  // radians
  Vec3 row_cos{1, 0, 0}, col_cos;
  explicit TiltedSeries(double degrees = 18.5)
      : tilt(degrees * M_PI / 180), col_cos{0, std::cos(tilt), std::sin(tilt)} {}
  Vec3 first{-10, -12, 30};
  static double hu(const Vec3& w) { return 100 + 3 * w[0] - 7 * w[1] + 5 * w[2]; }
  Vec3 position(int k) const { return first + Vec3{0, 0, k * kTable}; }
  std::string sop_uid(int k) const { return std::string(kSeriesUid) + "." + std::to_string(k + 1); }
  // The value a reader gets for pixel (i, j) of slice k (hu() through the stored values' rounding).
  double stored_hu(int i, int j, int k) const;
  void write(const std::filesystem::path& dir) const;
};

}  // namespace aneura::test
