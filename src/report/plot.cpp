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

Plot::Plot(RgbImage& c, int x0_, int y0_, int w_, int h_, double xmin_, double xmax_, double ymin_, double ymax_)
    : x0(x0_), y0(y0_), w(w_), h(h_), xmin(xmin_), xmax(xmax_ > xmin_ ? xmax_ : xmin_ + 1), ymin(ymin_),
      ymax(ymax_ > ymin_ ? ymax_ : ymin_ + 1), canvas(&c) {}

void Plot::frame(Rgb c) {
  draw_line(*canvas, x0, y0, x0 + w, y0, c);
  draw_line(*canvas, x0, y0 + h, x0 + w, y0 + h, c);
  draw_line(*canvas, x0, y0, x0, y0 + h, c);
  draw_line(*canvas, x0 + w, y0, x0 + w, y0 + h, c);
}

void Plot::grid(int nx, int ny, Rgb c) {
  for (int i = 1; i < nx; ++i) draw_line(*canvas, x0 + w * i / nx, y0, x0 + w * i / nx, y0 + h, c);
  for (int i = 1; i < ny; ++i) draw_line(*canvas, x0, y0 + h * i / ny, x0 + w, y0 + h * i / ny, c);
}

void Plot::polyline(const std::vector<double>& x, const std::vector<double>& y, Rgb c, int t) {
  auto px = [&](double v) { return x0 + static_cast<int>(std::lround((v - xmin) / (xmax - xmin) * w)); };
  auto py = [&](double v) { return y0 + h - static_cast<int>(std::lround((v - ymin) / (ymax - ymin) * h)); };
  for (size_t i = 1; i < x.size() && i < y.size(); ++i)
    if (std::isfinite(y[i - 1]) && std::isfinite(y[i])) draw_line(*canvas, px(x[i - 1]), py(y[i - 1]), px(x[i]), py(y[i]), c, t);
}

void Plot::dot(double x, double y, Rgb c, int r) {
  const int cx = x0 + static_cast<int>(std::lround((x - xmin) / (xmax - xmin) * w));
  const int cy = y0 + h - static_cast<int>(std::lround((y - ymin) / (ymax - ymin) * h));
  for (int a = -r; a <= r; ++a)
    for (int b = -r; b <= r; ++b)
      if (a * a + b * b <= r * r) put(*canvas, cx + a, cy + b, c);
}

}  // namespace aneura
