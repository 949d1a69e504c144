// Pixel decoding with GDCM (every transfer syntax it supports: implicit/explicit VR, big endian,
// deflate, JPEG baseline/lossless, JPEG-LS, JPEG 2000, RLE) and conversion of one 2D image to
// rescaled float values.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/dicom_header.hpp"

namespace aneura {

struct DecodedPixels {
  std::string file;
  int rows = 0, cols = 0, frames = 1;  // of the stored image (whole mosaic for mosaics)
  int bits_allocated = 16, bits_stored = 16, high_bit = 15, pixel_representation = 0;
  const char* data = nullptr;  // frames * rows * cols samples, host byte order
  // Owners of `data`: the reader (uncompressed little endian: its Pixel Data bytes are used as
  // they are) or a decoded copy (every other transfer syntax).
  std::shared_ptr<void> reader;
  std::unique_ptr<char[]> decoded;
};

// Decodes the whole pixel data of `file`. Throws Error(CorruptInput) naming the file when the
// pixel data is missing, truncated or cannot be decoded.
DecodedPixels decode_pixels(const std::string& file);

// Writes rec.rows * rec.cols values (column fastest; rows bottom-up when flip_rows) for the image
// `rec` describes: masks unused high bits, sign-extends from HighBit, inverts MONOCHROME1, then
// applies RescaleSlope/RescaleIntercept of that slice or frame. Out is float or int16_t; for
// int16_t the caller has checked with fits_int16() that every value is an exact int16.
template <class Out>
void copy_slice(const DecodedPixels& px, const SliceRecord& rec, Out* out, bool flip_rows = false);

// True when every value of `rec` after rescale is an integer within int16 (slope 1, integral
// intercept, stored range shifted by the intercept inside [-32768, 32767]).
bool fits_int16(const SliceRecord& rec);

}  // namespace aneura
