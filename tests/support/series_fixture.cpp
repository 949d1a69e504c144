#include "support/series_fixture.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>

namespace fs = std::filesystem;

namespace aneura::test {

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> n{0};
  path =
      fs::temp_directory_path() / ("aneura_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  fs::remove_all(path);
  fs::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

int fixture_stored(int i, int j, int s) { return 100 + 7 * i + 13 * j + 101 * s; }

Vec3 fixture_position(const FixtureSpec& spec, int s) {
  const Vec3 n = normalized(cross(spec.row_cos, spec.col_cos));
  return spec.first_position + (s * spec.step) * n;
}

std::vector<fs::path> write_fixture(const FixtureSpec& spec, const fs::path& dir) {
  std::vector<int> phys;
  for (int s = 0; s < spec.slices; ++s)
    if (std::find(spec.skip_slices.begin(), spec.skip_slices.end(), s) == spec.skip_slices.end()) phys.push_back(s);
  std::vector<int> order = phys;  // order of instance numbers / files
  if (spec.shuffle) std::shuffle(order.begin(), order.end(), std::mt19937(42));

  DicomImageSpec base;
  base.series_uid = spec.series_uid;
  base.modality = spec.modality;
  base.rows = spec.rows;
  base.cols = spec.cols;
  base.row_cos = spec.row_cos;
  base.col_cos = spec.col_cos;
  base.row_spacing = spec.row_spacing;
  base.col_spacing = spec.col_spacing;
  base.photometric = spec.photometric;
  base.bits_stored = spec.bits_stored;
  base.high_bit = spec.bits_stored - 1;
  base.pixel_representation = spec.pixel_representation;
  base.slice_thickness = std::fabs(spec.step);
  base.mr_acquisition_type = spec.mr_acquisition_type;
  auto pixels = [&](int s, std::vector<uint16_t>& out) {
    for (int j = 0; j < spec.rows; ++j)
      for (int i = 0; i < spec.cols; ++i) out.push_back(static_cast<uint16_t>(fixture_stored(i, j, s)));
  };
  auto slope = [&](int s) { return spec.slopes[std::min<size_t>(s, spec.slopes.size() - 1)]; };
  auto icpt = [&](int s) { return spec.intercepts[std::min<size_t>(s, spec.intercepts.size() - 1)]; };

  std::vector<fs::path> files;
  if (spec.multiframe) {
    DicomImageSpec d = base;
    d.enhanced = true;
    d.per_frame_groups = spec.per_frame_groups;
    d.spacing_between_slices = std::fabs(spec.step);
    d.sop_uid = spec.series_uid + ".1";
    d.frames = static_cast<int>(order.size());
    for (int s : order) {
      d.positions.push_back(fixture_position(spec, s));
      d.slopes.push_back(slope(s));
      d.intercepts.push_back(icpt(s));
      pixels(s, d.stored);
    }
    files.push_back(dir / (d.sop_uid + ".dcm"));
    write_dicom(d, files.back(), spec.syntax);
    return files;
  }
  for (size_t n = 0; n < order.size(); ++n) {
    const int s = order[n];
    DicomImageSpec d = base;
    d.sop_uid = spec.series_uid + "." + std::to_string(s + 1);
    d.instance_number = static_cast<int>(n + 1);
    d.positions = {fixture_position(spec, s)};
    d.slopes = {slope(s)};
    d.intercepts = {icpt(s)};
    pixels(s, d.stored);
    files.push_back(dir / (d.sop_uid + ".dcm"));
    write_dicom(d, files.back(), spec.syntax);
  }
  return files;
}

static int32_t tilted_stored(double hu) {
  return static_cast<int32_t>(std::lround((hu + 1024) / TiltedSeries::kSlope));
}

double TiltedSeries::stored_hu(int i, int j, int k) const {
  return tilted_stored(hu(position(k) + (i * kSpacing) * row_cos + (j * kSpacing) * col_cos)) * kSlope - 1024;
}

void TiltedSeries::write(const fs::path& dir) const {
  for (int k = 0; k < kSlices; ++k) {
    DicomImageSpec d;
    d.sop_uid = sop_uid(k);
    d.series_uid = kSeriesUid;
    d.instance_number = kSlices - k;  // file order not spatial
    d.rows = kRows, d.cols = kCols;
    d.row_cos = row_cos, d.col_cos = col_cos;
    d.row_spacing = d.col_spacing = kSpacing;
    d.pixel_representation = 1;  // signed 16-bit, as dcm2niix's tilt correction needs
    d.slice_thickness = kTable;
    d.positions = {position(k)};
    d.slopes = {kSlope};
    d.intercepts = {-1024};
    for (int j = 0; j < kRows; ++j)
      for (int i = 0; i < kCols; ++i)
        d.stored.push_back(static_cast<uint16_t>(
            tilted_stored(hu(position(k) + (i * kSpacing) * row_cos + (j * kSpacing) * col_cos))));
    write_dicom(d, dir / (d.sop_uid + ".dcm"));
  }
}

}  // namespace aneura::test
