#include "io/dicom_decode.hpp"

#include <gdcmPixmapReader.h>
#include <gdcmTrace.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.hpp"
#include "io/abort_guard.hpp"
#include "io/dicom_header.hpp"
#include "io/external_decoder.hpp"

namespace aneura {

namespace {

// GDCM pads a Pixel Data element cut short by the end of the file ("Incomplete Pixel Data") and
// reports success. For a defined-length Pixel Data of `vl` bytes this finds the element's header
// in the file (tag 7FE0,0010 followed by that very length) and checks that its value fits.
bool pixel_data_truncated(const std::string& file, uint32_t vl) {
  std::ifstream in(file, std::ios::binary);
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  auto le32 = [](const unsigned char* q) { return q[0] | (q[1] << 8) | (q[2] << 16) | (uint32_t(q[3]) << 24); };
  // Fast path: the value ends exactly at the end of the file (explicit or implicit VR header).
  for (int64_t header : {12, 8}) {
    unsigned char h[12];
    const int64_t at = size - static_cast<int64_t>(vl) - header;
    if (at < 0) continue;
    in.seekg(at);
    if (!in.read(reinterpret_cast<char*>(h), header)) {
      in.clear();
      continue;
    }
    if (h[0] == 0xE0 && h[1] == 0x7F && h[2] == 0x10 && h[3] == 0x00 && le32(h + header - 4) == vl) return false;
  }
  // Search backwards from where a complete file would put the header; a truncated file puts it
  // earlier, by the missing bytes. Read in blocks; the value itself is never scanned in full.
  const int64_t window = 1 << 20;
  const int64_t hi = size - 8;
  const int64_t lo = std::max<int64_t>(0, size - static_cast<int64_t>(vl) - 12 - window * 64);
  std::vector<unsigned char> buf;
  for (int64_t end = hi; end >= lo; end -= window) {
    const int64_t start = std::max<int64_t>(lo, end - window);
    buf.resize(static_cast<size_t>(end - start + 12));
    in.clear();
    in.seekg(start);
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    const int64_t got = in.gcount();
    for (int64_t i = std::min<int64_t>(got - 8, end - start); i >= 0; --i) {
      const unsigned char* b = buf.data() + i;
      if (b[0] != 0xE0 || b[1] != 0x7F || b[2] != 0x10 || b[3] != 0x00) continue;
      int64_t header = 0;
      if (le32(b + 4) == vl)
        header = 8;  // implicit VR
      else if (i + 12 <= got && (b[4] == 'O') && le32(b + 8) == vl)
        header = 12;  // explicit OB/OW
      if (header == 0) continue;
      return start + i + header + static_cast<int64_t>(vl) > size;
    }
    if (start == lo) break;
  }
  return false;  // header not found where it could be: nothing to say
}

}  // namespace

DecodedPixels decode_pixels(const std::string& file) {
  gdcm::Trace::SetWarning(false);
  gdcm::Trace::SetError(false);
  auto reader = std::make_shared<gdcm::PixmapReader>();
  reader->SetFileName(file.c_str());
  bool read = false;
  std::error_code ec;
  const size_t file_bytes = static_cast<size_t>(std::filesystem::file_size(file, ec));
  const bool deflated = deflated_data_set(file);
  without_abort(
      file, kGdcmAborted, [&] { read = reader->Read(); }, deflated ? 0 : gdcm_read_cap(file_bytes));
  if (!read) throw Error(ErrorCode::CorruptInput, "cannot read DICOM file (truncated or malformed)", file);
  const gdcm::Pixmap& pm = reader->GetPixmap();
  const gdcm::PixelFormat& pf = pm.GetPixelFormat();
  DecodedPixels px;
  px.file = file;
  px.cols = static_cast<int>(pm.GetDimension(0));
  px.rows = static_cast<int>(pm.GetDimension(1));
  px.frames = pm.GetNumberOfDimensions() > 2 ? static_cast<int>(pm.GetDimension(2)) : 1;
  px.bits_allocated = pf.GetBitsAllocated();
  px.bits_stored = pf.GetBitsStored();
  px.high_bit = pf.GetHighBit();
  px.pixel_representation = pf.GetPixelRepresentation();
  if (pf.GetSamplesPerPixel() != 1)
    throw Error(ErrorCode::Unsupported, "colour pixel data is not supported (SamplesPerPixel (0028,0002))", file);
  if (px.bits_allocated != 8 && px.bits_allocated != 16 && px.bits_allocated != 32)
    throw Error(ErrorCode::Unsupported,
                "BitsAllocated (0028,0100) = " + std::to_string(px.bits_allocated) + " is not supported", file);
  const size_t expected = static_cast<size_t>(px.rows) * px.cols * px.frames * (px.bits_allocated / 8);
  const unsigned long len = pm.GetBufferLength();
  if (len < expected) throw Error(ErrorCode::CorruptInput, "pixel data shorter than Rows x Columns x frames", file);
  // Uncompressed little endian: use the Pixel Data bytes as read. GDCM's GetBuffer would copy
  // them and run a slow per-pixel clean-up of unused high bits, which copy_slice does anyway.
  const gdcm::TransferSyntax& ts = pm.GetTransferSyntax();
  const gdcm::DataSet& ds = reader->GetFile().GetDataSet();
  const gdcm::ByteValue* bv = ds.FindDataElement(gdcm::Tag(0x7fe0, 0x0010))
                                  ? ds.GetDataElement(gdcm::Tag(0x7fe0, 0x0010)).GetByteValue()
                                  : nullptr;
  if (bv && !ts.IsEncapsulated() && ts != gdcm::TransferSyntax::DeflatedExplicitVRLittleEndian &&
      pixel_data_truncated(file, bv->GetLength()))
    throw Error(ErrorCode::CorruptInput, "Pixel Data (7FE0,0010) is cut short by the end of the file (truncated)",
                file);
  const bool raw_le =
      ts == gdcm::TransferSyntax::ExplicitVRLittleEndian || ts == gdcm::TransferSyntax::ImplicitVRLittleEndian;
  if (raw_le && bv && bv->GetLength() >= expected) {
    px.data = bv->GetPointer();
    px.reader = reader;
    return px;
  }
  px.decoded.reset(new char[len]);
  const bool jpeg_ls = ts == gdcm::TransferSyntax::JPEGLSLossless || ts == gdcm::TransferSyntax::JPEGLSNearLossless;
  bool decoded = false;
  without_abort(
      file, "GDCM's decoder aborted on this file's pixel data (an assertion on damaged data): refused",
      [&] { decoded = pm.GetBuffer(px.decoded.get()); }, deflated ? 0 : gdcm_read_cap(file_bytes, len));
  if (!decoded && jpeg_ls) {
    if (auto plain = decompress_jpeg_ls_externally(file)) {
      DecodedPixels out;
      try {
        out = decode_pixels(plain->string());
      } catch (...) {
        std::filesystem::remove(*plain);
        throw;
      }
      std::filesystem::remove(*plain);
      out.file = file;
      return out;
    }
  }
  if (!decoded)
    throw Error(
        ErrorCode::CorruptInput,
        "cannot decode Pixel Data (7FE0,0010) in transfer syntax " + std::string(ts.GetString() ? ts.GetString() : "?"),
        file);
  px.data = px.decoded.get();
  return px;
}

namespace {

template <class Raw, class Out>
void convert(const DecodedPixels& px, const SliceRecord& rec, Out* out, bool flip_rows) {
  using U = std::make_unsigned_t<Raw>;
  const int bs = px.bits_stored, ba = px.bits_allocated;
  const int shift = std::max(0, px.high_bit + 1 - bs);
  const uint64_t mask = bs >= 64 ? ~0ull : ((1ull << bs) - 1);
  const bool is_signed = px.pixel_representation == 1;
  const bool partial = bs < ba || shift > 0;
  const bool invert = rec.photometric == "MONOCHROME1";
  // MONOCHROME1: the smallest stored value is white; map v -> min + max - v of the stored range.
  const int64_t inv_sum_i = is_signed ? -1 : static_cast<int64_t>(mask);
  const double slope = rec.slope, icpt = rec.intercept;
  const bool integral = slope == 1.0 && icpt == std::nearbyint(icpt) && std::fabs(icpt) < 1e15;
  const int64_t icpt_i = integral ? static_cast<int64_t>(icpt) : 0;
  // Stored value of one sample: unused high bits masked, sign taken from HighBit.
  const int ext = 64 - bs;
  auto stored = [&](U raw) -> int64_t {
    if (!partial) return is_signed ? static_cast<int64_t>(static_cast<Raw>(raw)) : static_cast<int64_t>(raw);
    const uint64_t u = (static_cast<uint64_t>(raw) >> shift) & mask;
    return is_signed ? static_cast<int64_t>(u << ext) >> ext : static_cast<int64_t>(u);
  };

  const size_t frame_px = static_cast<size_t>(px.rows) * px.cols;
  const U* base = reinterpret_cast<const U*>(px.data);
  int tile_row = 0, tile_col = 0, frame = rec.frame;
  if (rec.mosaic_tiles > 0) {
    const int grid = px.cols / rec.cols;
    tile_row = rec.frame / grid;
    tile_col = rec.frame % grid;
    frame = 0;
  }
  if (frame >= px.frames)
    throw Error(ErrorCode::CorruptInput, "frame " + std::to_string(frame) + " missing from pixel data", px.file);
  const U* src = base + frame * frame_px;
  for (int j = 0; j < rec.rows; ++j) {
    const U* row = src + static_cast<size_t>(tile_row * rec.rows + j) * px.cols + tile_col * rec.cols;
    Out* o = out + static_cast<size_t>(flip_rows ? rec.rows - 1 - j : j) * rec.cols;
    if (integral) {  // slope 1, whole intercept: integer arithmetic (the common CT/MR case)
      for (int i = 0; i < rec.cols; ++i) {
        const int64_t v = stored(row[i]);
        o[i] = static_cast<Out>((invert ? inv_sum_i - v : v) + icpt_i);
      }
    } else {
      for (int i = 0; i < rec.cols; ++i) {
        const int64_t v = stored(row[i]);
        o[i] = static_cast<Out>(static_cast<double>(invert ? inv_sum_i - v : v) * slope + icpt);
      }
    }
  }
}

}  // namespace

template <class Out>
void copy_slice(const DecodedPixels& px, const SliceRecord& rec, Out* out, bool flip_rows) {
  if (rec.mosaic_tiles == 0 && (px.rows != rec.rows || px.cols != rec.cols))
    throw Error(ErrorCode::CorruptInput, "decoded image size differs from Rows/Columns", px.file);
  switch (px.bits_allocated) {
    case 8:
      convert<int8_t>(px, rec, out, flip_rows);
      break;
    case 16:
      convert<int16_t>(px, rec, out, flip_rows);
      break;
    default:
      convert<int32_t>(px, rec, out, flip_rows);
      break;
  }
}

template void copy_slice<float>(const DecodedPixels&, const SliceRecord&, float*, bool);
template void copy_slice<int16_t>(const DecodedPixels&, const SliceRecord&, int16_t*, bool);

bool fits_int16(const SliceRecord& rec) {
  if (rec.slope != 1.0 || rec.intercept != std::nearbyint(rec.intercept)) return false;
  const int bs = std::min(rec.bits_stored, 32);
  const double lo = rec.pixel_representation ? -std::ldexp(1.0, bs - 1) : 0.0;
  const double hi = rec.pixel_representation ? std::ldexp(1.0, bs - 1) - 1 : std::ldexp(1.0, bs) - 1;
  return lo + rec.intercept >= -32768 && hi + rec.intercept <= 32767;
}

}  // namespace aneura
