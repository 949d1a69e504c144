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
  std::unique_ptr<char[]> buffer;      // frames * rows * cols samples, host byte order (not zero-filled)
};

// Decodes the whole pixel data of `file`. Throws Error(CorruptInput) naming the file when the
// pixel data is missing, truncated or cannot be decoded.
DecodedPixels decode_pixels(const std::string& file);

// Writes rec.rows * rec.cols floats (row-major, column fastest) for the image `rec` describes:
// masks unused high bits, sign-extends from HighBit, inverts MONOCHROME1, then applies
// RescaleSlope/RescaleIntercept of that slice or frame.
void copy_slice(const DecodedPixels& px, const SliceRecord& rec, float* out);

}  // namespace aneura
