#include "io/dicom_header.hpp"

#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmStringFilter.h>
#include <gdcmTrace.h>
#include <gdcmTransferSyntax.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <vector>

#include "io/abort_guard.hpp"
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

// The file's first bytes (at most the preamble, magic and 64 KiB of file meta group), read once
// for the magic and the meta group's walk.
std::vector<unsigned char> file_prefix(const fs::path& file, uint64_t size) {
  std::vector<unsigned char> b(static_cast<size_t>(std::min<uint64_t>(size, 132 + 65536)));
  std::ifstream in(file, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()))) b.clear();
  return b;
}

// Whether the meta group names the Deflated Explicit VR Little Endian syntax (its UID within the
// prefix's first 2 KB, where any sound meta group lies; a false alarm only lifts the cap).
bool deflated_syntax(const std::vector<unsigned char>& prefix) {
  static const std::string kDeflated = "1.2.840.10008.1.2.1.99";
  const auto end = prefix.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(prefix.size(), 2048));
  return std::search(prefix.begin(), end, kDeflated.begin(), kDeflated.end()) != end;
}

bool has_dicm_magic(const std::vector<unsigned char>& prefix) {
  return prefix.size() >= 132 && std::memcmp(prefix.data() + 128, "DICM", 4) == 0;
}

// The value representations of PS3.5, and those whose explicit-VR header has a 4-byte length.
const std::set<std::string> kVRs = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
                                    "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
                                    "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"};
const std::set<std::string> kLongVRs = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"};

// What is wrong with the file meta group (0002,xxxx), walked element by element as explicit VR
// little endian (PS3.10): a VR that is none, a length past the end of the file, an undefined
// length, a walk that disagrees with the announced group length (0002,0000). Debian's GDCM asserts
// (aborts the process) on such groups, so these files never reach it. Empty when it is sound.
std::string meta_group_problem(const std::vector<unsigned char>& b, uint64_t size, uint64_t* end = nullptr,
                               std::string* transfer_syntax = nullptr) {
  static const std::set<uint32_t> kMetaElements = {0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x0012, 0x0013,
                                                   0x0016, 0x0017, 0x0018, 0x0026, 0x0027, 0x0028, 0x0031,
                                                   0x0032, 0x0033, 0x0035, 0x0100, 0x0102};
  auto u16 = [&](size_t o) { return static_cast<uint32_t>(b[o] | (b[o + 1] << 8)); };
  auto u32 = [&](size_t o) { return u16(o) | (u16(o + 2) << 16); };
  uint64_t pos = 132, announced_end = 0;
  for (int elements = 0; pos + 8 <= b.size() && u16(pos) == 0x0002; ++elements) {
    const uint32_t element = u16(pos + 2);
    const std::string vr{static_cast<char>(b[pos + 4]), static_cast<char>(b[pos + 5])};
    char tag[16];
    std::snprintf(tag, sizeof tag, "(0002,%04X)", element);
    if (elements > 64 || !kVRs.count(vr))
      return std::string("file meta information element ") + tag + " has no valid VR";
    if (!kMetaElements.count(element))  // PS3.10's list; GDCM's meta reader asserts on others
      return std::string("file meta information holds an unknown element ") + tag;
    uint64_t header = 8, length = u16(pos + 6);
    if (kLongVRs.count(vr)) {
      if (pos + 12 > b.size()) return "file meta information (0002,xxxx) is truncated";
      header = 12, length = u32(pos + 8);
    }
    if (length == 0xFFFFFFFFu) return std::string("file meta information element ") + tag + " has an undefined length";
    if (pos + header + length > size) return "file meta information (0002,xxxx) is truncated";
    if (element == 0 && vr == "UL" && length == 4) announced_end = pos + header + length + u32(pos + 8);
    if (pos + header + length > b.size()) return "file meta information (0002,xxxx) is longer than 64 KiB";
    const auto* value = b.data() + pos + header;
    if (vr == "UI")  // digits and dots, padded with NUL (GDCM's meta reader asserts on others)
      for (uint64_t i = 0; i < length; ++i)
        if (!(std::isdigit(value[i]) || value[i] == '.' || (i + 1 == length && (value[i] == 0 || value[i] == ' '))))
          return std::string("file meta information element ") + tag + " is a UID with characters other than digits";
    if (element == 0x0010) {  // TransferSyntaxUID: one GDCM knows (it asserts on others while reading)
      std::string uid(reinterpret_cast<const char*>(value), length);
      while (!uid.empty() && (uid.back() == '\0' || uid.back() == ' ')) uid.pop_back();
      if (gdcm::TransferSyntax::GetTSType(uid.c_str()) == gdcm::TransferSyntax::TS_END)
        return "unknown TransferSyntaxUID (0002,0010) '" + uid.substr(0, 64) + "'";
      if (transfer_syntax) *transfer_syntax = uid;
    }
    pos += header + length;
  }
  if (announced_end && announced_end != pos)
    return "file meta information group length (0002,0000) disagrees with its elements";
  if (end) *end = pos;
  return "";
}

