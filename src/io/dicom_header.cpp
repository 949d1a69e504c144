#include "io/dicom_header.hpp"

#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmStringFilter.h>
#include <gdcmTrace.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>

#include "io/siemens_csa.hpp"

namespace fs = std::filesystem;

namespace aneura {

namespace {

const gdcm::Tag kPixelData(0x7fe0, 0x0010);
const gdcm::Tag kSharedGroups(0x5200, 0x9229), kPerFrameGroups(0x5200, 0x9230);
const gdcm::Tag kPlanePosition(0x0020, 0x9113), kPlaneOrientation(0x0020, 0x9116);
const gdcm::Tag kPixelMeasures(0x0028, 0x9110), kValueTransform(0x0028, 0x9145);
const gdcm::Tag kMrFrameType(0x0018, 0x9226), kCtFrameType(0x0018, 0x9329);
const gdcm::Tag kIPP(0x0020, 0x0032), kIOP(0x0020, 0x0037), kPixelSpacing(0x0028, 0x0030);
const gdcm::Tag kSliceThickness(0x0018, 0x0050), kSpacingBetween(0x0018, 0x0088);
const gdcm::Tag kSlope(0x0028, 0x1053), kIntercept(0x0028, 0x1052);
const gdcm::Tag kFrameType(0x0008, 0x9007), kImageType(0x0008, 0x0008);

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  const auto b = s.find_first_not_of(ws);
  return b == std::string::npos ? std::string() : s.substr(b);
}

// Reads values of a dataset through GDCM's StringFilter, which knows every VR (binary US/UL
// included, in implicit and big-endian files) and the dictionary.
class TagReader {
 public:
  explicit TagReader(const gdcm::File& f) { sf_.SetFile(f); }

  std::optional<std::string> str(const gdcm::DataSet& ds, const gdcm::Tag& t) const {
    if (!ds.FindDataElement(t)) return std::nullopt;
    const gdcm::DataElement& de = ds.GetDataElement(t);
    if (de.IsEmpty()) return std::nullopt;
    std::string s = de.GetByteValue() ? std::string(de.GetByteValue()->GetPointer(), de.GetByteValue()->GetLength())
                                      : std::string();
    // Text VRs are taken as is (keeps backslashes); binary VRs go through the filter.
    const gdcm::VR::VRType vr = de.GetVR();
    if (vr == gdcm::VR::INVALID || !gdcm::VR::IsASCII(vr)) s = sf_.ToString(de);
    while (!s.empty() && s.back() == '\0') s.pop_back();
    s = trim(s);
    if (s.empty()) return std::nullopt;
    return s;
  }

  std::vector<double> nums(const gdcm::DataSet& ds, const gdcm::Tag& t) const {
    std::vector<double> out;
    auto s = str(ds, t);
    if (!s) return out;
    size_t start = 0;
    while (start <= s->size()) {
      size_t end = s->find('\\', start);
      if (end == std::string::npos) end = s->size();
      const std::string part = trim(s->substr(start, end - start));
      if (!part.empty()) {
        char* stop = nullptr;
        const double v = std::strtod(part.c_str(), &stop);
        if (stop == part.c_str() || !std::isfinite(v)) return {};  // unparsable: treat as absent
        out.push_back(v);
      }
      start = end + 1;
    }
    return out;
  }

  std::optional<double> num(const gdcm::DataSet& ds, const gdcm::Tag& t) const {
    auto v = nums(ds, t);
    if (v.empty()) return std::nullopt;
    return v[0];
  }

  int integer(const gdcm::DataSet& ds, const gdcm::Tag& t, int fallback) const {
    auto v = num(ds, t);
    return v ? static_cast<int>(std::lround(*v)) : fallback;
  }

