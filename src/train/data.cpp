#include "train/data.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "harmonize/normalize.hpp"
#include "harmonize/resample.hpp"
#include "io/nifti.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

const std::array<std::string, 4>& modality_names() {
  static const std::array<std::string, 4> m = {"CTA", "MRA", "MRI T2", "MRI T1post"};
  return m;
}

int modality_index(const std::string& name) {
  for (int i = 0; i < 4; ++i)
    if (modality_names()[i] == name) return i;
  return -1;
}

TrainCase load_case(const fs::path& work, const std::string& id) {
  const fs::path dir = work / "cases" / id;
  TrainCase c;
  c.id = id;
  std::ifstream in(dir / "case.json");
  if (!in) throw Error(ErrorCode::InputNotFound, "case.json missing", (dir / "case.json").string());
  try {
    const json j = json::parse(in);
    c.modality = j.at("modality");
    c.modality_id = modality_index(c.modality);
    c.labels = j.at("labels");
    c.labelled = j.at("labelled");
    const std::string vs = j.at("labels_file").at("vessel_source");
    c.has_vessels = vs.size() > 4 && vs.compare(vs.size() - 4, 4, ".nii") == 0;
    for (const auto& p : j.at("points"))
      c.points.push_back({Vec3{p.at("world_lps_mm")[0], p.at("world_lps_mm")[1], p.at("world_lps_mm")[2]},
                          p.at("column").get<int>()});
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad case.json: ") + e.what(), (dir / "case.json").string());
  }
  c.image = read_nifti(dir / "image.nii");
  c.label_maps = read_nifti(dir / "labels.nii");
  if (c.label_maps.volumes != 2 || c.label_maps.geom.size != c.image.geom.size)
    throw Error(ErrorCode::CorruptInput, "labels.nii does not match image.nii", (dir / "labels.nii").string());
  c.roi_centre = find_roi_centre(c.image);
  if (!c.image.data.empty()) c.background = *std::min_element(c.image.data.begin(), c.image.data.end());
  return c;
}

Vec3 find_roi_centre(const Volume<float>& image) {
  const Geometry& g = image.geom;
  const auto& n = g.size;
  // Foreground: above 10 % of the p1..p99 range of the first channel (strided sample).
  std::vector<float> sample;
  const size_t nv = static_cast<size_t>(g.voxel_count());
  for (size_t i = 0; i < nv; i += std::max<size_t>(1, nv / 100000)) sample.push_back(image.data[i]);
  const double lo = percentile(sample, 1), hi = percentile(sample, 99);
  const float thr = static_cast<float>(lo + 0.1 * (hi - lo));
  // Bounding box in world coordinates along L, P, S.
  Vec3 bmin{1e9, 1e9, 1e9}, bmax{-1e9, -1e9, -1e9};
  bool top_touched = false;
  Vec3 fov_min{1e9, 1e9, 1e9}, fov_max{-1e9, -1e9, -1e9};
  for (int c = 0; c < 8; ++c) {
    const Vec3 w = g.index_to_world({double((c & 1) ? n[0] - 1 : 0), double((c & 2) ? n[1] - 1 : 0), double((c & 4) ? n[2] - 1 : 0)});
    for (int a = 0; a < 3; ++a) fov_min[a] = std::min(fov_min[a], w[a]), fov_max[a] = std::max(fov_max[a], w[a]);
  }
  const double top_margin = 2 * *std::max_element(g.spacing.begin(), g.spacing.end());
  for (int64_t k = 0; k < n[2]; ++k)
    for (int64_t j = 0; j < n[1]; ++j)
      for (int64_t i = 0; i < n[0]; ++i) {
        if (image.at(i, j, k) <= thr) continue;
        const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
        for (int a = 0; a < 3; ++a) bmin[a] = std::min(bmin[a], w[a]), bmax[a] = std::max(bmax[a], w[a]);
        if (w[2] > fov_max[2] - top_margin) top_touched = true;
      }
  if (bmin[0] > bmax[0]) return g.index_to_world({(n[0] - 1) / 2.0, (n[1] - 1) / 2.0, (n[2] - 1) / 2.0});
  Vec3 c{(bmin[0] + bmax[0]) / 2, (bmin[1] + bmax[1]) / 2, 0};
  const double extent_s = fov_max[2] - fov_min[2];
  if (extent_s < 110) c[2] = (fov_min[2] + fov_max[2]) / 2;
  else if (!top_touched) c[2] = bmax[2] - 78;
  else c[2] = fov_max[2] - 60;
  return c;
}

namespace {

Mat3 rotation(double ax, double ay, double az) {
  const double cx = std::cos(ax), sx = std::sin(ax), cy = std::cos(ay), sy = std::sin(ay), cz = std::cos(az), sz = std::sin(az);
  return {{{cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx},
           {sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx},
           {-sy, cy * sx, cy * cx}}};
}

}  // namespace

Geometry roi_grid(const Vec3& centre, const Configuration& cfg, const Mat3& direction, double scale) {
  Geometry grid;
  grid.direction = direction;
  for (int k = 0; k < 3; ++k) {
    grid.size[k] = cfg.patch_size[k];
    grid.spacing[k] = cfg.roi_mm[k] / cfg.patch_size[k] * scale;
  }
  const Vec3 half{(grid.size[0] - 1) / 2.0, (grid.size[1] - 1) / 2.0, (grid.size[2] - 1) / 2.0};
  grid.origin = {0, 0, 0};
  grid.origin = centre - grid.index_to_world(half);
  return grid;
}