// Random access to a file's bytes through a 64 KiB window (the data set's walk reads element
// headers and skips values). The first window is the prefix already read; the file is opened only
// when the walk goes beyond it.
class FileBytes {
 public:
  FileBytes(const fs::path& file, uint64_t size, const std::vector<unsigned char>& prefix)
      : file_(file), size_(size), block_(prefix) {}
  uint64_t size() const { return size_; }
  // n bytes at `at` into out; false past the end of the file or on a read error
  bool get(uint64_t at, size_t n, unsigned char* out) {
    if (at + n > size_) return false;
    if (block_.empty() || at < block_at_ || at + n > block_at_ + block_.size()) {
      block_at_ = at;
      block_.resize(static_cast<size_t>(std::min<uint64_t>(65536, size_ - at)));
      if (!in_.is_open()) in_.open(file_, std::ios::binary);
      in_.clear();
      in_.seekg(static_cast<std::streamoff>(at));
      if (!in_.read(reinterpret_cast<char*>(block_.data()), static_cast<std::streamsize>(block_.size()))) {
        block_.clear();
        return false;
      }
    }
    std::memcpy(out, block_.data() + (at - block_at_), n);
    return true;
  }

 private:
  fs::path file_;
  std::ifstream in_;
  uint64_t size_;
  uint64_t block_at_ = 0;
  std::vector<unsigned char> block_;
};

// Whether the data set after the file meta group ends within the file: its elements walked up to
// the Pixel Data (7FE0,0010) (explicit or implicit VR, little or big endian; sequences and items of
// defined or undefined length, nested). GDCM's reader, when a data set runs past the end of the
// file, falls back to a second parse whose assertion aborts the process (ReadCompat's is.good()),
// so a truncated file is refused here. Walks only what it can read for sure: an element it cannot
// interpret (a VR that is none) ends the walk without a verdict. Empty when sound.
class DataSetWalk {
 public:
  DataSetWalk(FileBytes& f, bool explicit_vr, bool big) : f_(f), explicit_(explicit_vr), big_(big) {}

  std::string problem(uint64_t start) {
    // GDCM reads on after the meta group to see whether it goes on; at the end of the file it asserts
    if (start + 8 > f_.size()) return "the file ends after its file meta information (no data set)";
    uint64_t pos = start;
    const Result r = walk(pos, f_.size(), 0, false);
    if (r == Result::Truncated || r == Result::Malformed) return problem_;
    return "";
  }

 private:
  enum class Result { Done, ItemEnd, SequenceEnd, Truncated, Malformed, Unknown };

  uint32_t u16(const unsigned char* p) const { return big_ ? (p[0] << 8) | p[1] : p[0] | (p[1] << 8); }
  uint32_t u32(const unsigned char* p) const {
    return big_ ? (u16(p) << 16) | u16(p + 2) : u16(p) | (u16(p + 2) << 16);
  }

