// Minimal raster plots for the report (lines, points, panels) into RgbImage; text lives in the
// HTML around the pictures.
#pragma once
#include <array>
#include <vector>

#include "io/png.hpp"

namespace aneura {

using Rgb = std::array<uint8_t, 3>;

struct Plot {
  int x0, y0, w, h;               // plotting area in pixels
  double xmin, xmax, ymin, ymax;  // data range
  Plot(RgbImage& canvas, int x0, int y0, int w, int h, double xmin, double xmax, double ymin, double ymax);
  RgbImage* canvas;
  void frame(Rgb c = {120, 120, 120});
  void grid(int nx, int ny, Rgb c = {225, 225, 225});
  void polyline(const std::vector<double>& x, const std::vector<double>& y, Rgb c, int thickness = 2);
  void dot(double x, double y, Rgb c, int radius = 2);
};

RgbImage blank_canvas(int w, int h, Rgb background = {255, 255, 255});
void draw_line(RgbImage& img, int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);

}  // namespace aneura