 private:
  gdcm::StringFilter sf_;
};

// Item `index` of sequence `seq` in `ds` (its nested dataset), or nullptr.
const gdcm::DataSet* item(const gdcm::DataSet& ds, const gdcm::Tag& seq, size_t index) {
  if (!ds.FindDataElement(seq)) return nullptr;
  gdcm::SmartPointer<gdcm::SequenceOfItems> sq = ds.GetDataElement(seq).GetValueAsSQ();
  if (!sq || index >= sq->GetNumberOfItems()) return nullptr;
  return &sq->GetItem(index + 1).GetNestedDataSet();  // GDCM items are 1-based
}

size_t item_count(const gdcm::DataSet& ds, const gdcm::Tag& seq) {
  if (!ds.FindDataElement(seq)) return 0;
  gdcm::SmartPointer<gdcm::SequenceOfItems> sq = ds.GetDataElement(seq).GetValueAsSQ();
  return sq ? sq->GetNumberOfItems() : 0;
}

// Looks a tag up in the functional group macro `macro` of this frame, then of the shared groups.
struct FrameGroups {
  const gdcm::DataSet* per_frame = nullptr;
  const gdcm::DataSet* shared = nullptr;
  const gdcm::DataSet* macro(const gdcm::Tag& m) const {
    if (per_frame)
      if (const auto* d = item(*per_frame, m, 0)) return d;
    if (shared)
      if (const auto* d = item(*shared, m, 0)) return d;
    return nullptr;
  }
};

bool has_dicm_magic(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char buf[132];
  if (!in.read(buf, sizeof buf)) return false;
  return std::memcmp(buf + 128, "DICM", 4) == 0;
}

// True when the file meta group announced by (0002,0000) is cut short. Debian's GDCM asserts
// (aborts the process) on such files, so they never reach it.
bool meta_group_truncated(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  unsigned char e[12];
  in.seekg(132);
  if (!in.read(reinterpret_cast<char*>(e), sizeof e)) return true;
  const bool group_length = e[0] == 0x02 && e[1] == 0 && e[2] == 0 && e[3] == 0 && e[4] == 'U' && e[5] == 'L';
  if (!group_length) return false;  // optional element absent: nothing to check cheaply
  const uint32_t len = e[8] | (e[9] << 8) | (e[10] << 16) | (static_cast<uint32_t>(e[11]) << 24);
  std::error_code ec;
  return fs::file_size(file, ec) < 144ull + len;
}

bool read_iop(const TagReader& tr, const gdcm::DataSet& ds, SliceRecord& r) {
  const auto v = tr.nums(ds, kIOP);
  if (v.size() != 6) return false;
  r.row_cos = {v[0], v[1], v[2]};
  r.col_cos = {v[3], v[4], v[5]};
  if (norm(r.row_cos) < 0.5 || norm(r.col_cos) < 0.5) return false;
  r.row_cos = normalized(r.row_cos);
  r.col_cos = normalized(r.col_cos);
  return r.has_orientation = true;
}

bool read_ipp(const TagReader& tr, const gdcm::DataSet& ds, SliceRecord& r) {
  const auto v = tr.nums(ds, kIPP);
  if (v.size() != 3) return false;
  r.position = {v[0], v[1], v[2]};
  return r.has_position = true;
}

void read_measures(const TagReader& tr, const gdcm::DataSet& ds, SliceRecord& r) {
  const auto ps = tr.nums(ds, kPixelSpacing);
  if (ps.size() == 2 && ps[0] > 0 && ps[1] > 0) {
    r.row_spacing = ps[0];
    r.col_spacing = ps[1];
    r.has_spacing = true;
  }
  if (auto t = tr.num(ds, kSliceThickness); t && *t > 0) r.slice_thickness = *t;
  if (auto s = tr.num(ds, kSpacingBetween); s && std::fabs(*s) > 0) r.spacing_between_slices = *s;
}

void read_rescale(const TagReader& tr, const gdcm::DataSet& ds, SliceRecord& r) {
  if (auto s = tr.num(ds, kSlope); s && *s != 0) r.slope = *s;
  if (auto i = tr.num(ds, kIntercept)) r.intercept = *i;
}

std::string join_type(const TagReader& tr, const gdcm::DataSet& ds, const gdcm::Tag& t) {
  return tr.str(ds, t).value_or("");
}

}  // namespace

double nominal_slice_step(const SliceRecord& r) {
  return r.spacing_between_slices > 0 ? std::fabs(r.spacing_between_slices)
         : r.slice_thickness > 0      ? r.slice_thickness
                                      : 1.0;
}

