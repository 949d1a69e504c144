// DICOM header parsing: one SliceRecord per 2D image, i.e. per single-frame file, per frame of an
// enhanced multi-frame file, or per tile of a Siemens mosaic. Coordinates are DICOM patient space
// (LPS, mm). Pixel values are not read here (see dicom_decode.hpp).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "core/geometry.hpp"

namespace aneura {

struct SliceRecord {
  std::filesystem::path file;
  int frame = 0;  // 0-based frame in a multi-frame file; mosaic tile index for mosaics
  int frames_in_file = 1;
  std::string sop_uid;
  std::string series_uid;  // may be empty: it is not on the RSNA test-time allowlist
  std::string study_uid, frame_of_reference_uid, patient_id, sop_class_uid, transfer_syntax;
  std::string modality;            // "CT", "MR", ...
  std::string series_description;  // SeriesDescription (0008,103E), "" when absent
  std::string photometric;         // MONOCHROME1 / MONOCHROME2 / ...
  std::string image_type;          // backslash-joined; used to report LOCALIZER images
  int rows = 0, cols = 0;          // of the 2D image (tile size for mosaics)
  int samples_per_pixel = 1;
  int bits_allocated = 16, bits_stored = 16, high_bit = 15, pixel_representation = 0;
  Vec3 row_cos{1, 0, 0};   // LPS direction of increasing column index (first IOP triplet)
  Vec3 col_cos{0, 1, 0};   // LPS direction of increasing row index (second IOP triplet)
  Vec3 position{0, 0, 0};  // LPS mm of the centre of the first transmitted pixel
  double row_spacing = 1;  // PixelSpacing[0]: mm between rows (along col_cos)
  double col_spacing = 1;  // PixelSpacing[1]: mm between columns (along row_cos)
  bool has_orientation = false, has_position = false, has_spacing = false;
  double slope = 1, intercept = 0;
  double slice_thickness = 0, spacing_between_slices = 0;  // 0 = absent
  int instance_number = 0;
  int echo_number = 0;          // 0 = absent
  bool acquisition_3d = false;  // MRAcquisitionType (0018,0023) "3D"
  bool epi = false;             // EchoPlanarPulseSequence (0018,9018) YES or ScanningSequence (0018,0020) with EP
  int mosaic_tiles = 0;         // > 0: this record is tile `frame` of a Siemens mosaic
  int mosaic_cols = 0, mosaic_rows = 0;  // full mosaic matrix
  bool has_slice_normal = false;
  Vec3 slice_normal{0, 0, 1};         // from the Siemens CSA header when present
  std::vector<std::string> warnings;  // assumptions made for this record
};

// Result of parsing one file: its records, or why it is not a usable image.
struct HeaderResult {
  enum class Kind { Image, NotDicom, NonImage, Corrupt } kind = Kind::NotDicom;
  std::string reason;                // for NonImage / Corrupt
  std::vector<SliceRecord> records;  // for Image
};

HeaderResult read_dicom_header(const std::filesystem::path& file);

// Whether the file's data set is deflated (1.2.840.10008.1.2.1.99): GDCM inflates it to a size
// no bound on the file's own can know.
bool deflated_data_set(const std::filesystem::path& file);

// Slice step from tags, for images whose positions are not given one by one (mosaics,
// multi-frame files with top-level tags only): SpacingBetweenSlices, else SliceThickness, else 1 mm.
double nominal_slice_step(const SliceRecord& r);
// The slice normal: the Siemens CSA header's when given, else the cross product of the IOP rows.
Vec3 slice_normal(const SliceRecord& r);

}  // namespace aneura