torch::Tensor volume_to_tensor(const Volume<float>& v) {
  // Volume is i-fastest [t][k][j][i]; the tensor is [C, X, Y, Z] = permute of [C, Z, Y, X].
  const auto& n = v.geom.size;
  return torch::from_blob(const_cast<float*>(v.data.data()), {v.volumes, n[2], n[1], n[0]}, torch::kFloat)
      .permute({0, 3, 2, 1})
      .contiguous();
}

torch::Tensor roi_input(const Volume<float>& image, const Vec3& centre, const Configuration& cfg, Geometry* grid_out,
                        std::optional<float> outside) {
  const Geometry grid = roi_grid(centre, cfg, Mat3{{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}}, 1.0);
  if (grid_out) *grid_out = grid;
  if (!outside) outside = image.data.empty() ? 0.f : *std::min_element(image.data.begin(), image.data.end());
  return volume_to_tensor(resample_to(image, grid, Interp::Linear, *outside));
}

Sample make_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> nrm(0.0, 1.0);
  const bool a = aug.enabled;
  // Centre: the ROI centre (jittered), or near an aneurysm point of a positive case.
  Vec3 centre = c.roi_centre;
  if (a && !c.points.empty() && u(rng) < aug.focus_on_aneurysm) {
    const auto& p = c.points[static_cast<size_t>(u(rng) * c.points.size()) % c.points.size()];
    centre = p.first;
    for (int k = 0; k < 3; ++k) centre[k] += (u(rng) - 0.5) * std::max(0.0, cfg.roi_mm[k] / 2 - 16);
  } else if (a) {
    for (int k = 0; k < 3; ++k) centre[k] += aug.jitter_mm * nrm(rng);
  }
  // Patch grid: RAS axes (LPS direction diag(-1,-1,1)), optionally rotated and scaled.
  Mat3 dir{{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};
  double scale = 1;
  if (a) {
    const double r = aug.rotate_deg * M_PI / 180;
    const Mat3 rot = rotation(r * (2 * u(rng) - 1), r * (2 * u(rng) - 1), r * (2 * u(rng) - 1));
    Mat3 d{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) d[i][j] += rot[i][k] * dir[k][j];
    dir = d;
    scale = 1 + aug.scale * (2 * u(rng) - 1);
  }
  const Geometry grid = roi_grid(centre, cfg, dir, scale);
  Sample s;
  s.image = volume_to_tensor(resample_to(c.image, grid, Interp::Linear, c.background));
  const auto maps = volume_to_tensor(resample_to(c.label_maps, grid, Interp::Nearest, 0.f));
  s.vessel = maps[0].round().to(torch::kLong).clamp(0, 13);
  s.aneurysm = maps[1].round().to(torch::kLong).clamp(0, kNumLabels - 1);
  s.labels = torch::zeros({kNumLabels});
  for (int k = 0; k < kNumLabels; ++k) s.labels[k] = static_cast<float>(c.labels[k]);
  s.modality = c.modality_id;
  s.has_vessels = c.has_vessels;
  s.labelled = c.labelled;
  if (a && u(rng) < aug.flip_probability) flip_left_right(s);
  if (a) {
    // intensity: scale and shift, gamma on the min-max range, Gaussian noise
    const float sc = static_cast<float>(1 + 0.1 * (2 * u(rng) - 1)), sh = static_cast<float>(0.1 * (2 * u(rng) - 1));
    s.image = s.image * sc + sh;
    if (u(rng) < 0.3) {
      const auto mn = s.image.min(), mx = s.image.max();
      const auto range = (mx - mn).clamp_min(1e-6);
      const double gamma = std::exp(0.3 * (2 * u(rng) - 1));
      s.image = ((s.image - mn) / range).pow(gamma) * range + mn;
    }
    if (u(rng) < 0.2) {
      const int64_t seed = static_cast<int64_t>(rng() >> 1);
      auto gen = at::detail::createCPUGenerator(seed);
      s.image = s.image + torch::randn(s.image.sizes(), gen) * static_cast<float>(0.05 * u(rng));
    }
  }
  return s;
}

const torch::Tensor& label_twin_lut() {
  static const torch::Tensor lut = [] {
    auto t = torch::zeros({kNumLabels}, torch::kLong);
    for (int c = 0; c < kNumLabels; ++c) t[c] = label_twin(c);
    return t;
  }();
  return lut;
}

const torch::Tensor& aneurysm_value_twin_lut() {
  static const torch::Tensor lut = [] {
    auto t = torch::zeros({kNumLabels}, torch::kLong);
    for (int v = 1; v < kNumLabels; ++v) t[v] = label_twin(v - 1) + 1;
    return t;
  }();
  return lut;
}

void flip_left_right(Sample& s) {
  static const torch::Tensor cowseg_lut = [] {
    auto t = torch::zeros({14}, torch::kLong);
    for (int v = 0; v < 14; ++v) t[v] = cowseg_twin(v);
    return t;
  }();
  s.image = s.image.flip({1});
  s.vessel = cowseg_lut.index({s.vessel.flip({0})});
  s.aneurysm = aneurysm_value_twin_lut().index({s.aneurysm.flip({0})});
  s.labels = s.labels.index_select(0, label_twin_lut());  // new[c] = old[twin(c)]
}

}  // namespace aneura
