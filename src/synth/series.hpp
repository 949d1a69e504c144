// One synthetic DICOM series: its acquisition design (plane, tilt, matrix, spacing, storage,
// transfer syntax, multi-frame) drawn like the RSNA 2025 data, rendered from a Subject and written
// as series/<SeriesInstanceUID>/<SOPInstanceUID>.dcm with localizer rows for its aneurysms.
#pragma once
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "io/dicom_writer.hpp"
#include "synth/contrast.hpp"

namespace aneura::synth {

// tiny: unit tests (40² matrix); small: the demo (128² over 220 mm, ~1.7 mm pixels); medium:
// clinical pixels (CTA and TOF 256² at ~0.55 mm over a field centred on the vessels, routine MRI
// 320² at ~0.69 mm); full: real sizes (512², e.g. ~400 CTA slices).
enum class Size { Tiny, Small, Medium, Full };

struct SeriesDesign {
  std::string series_uid;
  Modality modality = Modality::CTA;
  std::string plane = "axial";  // axial / coronal / sagittal
  double tilt_deg = 0;          // rotation of the slice plane about its row axis
  Vec3 row_cos{1, 0, 0}, col_cos{0, 1, 0}, normal{0, 0, 1};
  int matrix = 128;             // rows = columns
  double pixel_spacing = 1.5;   // mm
  double slice_spacing = 1.25;  // mm
  int slices = 0;
  Vec3 first_position{0, 0, 0};  // LPS of pixel (0,0) of the lowest slice along the normal
  bool multiframe = false, per_frame_groups = true;
  int bits_stored = 16, pixel_representation = 0;
  double slope = 1, intercept = 0;
  std::string photometric = "MONOCHROME2";
  Syntax syntax = Syntax::ExplicitLittle;
  // Hazards (only with --hazards): a scout image in the folder, one interior slice missing, a
  // SliceThickness tag that disagrees with the real spacing.
  bool scout = false;
  int missing_slice = -1;
  bool wrong_thickness = false;
};

// Draws the design; the slab along the normal always contains every aneurysm of `s`.
SeriesDesign draw_design(Modality m, Size size, const Subject& s, bool hazards, std::mt19937_64& rng);

struct LocalizerRow {
  std::string sop_uid;
  double x = 0, y = 0;  // pixel column, row
  int frame = -1;       // 0-based frame for multi-frame files, -1 otherwise
  int column = 0;       // train.csv location column
};

// Renders and writes the series into `dir` (created). Returns one localizer row per aneurysm.
std::vector<LocalizerRow> write_series(const Subject& s, const VesselGrid& grid, const Appearance& look,
                                       const SeriesDesign& d, const std::filesystem::path& dir, uint64_t noise_seed);

// The RSNA coordinates string: "{'x': 258.36, 'y': 261.36}" (plus "'f': 3" for multi-frame).
std::string coordinates_string(const LocalizerRow& r);

}  // namespace aneura::synth
