#include "io/dicom_decode.hpp"

#include <gdcmPixmapReader.h>
#include <gdcmTrace.h>

#include <cstdint>
#include <cstring>

#include "core/error.hpp"

namespace aneura {

DecodedPixels decode_pixels(const std::string& file) {
  gdcm::Trace::SetWarning(false);
  gdcm::Trace::SetError(false);
  gdcm::PixmapReader reader;
  reader.SetFileName(file.c_str());
  if (!reader.Read())
    throw Error(ErrorCode::CorruptInput, "cannot read DICOM file (truncated or malformed)", file);
  const gdcm::Pixmap& pm = reader.GetPixmap();
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
  if (len < expected)
    throw Error(ErrorCode::CorruptInput, "pixel data shorter than Rows x Columns x frames", file);
  // Uncompressed pixel data shorter than announced: a truncated file (GDCM would pad it).
  const gdcm::DataSet& ds = reader.GetFile().GetDataSet();
  if (ds.FindDataElement(gdcm::Tag(0x7fe0, 0x0010))) {
    const gdcm::ByteValue* bv = ds.GetDataElement(gdcm::Tag(0x7fe0, 0x0010)).GetByteValue();
    if (bv && bv->GetLength() < expected)
      throw Error(ErrorCode::CorruptInput,
                  "Pixel Data (7FE0,0010) holds " + std::to_string(bv->GetLength()) + " bytes, " +
                      std::to_string(expected) + " expected (truncated file?)",
                  file);
  }
  px.buffer.reset(new char[len]);
  if (!pm.GetBuffer(px.buffer.get()))
    throw Error(ErrorCode::CorruptInput,
                "cannot decode Pixel Data (7FE0,0010) in transfer syntax " +
                    std::string(pm.GetTransferSyntax().GetString() ? pm.GetTransferSyntax().GetString() : "?"),
                file);
  return px;
}

namespace {

template <class Raw>
void convert(const DecodedPixels& px, const SliceRecord& rec, float* out) {
  using U = std::make_unsigned_t<Raw>;
  const int bs = px.bits_stored, ba = px.bits_allocated;
  const int shift = std::max(0, px.high_bit + 1 - bs);
  const uint64_t mask = bs >= 64 ? ~0ull : ((1ull << bs) - 1);
  const bool is_signed = px.pixel_representation == 1;
  const bool partial = bs < ba || shift > 0;
  const bool invert = rec.photometric == "MONOCHROME1";
  // MONOCHROME1: the smallest stored value is white; map v -> min + max - v of the stored range.
  const double inv_sum = is_signed ? -1.0 : static_cast<double>(mask);
  const double slope = rec.slope, icpt = rec.intercept;

  const size_t frame_px = static_cast<size_t>(px.rows) * px.cols;
  const U* base = reinterpret_cast<const U*>(px.buffer.get());
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
    float* o = out + static_cast<size_t>(j) * rec.cols;
    for (int i = 0; i < rec.cols; ++i) {
      double v;
      if (partial) {
        uint64_t u = (static_cast<uint64_t>(row[i]) >> shift) & mask;
        int64_t sv = static_cast<int64_t>(u);
        if (is_signed && (u >> (bs - 1)) & 1) sv -= static_cast<int64_t>(1) << bs;
        v = static_cast<double>(sv);
      } else {
        v = is_signed ? static_cast<double>(static_cast<Raw>(row[i])) : static_cast<double>(row[i]);
      }
      if (invert) v = inv_sum - v;
      o[i] = static_cast<float>(v * slope + icpt);
    }
  }
}

}  // namespace

void copy_slice(const DecodedPixels& px, const SliceRecord& rec, float* out) {
  if (rec.mosaic_tiles == 0 && (px.rows != rec.rows || px.cols != rec.cols))
    throw Error(ErrorCode::CorruptInput, "decoded image size differs from Rows/Columns", px.file);
  switch (px.bits_allocated) {
    case 8: convert<int8_t>(px, rec, out); break;
    case 16: convert<int16_t>(px, rec, out); break;
    default: convert<int32_t>(px, rec, out); break;
  }
}

}  // namespace aneura
