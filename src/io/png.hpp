// PNG files through ITK's PNGImageIO: RGB pictures for QA and reports, 16-bit grey slices for
// DeepLesion-style sources.
#pragma once
#include <cstdint>
#include <filesystem>
#include <vector>

namespace aneura {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // height rows of width pixels, 3 bytes each, top row first
  RgbImage() = default;
  RgbImage(int w, int h) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3, 0) {}
  uint8_t* at(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

// Written atomically.
void write_png(const RgbImage& img, const std::filesystem::path& path);

struct Gray16Image {
  int width = 0, height = 0;
  std::vector<uint16_t> pixels;  // top row first
};
Gray16Image read_png_gray16(const std::filesystem::path& path);
void write_png(const Gray16Image& img, const std::filesystem::path& path);  // atomically

}  // namespace aneura
