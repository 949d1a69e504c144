#include "report/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace aneura {

namespace {

// A number as a tick label: as few decimals as the step needs.
std::string tick_label(double v, double step) {
  const int decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, std::abs(v) < step * 1e-9 ? 0.0 : v);
  return b;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = p;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw * 0.999) {
      step = m * p;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

std::string render_svg(const SvgChart& c) {
  // plot area inside the panel: room for the title, the y label and ticks, the x label and ticks
  const double left = 58, right = 12, top = 30, bottom = 44;
  const double w = c.width - left - right, h = c.height - top - bottom;
  const double xspan = c.xmax > c.xmin ? c.xmax - c.xmin : 1, yspan = c.ymax > c.ymin ? c.ymax - c.ymin : 1;
  auto px = [&](double x) { return left + (x - c.xmin) / xspan * w; };
  auto py = [&](double y) { return top + h - (y - c.ymin) / yspan * h; };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" << c.width << "\" height=\"" << c.height
    << "\" viewBox=\"0 0 " << c.width << " " << c.height << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s << "<title>" << xml_escape(c.title) << "</title>\n";
  s << "<rect x=\"0\" y=\"0\" width=\"" << c.width << "\" height=\"" << c.height << "\" fill=\"white\"/>\n";
  s << "<text x=\"" << fmt(c.width / 2.0) << "\" y=\"16\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">"
    << xml_escape(c.title) << "</text>\n";
  // grid, ticks and tick labels
  const auto xt = nice_ticks(c.xmin, c.xmax, std::max(2, static_cast<int>(w / 60)));
  const auto yt = nice_ticks(c.ymin, c.ymax, std::max(2, static_cast<int>(h / 40)));
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double v : xt) {
    s << "<line x1=\"" << fmt(px(v)) << "\" y1=\"" << fmt(top) << "\" x2=\"" << fmt(px(v)) << "\" y2=\"" << fmt(top + h)
      << "\" stroke=\"#e5e5e5\"/>\n";
    s << "<text x=\"" << fmt(px(v)) << "\" y=\"" << fmt(top + h + 14) << "\" text-anchor=\"middle\">"
      << tick_label(v, xstep) << "</text>\n";
  }
  for (double v : yt) {
    s << "<line x1=\"" << fmt(left) << "\" y1=\"" << fmt(py(v)) << "\" x2=\"" << fmt(left + w) << "\" y2=\""
      << fmt(py(v)) << "\" stroke=\"#e5e5e5\"/>\n";
    s << "<text x=\"" << fmt(left - 5) << "\" y=\"" << fmt(py(v) + 4) << "\" text-anchor=\"end\">"
      << tick_label(v, ystep) << "</text>\n";
  }
  s << "<rect x=\"" << fmt(left) << "\" y=\"" << fmt(top) << "\" width=\"" << fmt(w) << "\" height=\"" << fmt(h)
    << "\" fill=\"none\" stroke=\"#777\"/>\n";
  // axis labels
  s << "<text x=\"" << fmt(left + w / 2) << "\" y=\"" << fmt(c.height - 8.0) << "\" text-anchor=\"middle\">"
    << xml_escape(c.x_label) << "</text>\n";
  s << "<text transform=\"translate(14," << fmt(top + h / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
    << xml_escape(c.y_label) << "</text>\n";
  // series, clipped to the plot area
  s << "<g>\n";
  for (const auto& series : c.series) {
    std::string d;
    bool pen_down = false;
    for (size_t i = 0; i < series.x.size() && i < series.y.size(); ++i) {
      const double x = series.x[i], y = series.y[i];
      if (!std::isfinite(x) || !std::isfinite(y)) {
        pen_down = false;
        continue;
      }
      const double cy = std::clamp(y, c.ymin, c.ymax);
      d += (pen_down ? " L" : " M") + fmt(px(x)) + " " + fmt(py(cy));
      pen_down = true;
    }
    if (!d.empty())
      s << "<path d=\"" << d.substr(1) << "\" fill=\"none\" stroke=\"" << series.colour << "\" stroke-width=\"1.8\""
        << (series.dashed ? " stroke-dasharray=\"4 3\"" : "") << "/>\n";
    if (series.dots)
      for (size_t i = 0; i < series.x.size() && i < series.y.size(); ++i)
        if (std::isfinite(series.x[i]) && std::isfinite(series.y[i]))
          s << "<circle cx=\"" << fmt(px(series.x[i])) << "\" cy=\"" << fmt(py(std::clamp(series.y[i], c.ymin, c.ymax)))
            << "\" r=\"2.5\" fill=\"" << series.colour << "\"/>\n";
  }
  s << "</g>\n";
  // legend (top right inside the plot, on a white box over the lines) and notes (bottom right)
  size_t named = 0, longest = 0;
  for (const auto& series : c.series)
    if (!series.name.empty()) ++named, longest = std::max(longest, series.name.size());
  const double lx = left + w - 4 - (32 + 6.2 * longest) - 4;  // the legend box's left edge
  if (named)
    s << "<rect x=\"" << fmt(lx + 4) << "\" y=\"" << fmt(top + 3) << "\" width=\"" << fmt(32 + 6.2 * longest)
      << "\" height=\"" << fmt(14.0 * named + 4) << "\" fill=\"white\" fill-opacity=\"0.85\"/>\n";
  int row = 0;
  for (const auto& series : c.series) {
    if (series.name.empty()) continue;
    const double y = top + 12 + 14 * row++;
    s << "<line x1=\"" << fmt(lx + 8) << "\" y1=\"" << fmt(y - 4) << "\" x2=\"" << fmt(lx + 26) << "\" y2=\""
      << fmt(y - 4) << "\" stroke=\"" << series.colour << "\" stroke-width=\"2\""
      << (series.dashed ? " stroke-dasharray=\"4 3\"" : "") << "/>\n";
    s << "<text x=\"" << fmt(lx + 30) << "\" y=\"" << fmt(y) << "\">" << xml_escape(series.name) << "</text>\n";
  }
  for (size_t i = 0; i < c.notes.size(); ++i)
    s << "<text x=\"" << fmt(left + w - 6) << "\" y=\"" << fmt(top + h - 8 - 14.0 * (c.notes.size() - 1 - i))
      << "\" text-anchor=\"end\" font-weight=\"bold\">" << xml_escape(c.notes[i]) << "</text>\n";
  s << "</svg>";
  return s.str();
}

}  // namespace aneura
