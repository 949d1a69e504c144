#include "dataset/exports.hpp"

#include <algorithm>
#include <cmath>

#include "core/atomic_file.hpp"
#include "harmonize/normalize.hpp"
#include "harmonize/resample.hpp"
#include "io/nifti.hpp"
#include "io/png.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

Geometry fit_grid(const Geometry& g, const std::array<int64_t, 3>& size) {
  Geometry out = g;
  Vec3 shift{0, 0, 0};
  for (int a = 0; a < 3; ++a) {
    out.size[a] = size[a];
    out.spacing[a] = g.spacing[a] * g.size[a] / static_cast<double>(size[a]);
    shift[a] = (out.spacing[a] - g.spacing[a]) / 2 / g.spacing[a];  // in input voxels
  }
  out.origin = g.index_to_world(shift);  // first voxel centre half a new voxel inside the edge
  return out;
}

json write_exports(const Volume<float>& image, const json& points, const fs::path& dir, const CaseExports& ex) {
  json done = json::object();
  Volume<float> first(image.geom);
  std::copy(image.data.begin(), image.data.begin() + first.data.size(), first.data.begin());
  if (ex.volume_32) {
    write_nifti(resample_to(first, fit_grid(first.geom, {384, 384, 32}), Interp::Linear), dir / "volume_32x384x384.nii",
                NiftiLayout::Native);
    done["volume_32x384x384"] = "volume_32x384x384.nii";
  }
  if (ex.slices_224) {
    const Geometry g = fit_grid(first.geom, {224, 224, first.geom.size[2]});
    write_nifti(resample_to(first, g, Interp::Linear), dir / "slices_224.nii", NiftiLayout::Native);
    json centres = json::array(), positive = json::array();
    for (int64_t k = 2; k + 2 < g.size[2]; ++k) centres.push_back(k);
    for (const auto& p : points) {
      const int64_t k = std::lround(p["voxel"][2].get<double>());
      if (k >= 2 && k + 2 < g.size[2]) positive.push_back(k);
    }
    write_text_atomically(
        dir / "windows_2p5d.json",
        json{{"file", "slices_224.nii"}, {"window", 5}, {"centres", centres}, {"positive_centres", positive}}.dump());
    done["slices_224"] = "slices_224.nii";
    done["windows_2p5d"] = "windows_2p5d.json";
  }
  if (ex.png) {
    fs::create_directories(dir / "png");
    const auto p = percentiles(first, {1, 99});
    const double lo = p[0], span = p[1] > p[0] ? p[1] - p[0] : 1.0;
    const auto& n = first.geom.size;
    for (int64_t k = 0; k < n[2]; ++k) {
      RgbImage img(static_cast<int>(n[0]), static_cast<int>(n[1]));
      for (int64_t j = 0; j < n[1]; ++j)
        for (int64_t i = 0; i < n[0]; ++i) {
          const auto g = static_cast<uint8_t>(std::clamp((first.at(i, j, k) - lo) / span, 0.0, 1.0) * 255);
          uint8_t* px = img.at(static_cast<int>(i), static_cast<int>(j));
          px[0] = px[1] = px[2] = g;
        }
      write_png(img, dir / "png" / (std::to_string(k) + ".png"));
    }
    done["png"] = "png/<k>.png";
  }
  return done;
}

}  // namespace aneura
