#include "report/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace aneura {

RgbImage blank_canvas(int w, int h, Rgb bg) {
  RgbImage img(w, h);
  for (size_t i = 0; i < img.rgb.size(); i += 3) std::copy(bg.begin(), bg.end(), img.rgb.begin() + i);
  return img;
}

static void put(RgbImage& img, int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  std::copy(c.begin(), c.end(), img.at(x, y));
}

void draw_line(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c, int t) {
  // Bresenham with a square pen
  const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1, dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    for (int a = -(t - 1) / 2; a <= t / 2; ++a)
      for (int b = -(t - 1) / 2; b <= t / 2; ++b) put(img, x0 + a, y0 + b, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

}  // namespace aneura
