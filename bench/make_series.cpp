// Writes DICOM series for the demo and the benchmarks with aneura's own DICOM writer: a head-like
// phantom (air, scalp, skull, brain, a bright vessel ring) in CT HU or MR units.
//   aneura_make_series OUT_DIR            demo: small axial CT, coronal enhanced MR, JPEG 2000 CT
//   aneura_make_series OUT_DIR --cta      benchmark: one CTA-sized series, 400 slices of 512 x 512
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>

#include "core/parallel.hpp"
#include "io/dicom_writer.hpp"

namespace fs = std::filesystem;
using namespace aneura;

namespace {

// HU of the phantom at LPS point p (mm), head centred at the origin.
double phantom_hu(const Vec3& p) {
  const double r = std::sqrt(p[0] * p[0] / (80.0 * 80.0) + p[1] * p[1] / (95.0 * 95.0) + p[2] * p[2] / (75.0 * 75.0));
  if (r > 1.0) return -1000;
  if (r > 0.96) return 20;    // scalp
  if (r > 0.90) return 1200;  // skull
  const double ring = std::hypot(std::hypot(p[0], p[1]) - 25.0, p[2] + 10.0);
  if (ring < 2.0) return 350;  // contrast-filled vessel
  return 35;                   // brain
}

void write_series(const fs::path& dir, const std::string& uid, int n, int size, double pixel, double step, Vec3 row,
                  Vec3 col, bool mr, bool multiframe, Syntax syntax) {
  fs::create_directories(dir);
  const Vec3 normal = normalized(cross(row, col));
  const double half = (size - 1) * pixel / 2.0;
  const Vec3 corner = (-half) * row + (-half) * col + (-(n - 1) * step / 2.0) * normal;
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));  // InstanceNumber not spatial
  auto slice = [&](int s, std::vector<uint16_t>& out) {
    const Vec3 o = corner + (s * step) * normal;
    for (int j = 0; j < size; ++j)
      for (int i = 0; i < size; ++i) {
        const double hu = phantom_hu(o + (i * pixel) * row + (j * pixel) * col);
        const double v = mr ? std::max(0.0, (hu < -500 ? 0 : hu > 1000 ? 30 : hu > 300 ? 900 : 400 + hu)) : hu + 1024;
        out.push_back(static_cast<uint16_t>(std::lround(v)));
      }
  };
  DicomImageSpec base;
  base.series_uid = uid;
  base.modality = mr ? "MR" : "CT";
  base.rows = base.cols = size;
  base.row_cos = row;
  base.col_cos = col;
  base.row_spacing = base.col_spacing = pixel;
  base.bits_stored = 12;
  base.high_bit = 11;
  base.pixel_representation = 0;
  base.slice_thickness = step;
  base.intercepts = {mr ? 0.0 : -1024.0};
  if (multiframe) {
    DicomImageSpec d = base;
    d.enhanced = true;
    d.frames = n;
    d.sop_uid = uid + ".1";
    for (int s : order) {
      d.positions.push_back(corner + (s * step) * normal);
      slice(s, d.stored);
    }
    write_dicom(d, dir / (d.sop_uid + ".dcm"), syntax);
    return;
  }
  parallel_for(n, 0, [&](size_t k) {
    const int s = order[k];
    DicomImageSpec d = base;
    d.sop_uid = uid + "." + std::to_string(s + 1);
    d.instance_number = static_cast<int>(k + 1);
    d.positions = {corner + (s * step) * normal};
    slice(s, d.stored);
    write_dicom(d, dir / (d.sop_uid + ".dcm"), syntax);
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: aneura_make_series OUT_DIR [--cta]\n";
    return 2;
  }
  const fs::path out = argv[1];
  try {
    if (argc > 2 && std::strcmp(argv[2], "--cta") == 0) {
      write_series(out / "cta", "1.2.826.0.1.3680043.8.498.7001", 400, 512, 0.45, 0.625, {1, 0, 0}, {0, 1, 0}, false,
                   false, Syntax::ExplicitLittle);
      return 0;
    }
    write_series(out / "ct_axial", "1.2.826.0.1.3680043.8.498.7101", 80, 128, 1.6, 2.0, {1, 0, 0}, {0, 1, 0}, false,
                 false, Syntax::ExplicitLittle);
    write_series(out / "mr_coronal_multiframe", "1.2.826.0.1.3680043.8.498.7102", 60, 96, 2.0, 3.0, {1, 0, 0},
                 {0, 0, -1}, true, true, Syntax::ExplicitLittle);
    write_series(out / "ct_axial_jpeg2000", "1.2.826.0.1.3680043.8.498.7103", 40, 128, 1.6, 4.0, {1, 0, 0}, {0, 1, 0},
                 false, false, Syntax::Jpeg2000Lossless);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
