#include "harmonize/qa.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "harmonize/normalize.hpp"
#include "harmonize/orient.hpp"

namespace aneura {

RgbImage triplanar(const Volume<float>& in_image, const Volume<uint8_t>& in_mask) {
  if (in_mask.geom.size != in_image.geom.size) throw Error(ErrorCode::Internal, "QA mask and image differ in size");
  Volume<float> first(in_image.geom);
  std::copy(in_image.data.begin(), in_image.data.begin() + first.data.size(), first.data.begin());
  const AxisMap m = orientation_map(first.geom, "RAS");
  const Volume<float> img = reorient(first, m);
  const Volume<uint8_t> mask = reorient(in_mask, m);
  const auto& n = img.geom.size;

  // Slice through the mask centroid (volume centre when the mask is empty).
  double c[3] = {0, 0, 0}, count = 0;
  for (int64_t k = 0; k < n[2]; ++k)
    for (int64_t j = 0; j < n[1]; ++j)
      for (int64_t i = 0; i < n[0]; ++i)
        if (mask.at(i, j, k)) c[0] += i, c[1] += j, c[2] += k, ++count;
  int64_t ci[3];
  for (int a = 0; a < 3; ++a) ci[a] = count > 0 ? std::lround(c[a] / count) : n[a] / 2;

  const bool any = count > 0;
  const auto p = percentiles(img, {1, 99}, any ? &mask : nullptr);
  const double lo = p[0], span = p[1] > p[0] ? p[1] - p[0] : 1.0;

  // Three panels: (width axis, height axis, fixed axis), both drawn reversed (R left, up = A/S).
  struct Panel {
    int u, v, w;
  };
  const Panel panels[3] = {{0, 1, 2}, {0, 2, 1}, {1, 2, 0}};
  int width = 0, height = 0;
  for (const auto& pn : panels) {
    width += static_cast<int>(n[pn.u]);
    height = std::max(height, static_cast<int>(n[pn.v]));
  }
  RgbImage out(width, height);
  int x0 = 0;
  for (const auto& pn : panels) {
    for (int64_t b = 0; b < n[pn.v]; ++b)
      for (int64_t a = 0; a < n[pn.u]; ++a) {
        int64_t idx[3];
        idx[pn.u] = a;
        idx[pn.v] = b;
        idx[pn.w] = ci[pn.w];
        const double g = std::clamp((img.at(idx[0], idx[1], idx[2]) - lo) / span, 0.0, 1.0) * 255;
        bool edge = false;
        if (mask.at(idx[0], idx[1], idx[2])) {
          for (int d = 0; d < 4 && !edge; ++d) {
            int64_t q[3] = {idx[0], idx[1], idx[2]};
            q[d < 2 ? pn.u : pn.v] += (d % 2) ? 1 : -1;
            if (q[pn.u] < 0 || q[pn.v] < 0 || q[pn.u] >= n[pn.u] || q[pn.v] >= n[pn.v] || !mask.at(q[0], q[1], q[2]))
              edge = true;
          }
        }
        const int x = x0 + static_cast<int>(n[pn.u] - 1 - a), y = static_cast<int>(n[pn.v] - 1 - b);
        uint8_t* px = out.at(x, y);
        px[0] = edge ? 255 : static_cast<uint8_t>(g);
        px[1] = edge ? 0 : static_cast<uint8_t>(g);
        px[2] = edge ? 0 : static_cast<uint8_t>(g);
      }
    x0 += static_cast<int>(n[pn.u]);
  }
  return out;
}

void write_triplanar_png(const Volume<float>& image, const Volume<uint8_t>& mask, const std::filesystem::path& path) {
  write_png(triplanar(image, mask), path);
}

}  // namespace aneura
