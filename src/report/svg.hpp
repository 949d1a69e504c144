// Line charts as SVG, for the report: a titled panel with labelled axes, ticks at round values,
// grid lines, one polyline (and optional dots) per series and a legend. SVG text stays crisp at any
// zoom and can be searched and copied in a browser; the element is embedded in the HTML page.
#pragma once
#include <string>
#include <vector>

namespace aneura {

struct SvgSeries {
  std::string name;          // legend entry ("" : none)
  std::string colour;        // any SVG colour, e.g. "#1f77b4"
  std::vector<double> x, y;  // non-finite values break the line
  bool dots = false;
  bool dashed = false;
};

struct SvgChart {
  std::string title, x_label, y_label;
  double xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  int width = 320, height = 260;  // pixels, the whole panel
  std::vector<SvgSeries> series;
  std::vector<std::string> notes;  // lines written inside the plot area, bottom right
};

// Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// The chart as an <svg> element.
std::string render_svg(const SvgChart& c);

// Text escaped for XML/HTML (&, <, >, ").
std::string xml_escape(const std::string& s);

}  // namespace aneura