namespace {

// Siemens mosaic: one 2D image holding a grid of slices (the CSA header gives their count). Fills
// `res` with a record per tile and returns true; false when the image is not a mosaic.
bool mosaic_records(const gdcm::DataSet& ds, const SliceRecord& base_in, HeaderResult& res) {
  if (base_in.frames_in_file != 1 || base_in.image_type.find("MOSAIC") == std::string::npos) return false;
  const SiemensCsa csa = read_siemens_csa(ds);
  if (csa.images_in_mosaic <= 1) return false;
  SliceRecord base = base_in;
  const int grid = static_cast<int>(std::ceil(std::sqrt(double(csa.images_in_mosaic))));
  if (base.rows % grid != 0 || base.cols % grid != 0) {
    res.kind = HeaderResult::Kind::Corrupt;
    res.reason = "mosaic size does not divide into NumberOfImagesInMosaic tiles";
    return true;
  }
  base.mosaic_rows = base.rows;
  base.mosaic_cols = base.cols;
  base.rows /= grid;
  base.cols /= grid;
  base.mosaic_tiles = csa.images_in_mosaic;
  if (csa.has_slice_normal) {
    base.has_slice_normal = true;
    base.slice_normal = normalized(csa.slice_normal);
  }
  // ImagePositionPatient names the corner of the whole mosaic; move it to the first tile.
  const double di = (base.mosaic_cols - base.cols) / 2.0, dj = (base.mosaic_rows - base.rows) / 2.0;
  const Vec3 corner = base.position + (di * base.col_spacing) * base.row_cos + (dj * base.row_spacing) * base.col_cos;
  const Vec3 normal = base.has_slice_normal ? base.slice_normal : normalized(cross(base.row_cos, base.col_cos));
  const double step = nominal_slice_step(base);
  for (int t = 0; t < base.mosaic_tiles; ++t) {
    SliceRecord r = base;
    r.frame = t;
    r.position = corner + (t * step) * normal;
    res.records.push_back(std::move(r));
  }
  res.kind = HeaderResult::Kind::Image;
  return true;
}

// Multi-frame: a record per frame from the per-frame functional groups, then the shared groups,
// then the top-level tags; frames without their own position are stacked along the slice normal.
void multiframe_records(const TagReader& tr, const gdcm::DataSet& ds, const SliceRecord& base, int frames,
                        HeaderResult& res) {
  const gdcm::DataSet* shared = item(ds, kSharedGroups, 0);
  const size_t per_frame_items = item_count(ds, kPerFrameGroups);
  for (int fr = 0; fr < frames; ++fr) {
    SliceRecord r = base;
    r.frame = fr;
    r.has_position = false;
    FrameGroups g{static_cast<size_t>(fr) < per_frame_items ? item(ds, kPerFrameGroups, fr) : nullptr, shared};
    if (const auto* m = g.macro(kPlaneOrientation)) read_iop(tr, *m, r);
    if (const auto* m = g.macro(kPlanePosition)) read_ipp(tr, *m, r);
    if (const auto* m = g.macro(kPixelMeasures)) read_measures(tr, *m, r);
    if (const auto* m = g.macro(kValueTransform)) read_rescale(tr, *m, r);
    const gdcm::DataSet* ft = g.macro(kMrFrameType);
    if (!ft) ft = g.macro(kCtFrameType);
    if (ft) r.image_type = join_type(tr, *ft, kFrameType);
    if (!r.has_position && fr == 0 && base.has_position) {
      r.position = base.position;
      r.has_position = true;
    }
    res.records.push_back(std::move(r));
  }
  // Frames without their own position: stacked along the slice normal from the first frame.
  if (!res.records.empty() && res.records[0].has_position) {
    const SliceRecord& first = res.records[0];
    const Vec3 normal = normalized(cross(first.row_cos, first.col_cos));
    const double step = nominal_slice_step(first);
    bool assumed = false;
    for (auto& r : res.records)
      if (!r.has_position) {
        r.position = first.position + (r.frame * step) * normal;
        r.has_position = assumed = true;
      }
    if (assumed)
      res.records[0].warnings.push_back(
          "multi-frame file has no per-frame ImagePositionPatient (0020,0032): frames placed " + std::to_string(step) +
          " mm apart along the slice normal (SpacingBetweenSlices, else "
          "SliceThickness, else 1 mm)");
  }
}

}  // namespace

