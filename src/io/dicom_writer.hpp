// Writes DICOM images with chosen geometry, pixel encoding and transfer syntax. Used by the test
// fixtures (hand-computed geometry) and by the synthetic dataset generator.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/geometry.hpp"

namespace aneura {

struct DicomImageSpec {
  std::string sop_uid, series_uid, study_uid = "1.2.826.0.1.3680043.8.498.1",
                                   frame_of_reference_uid = "1.2.826.0.1.3680043.8.498.2", patient_id = "anon";
  std::string modality = "CT";   // CT or MR
  bool enhanced = false;         // enhanced multi-frame IOD with functional groups
  bool per_frame_groups = true;  // enhanced: positions per frame (else top-level only)
  int rows = 0, cols = 0, frames = 1;
  int bits_allocated = 16, bits_stored = 16, high_bit = 15, pixel_representation = 1;
  std::string photometric = "MONOCHROME2";
  std::string image_type = "ORIGINAL\\PRIMARY\\AXIAL";
  Vec3 row_cos{1, 0, 0}, col_cos{0, 1, 0};
  double row_spacing = 1, col_spacing = 1;                 // PixelSpacing[0], PixelSpacing[1]
  std::vector<Vec3> positions;                             // one per frame
  std::vector<double> slopes, intercepts;                  // one per frame (or one for all)
  double slice_thickness = 0, spacing_between_slices = 0;  // 0: omitted
  int instance_number = 1, echo_number = 0;
  std::string mr_acquisition_type;  // MRAcquisitionType (0018,0023), "2D" or "3D"; "" omitted
  bool write_orientation = true, write_position = true, write_spacing = true;
  // Stored values exactly as they go into Pixel Data (bit patterns incl. any high-bit junk),
  // frames * rows * cols, column fastest.
  std::vector<uint16_t> stored;
};

// Transfer syntaxes the writer can produce (uncompressed first, then GDCM's encoders).
enum class Syntax {
  ExplicitLittle,
  ImplicitLittle,
  ExplicitBig,
  Deflated,
  JpegLossless,
  JpegBaseline,
  JpegLsLossless,
  Jpeg2000Lossless,
  Rle
};
const char* syntax_name(Syntax s);
std::string syntax_uid(Syntax s);  // e.g. "1.2.840.10008.1.2.4.90"

// Writes `spec` to `path` (explicit VR little endian, then transcoded when `syntax` differs).
void write_dicom(const DicomImageSpec& spec, const std::filesystem::path& path, Syntax syntax = Syntax::ExplicitLittle);

}  // namespace aneura