  Result cut(uint64_t at, uint32_t group, uint32_t element) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "the data set is truncated: element (%04X,%04X) at byte %llu runs past the end "
                  "of the file (%llu bytes)",
                  group, element, static_cast<unsigned long long>(at), static_cast<unsigned long long>(f_.size()));
    problem_ = buf;
    return Result::Truncated;
  }

  // A delimiter where an element belongs: GDCM's element reader asserts on (FFFE,E0DD) there.
  Result misplaced(uint64_t at, uint32_t element) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "the data set holds a delimiter (FFFE,%04X) where an element belongs, at byte %llu",
                  element, static_cast<unsigned long long>(at));
    problem_ = buf;
    return Result::Malformed;
  }

  // Elements from pos until `end` (defined length), an item or sequence delimiter, or the Pixel
  // Data at the top level.
  Result walk(uint64_t& pos, uint64_t end, int depth, bool implicit_inside) {
    if (depth > 32) return Result::Unknown;
    const bool explicit_vr = explicit_ && !implicit_inside;
    unsigned char h[12];
    while (pos < end) {
      if (++elements_ > 2000000) return Result::Unknown;
      if (!f_.get(pos, 8, h)) return pos + 8 > f_.size() ? cut(pos, 0, 0) : Result::Unknown;
      const uint32_t group = u16(h), element = u16(h + 2);
      if (depth == 0 && group == 0x7FE0 && element == 0x0010) return pixel_data(pos);
      if (group == 0xFFFE) {  // delimiters: no VR, 4-byte length; only an undefined-length item ends by one
        if (element == 0xE00D && end == UINT64_MAX) {
          pos += 8;
          return Result::ItemEnd;
        }
        return misplaced(pos, element);
      }
      uint64_t header = 8, length = u32(h + 4);
      bool sequence = false;
      if (explicit_vr) {
        const char vr[3] = {static_cast<char>(h[4]), static_cast<char>(h[5]), 0};
        if (kLongVRs.count(vr)) {
          if (!f_.get(pos + 8, 4, h + 8)) return cut(pos, group, element);
          header = 12, length = u32(h + 8);
          sequence = std::strcmp(vr, "SQ") == 0;
          if (std::strcmp(vr, "UN") == 0 && length == 0xFFFFFFFFu) sequence = true;  // implicit VR inside
        } else if (kVRs.count(vr)) {
          length = u16(h + 6);
        } else {  // no VR: read as implicit VR, as GDCM's fallback does (4-byte length at +4)
          sequence = length == 0xFFFFFFFFu;
        }
      } else {
        sequence = length == 0xFFFFFFFFu;  // implicit VR: undefined length only for sequences
      }
      if (length != 0xFFFFFFFFu) {
        if (pos + header + length > f_.size()) return cut(pos, group, element);
        if (sequence && length > 0) {  // a defined-length sequence: walk its items too
          uint64_t p = pos + header;
          const Result r = items(p, pos + header + length, depth, !explicit_vr || (explicit_vr && h[4] == 'U'));
          if (r != Result::Done) return r;
        }
        pos += header + length;
        continue;
      }
      if (!sequence) {  // GDCM's reader asserts on an undefined length anywhere but SQ, UN and Pixel Data
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "element (%04X,%04X) at byte %llu has an undefined length (only sequences, UN and the "
                      "Pixel Data may)",
                      group, element, static_cast<unsigned long long>(pos));
        problem_ = buf;
        return Result::Malformed;
      }
      pos += header;
      const Result r = items(pos, UINT64_MAX, depth, !explicit_vr || h[4] == 'U');
      if (r != Result::SequenceEnd) return r == Result::Done ? cut(pos, group, element) : r;
    }
    return pos > end ? Result::Unknown : Result::Done;  // (an item's elements overrunning it: GDCM's to judge)
  }

  // The Pixel Data element: native (a defined length within the file) or encapsulated (fragments:
  // items of defined length up to a sequence delimiter), which GDCM's reader asserts on when broken.
  Result pixel_data(uint64_t pos) {
    unsigned char h[12];
    if (!f_.get(pos, 8, h)) return cut(pos, 0x7FE0, 0x0010);
    uint64_t header = 8, length = u32(h + 4);
    if (explicit_) {
      if (!f_.get(pos, 12, h)) return cut(pos, 0x7FE0, 0x0010);
      header = 12, length = u32(h + 8);
    }
    if (length != 0xFFFFFFFFu) {  // native pixels within the file (GDCM allocates the length it
                                  // declares: 4 GB for a clobbered one), then what follows
      const uint64_t after = pos + header + length;
      return after > f_.size() ? cut(pos, 0x7FE0, 0x0010) : trailing(after);
    }
    pos += header;
    for (int fragments = 0; fragments < 1000000; ++fragments) {
      if (!f_.get(pos, 8, h)) return cut(pos, 0xFFFE, 0xE000);
      const uint32_t group = u16(h), element = u16(h + 2), size = u32(h + 4);
      if (group != 0xFFFE || (element != 0xE000 && element != 0xE0DD)) {
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "the encapsulated pixel data holds (%04X,%04X) where a fragment belongs, at byte %llu", group,
                      element, static_cast<unsigned long long>(pos));
        problem_ = buf;
        return Result::Malformed;
      }
      pos += 8;
      if (element == 0xE0DD) return trailing(pos);
      if (size == 0xFFFFFFFFu || pos + size > f_.size()) return cut(pos - 8, group, element);
      pos += size;
    }
    return Result::Unknown;
  }

  // Elements after the Pixel Data (padding, signatures), which GDCM's full read parses too; fewer
  // than 8 bytes left are no element and no verdict.
  Result trailing(uint64_t pos) {
    if (pos + 8 > f_.size() || trailing_) return Result::Done;
    trailing_ = true;
    const Result r = walk(pos, f_.size(), 1, false);
    return r == Result::Truncated || r == Result::Malformed ? r : Result::Done;
  }

  // The items of a sequence from pos: until `end` (defined length) or its delimiter.
  Result items(uint64_t& pos, uint64_t end, int depth, bool implicit_inside) {
    unsigned char h[8];
    while (pos < end) {
      if (!f_.get(pos, 8, h)) return end == UINT64_MAX || pos + 8 > f_.size() ? cut(pos, 0xFFFE, 0) : Result::Unknown;
      const uint32_t group = u16(h), element = u16(h + 2), length = u32(h + 4);
      if (group != 0xFFFE) return Result::Unknown;
      pos += 8;
      if (element == 0xE0DD) return Result::SequenceEnd;
      if (element != 0xE000) return Result::Unknown;
      if (length != 0xFFFFFFFFu) {
        if (pos + length > f_.size()) return cut(pos - 8, group, element);
        uint64_t p = pos;
        const Result r = walk(p, pos + length, depth + 1, implicit_inside);
        if (r != Result::Done) return r;
        pos += length;
      } else {
        const Result r = walk(pos, UINT64_MAX, depth + 1, implicit_inside);
        if (r != Result::ItemEnd) return r == Result::Done ? cut(pos, group, element) : r;
      }
    }
    return end == UINT64_MAX ? cut(pos, 0xFFFE, 0xE0DD) : Result::Done;
  }

  FileBytes& f_;
  bool explicit_, big_;
  int64_t elements_ = 0;
  bool trailing_ = false;
  std::string problem_;
};

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