HeaderResult read_dicom_header(const fs::path& file) {
  gdcm::Trace::SetWarning(false);
  gdcm::Trace::SetDebug(false);
  gdcm::Trace::SetError(false);
  HeaderResult res;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    res.kind = HeaderResult::Kind::NotDicom;
    return res;
  }
  const bool magic = has_dicm_magic(file);
  if (magic && meta_group_truncated(file)) {
    res.kind = HeaderResult::Kind::Corrupt;
    res.reason = "file meta information (0002,xxxx) is truncated";
    return res;
  }
  gdcm::Reader reader;
  reader.SetFileName(file.c_str());
  if (!reader.ReadUpToTag(kPixelData)) {
    res.kind = magic ? HeaderResult::Kind::Corrupt : HeaderResult::Kind::NotDicom;
    res.reason = "cannot parse DICOM header";
    return res;
  }
  const gdcm::File& f = reader.GetFile();
  const gdcm::DataSet& ds = f.GetDataSet();
  const TagReader tr(f);
  if (!magic && ds.Size() < 3) {  // a few bytes that happened to parse: not a dataset
    res.kind = HeaderResult::Kind::NotDicom;
    return res;
  }
  if (!ds.FindDataElement(kPixelData) && !ds.FindDataElement(gdcm::Tag(0x0028, 0x0010))) {
    res.kind = HeaderResult::Kind::NonImage;
    res.reason = "no Pixel Data (7FE0,0010)";
    return res;
  }

  SliceRecord base;
  base.file = file;
  base.sop_uid = tr.str(ds, gdcm::Tag(0x0008, 0x0018)).value_or("");
  base.sop_class_uid = tr.str(ds, gdcm::Tag(0x0008, 0x0016)).value_or("");
  base.series_uid = tr.str(ds, gdcm::Tag(0x0020, 0x000e)).value_or("");
  base.study_uid = tr.str(ds, gdcm::Tag(0x0020, 0x000d)).value_or("");
  base.frame_of_reference_uid = tr.str(ds, gdcm::Tag(0x0020, 0x0052)).value_or("");
  base.patient_id = tr.str(ds, gdcm::Tag(0x0010, 0x0020)).value_or("");
  base.modality = tr.str(ds, gdcm::Tag(0x0008, 0x0060)).value_or("");
  base.series_description = tr.str(ds, gdcm::Tag(0x0008, 0x103e)).value_or("");
  base.photometric = tr.str(ds, gdcm::Tag(0x0028, 0x0004)).value_or("MONOCHROME2");
  base.image_type = join_type(tr, ds, kImageType);
  base.transfer_syntax =
      f.GetHeader().GetDataSetTransferSyntax().GetString() ? f.GetHeader().GetDataSetTransferSyntax().GetString() : "";
  base.rows = tr.integer(ds, gdcm::Tag(0x0028, 0x0010), 0);
  base.cols = tr.integer(ds, gdcm::Tag(0x0028, 0x0011), 0);
  base.samples_per_pixel = tr.integer(ds, gdcm::Tag(0x0028, 0x0002), 1);
  base.bits_allocated = tr.integer(ds, gdcm::Tag(0x0028, 0x0100), 16);
  base.bits_stored = tr.integer(ds, gdcm::Tag(0x0028, 0x0101), base.bits_allocated);
  base.high_bit = tr.integer(ds, gdcm::Tag(0x0028, 0x0102), base.bits_stored - 1);
  base.pixel_representation = tr.integer(ds, gdcm::Tag(0x0028, 0x0103), 0);
  base.instance_number = tr.integer(ds, gdcm::Tag(0x0020, 0x0013), 0);
  base.echo_number = tr.integer(ds, gdcm::Tag(0x0018, 0x0086), 0);
  // Values GDCM's image reader asserts on (an abort of the whole process), refused here instead.
  if (base.samples_per_pixel < 1 || base.samples_per_pixel > 4 || base.bits_stored < 1 ||
      base.bits_stored > base.bits_allocated || base.high_bit >= base.bits_allocated) {
    res.kind = HeaderResult::Kind::Corrupt;
    res.reason = "impossible pixel description: SamplesPerPixel (0028,0002) " + std::to_string(base.samples_per_pixel) +
                 ", BitsAllocated (0028,0100) " + std::to_string(base.bits_allocated) + ", BitsStored (0028,0101) " +
                 std::to_string(base.bits_stored) + ", HighBit (0028,0102) " + std::to_string(base.high_bit);
    return res;
  }
  if (base.rows <= 0 || base.cols <= 0) {
    res.kind = HeaderResult::Kind::Corrupt;
    res.reason = "Rows (0028,0010) or Columns (0028,0011) missing or zero";
    return res;
  }
  if (!ds.FindDataElement(kPixelData)) {
    res.kind = HeaderResult::Kind::Corrupt;
    res.reason = "Pixel Data (7FE0,0010) missing";
    return res;
  }
  read_iop(tr, ds, base);
  read_ipp(tr, ds, base);
  read_measures(tr, ds, base);
  read_rescale(tr, ds, base);

  const int frames = std::max(1, tr.integer(ds, gdcm::Tag(0x0028, 0x0008), 1));
  base.frames_in_file = frames;

  if (mosaic_records(ds, base, res)) return res;
  if (frames == 1)
    res.records.push_back(base);
  else
    multiframe_records(tr, ds, base, frames, res);
  for (auto& r : res.records) {
    if (!r.has_orientation && r.frame == 0)
      r.warnings.push_back("ImageOrientationPatient (0020,0037) missing: assumed axial (1,0,0,0,1,0)");
    if (!r.has_spacing && r.frame == 0) r.warnings.push_back("PixelSpacing (0028,0030) missing: assumed 1 x 1 mm");
  }
  res.kind = HeaderResult::Kind::Image;
  return res;
}

}  // namespace aneura
