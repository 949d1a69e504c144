// A DICOM folder -> one series on an exact voxel grid.
//
// plan_series() reads headers only: it scans the folder, groups images by SeriesInstanceUID and
// geometry (Rows, Columns, ImageOrientationPatient, echo, frame type), picks one group, sorts its
// images by ImagePositionPatient projected on the slice normal and measures the slice spacing from
// those positions. load_series() then decodes the pixels onto that grid. World coordinates are DICOM
// patient space (LPS, mm); index (i, j, k) = (column, row, slice along the normal, ascending).
#pragma once
#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/volume.hpp"
#include "io/dicom_header.hpp"

namespace aneura {

struct SeriesOptions {
  std::string series_uid;       // choose this SeriesInstanceUID (empty: the largest group)
  int echo = 0;                 // choose this EchoNumber (0: the lowest present)
  unsigned threads = 0;         // 0: all usable cores
  bool strict_spacing = false;  // uneven slice spacing is an error instead of a resample
  bool skip_corrupt = false;    // corrupt DICOM files are dropped with a warning, not an error
};

// Where a source 2D image lies: enough to turn a localizer (x, y) on it into a world point.
struct SliceMapEntry {
  std::string sop_uid;
  int frame = 0;  // 0-based frame for multi-frame files
  std::string file;
  double k = 0;    // slice index in the output volume (fractional after resampling)
  int volume = 0;  // which 3D volume of a multi-volume series
  Vec3 position, row_cos, col_cos;
  double row_spacing = 1, col_spacing = 1;
};

struct SeriesPlan {
  std::filesystem::path folder;
  std::string series_uid, study_uid, frame_of_reference_uid, patient_id, modality, sop_class_uid;
  std::string transfer_syntax, photometric;
  std::string plane;  // axial / coronal / sagittal, "(oblique N deg)" when tilted
  bool multiframe = false, mosaic = false;
  bool acquisition_3d = false, epi = false;  // of the first image (MRAcquisitionType, EPI)
  double slice_thickness = 0;                // SliceThickness tag as found (not used for geometry)
  Geometry geometry;                         // output grid
  int volumes = 1;                           // > 1: several volumes at the same positions (time, echo ...)
  bool resampled = false;                    // uneven spacing was resampled onto a uniform grid
  // Gantry tilt: the positions drift off the slice normal. tilt_shift[s] is position s's offset
  // from the orthogonal grid's column through the first position, in pixels along the columns (i)
  // and rows (j) of the stored images; each slice is resampled by it onto the grid (empty: none).
  std::vector<std::array<double, 2>> tilt_shift;
  double tilt_deg = 0;     // the drift's angle to the normal
  double tilt_max_mm = 0;  // the largest in-plane offset
  // Chosen records, sorted: slices[v][s] is the s-th position of volume v. slice_coord[s] is the
  // position projected on the slice normal, in mm (same for every volume).
  std::vector<std::vector<SliceRecord>> slices;
  std::vector<double> slice_coord;
  std::vector<SliceMapEntry> slice_map;
  size_t files_scanned = 0, non_dicom_files = 0, non_image_dicom_files = 0;
  std::vector<std::string> dropped;  // one line per dropped group or file, with the reason
  std::vector<std::string> warnings;
};

struct DicomSeries {
  SeriesPlan plan;
  Volume<float> image;  // rescaled values (e.g. HU for CT); volumes stacked along t
};

SeriesPlan plan_series(const std::filesystem::path& folder, const SeriesOptions& opts = {});

// Every image group of a folder (a series, or one echo or geometry of it), largest first: what a
// study folder holds when one series cannot be chosen for the user. Headers only.
struct SeriesSummary {
  std::string series_uid, modality, description, plane, orientation;  // orientation: e.g. "LPS"
  int columns = 0, rows = 0, echo = 0;
  size_t images = 0;  // images (frames, mosaic tiles) in the group
  bool multiframe = false, mosaic = false;
};
std::vector<SeriesSummary> list_series(const std::filesystem::path& folder, unsigned threads = 0);

// Rows as DICOM stores them (top-down) or bottom-up as dcm2niix writes them; the geometry follows,
// so every voxel keeps its world position either way.
enum class RowOrder { TopDown, BottomUp };

// Decodes the planned series onto its grid. T is float, or int16_t when volume_fits_int16(plan)
// (every rescaled value an exact int16, no resampling and no tilt): half the memory, no conversion.
template <class T>
Volume<T> load_volume(const SeriesPlan& plan, unsigned threads = 0, RowOrder rows = RowOrder::TopDown);
bool volume_fits_int16(const SeriesPlan& plan);

// dcm2niix turns 3D acquisitions (MRAcquisitionType 3D, not EPI, one volume of several slices on
// even positions) to the nearest canonical orientation (nii_setOrtho) after flipping the rows;
// harmonize/orient's dcm2niix_rotation gives the same permutation and flips.
bool dcm2niix_rotates(const SeriesPlan& plan);

DicomSeries load_series(const SeriesPlan& plan, unsigned threads = 0);
DicomSeries read_series(const std::filesystem::path& folder, const SeriesOptions& opts = {});

// A localizer point (x = column, y = row, in pixels) on instance `sop_uid` (frame `frame` for
// multi-frame files) -> world LPS mm. Throws Error(CorruptInput) when the instance is unknown.
Vec3 localizer_to_world(const SeriesPlan& plan, const std::string& sop_uid, double x, double y, int frame = 0);

// The inverse: a world LPS point -> the instance whose plane is nearest (SOPInstanceUID, frame)
// and the point's column x / row y on it, in pixels (as train_localizers.csv writes them).
struct LocalizerPoint {
  std::string sop_uid;
  int frame = 0;
  double x = 0, y = 0, distance_mm = 0;  // distance of the point from the instance's plane
};
LocalizerPoint world_to_localizer(const SeriesPlan& plan, const Vec3& world);

}  // namespace aneura