Vec3 slice_normal(const SliceRecord& r) {
  return r.has_slice_normal ? r.slice_normal : normalized(cross(r.row_cos, r.col_cos));
}

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
  const Vec3 normal = slice_normal(base);
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
  const uint64_t size = fs::file_size(file, ec);
  const std::vector<unsigned char> prefix = file_prefix(file, ec ? 0 : size);
  const bool magic = has_dicm_magic(prefix);
  if (magic) {
    uint64_t data_set = 0;
    std::string ts;
    std::string problem = meta_group_problem(prefix, size, &data_set, &ts);
    if (problem.empty()) {
      // little endian explicit (and its compressed relatives) or implicit, or explicit big endian;
      // deflated data sets cannot be walked on the raw bytes
      const bool implicit = ts == "1.2.840.10008.1.2", big = ts == "1.2.840.10008.1.2.2";
      if (ts != "1.2.840.10008.1.2.1.99") {
        FileBytes bytes(file, size, prefix);
        problem = DataSetWalk(bytes, !implicit, big).problem(data_set);
      }
    }
    if (!problem.empty()) {
      res.kind = HeaderResult::Kind::Corrupt;
      res.reason = problem;
      return res;
    }
  }
  gdcm::Reader reader;
  reader.SetFileName(file.c_str());
  bool parsed = false;
  try {
    // a deflated data set inflates without a bound we could know: no cap there
    const size_t cap = deflated_syntax(prefix) ? 0 : gdcm_read_cap(size);
    without_abort(
        file.string(), kGdcmAborted, [&] { parsed = reader.ReadUpToTag(kPixelData); }, cap);
  } catch (const Error& e) {
    res.kind = HeaderResult::Kind::Corrupt;
    res.reason = e.what();
    return res;
  }
  if (!parsed) {
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
  base.acquisition_3d = tr.str(ds, gdcm::Tag(0x0018, 0x0023)).value_or("").rfind("3D", 0) == 0;
  base.epi = tr.str(ds, gdcm::Tag(0x0018, 0x9018)).value_or("").rfind("Y", 0) == 0 ||
             tr.str(ds, gdcm::Tag(0x0018, 0x0020)).value_or("").find("EP") != std::string::npos;
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

bool deflated_data_set(const fs::path& file) {
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  return !ec && deflated_syntax(file_prefix(file, std::min<uint64_t>(size, 2048)));
}

}  // namespace aneura
