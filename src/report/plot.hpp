// Raster drawing for the report's pictures (the MIPs): a blank canvas and lines. Charts with
// text are SVG (report/svg.hpp).
#pragma once
#include <array>

#include "io/png.hpp"

namespace aneura {

using Rgb = std::array<uint8_t, 3>;

RgbImage blank_canvas(int w, int h, Rgb background = {255, 255, 255});
void draw_line(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);

}  // namespace aneura
