#include "train/data.hpp"

#include "train/folds.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "harmonize/crop.hpp"
#include "harmonize/normalize.hpp"
#include "harmonize/resample.hpp"
#include "io/nifti.hpp"
#include "model/dualstream.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

TrainCase load_case(const fs::path& work, const std::string& id, CaseMaps maps) {
  const fs::path dir = work / "cases" / id;
  TrainCase c;
  c.id = id;
  std::ifstream in(dir / "case.json");
  if (!in) throw Error(ErrorCode::InputNotFound, "case.json missing", (dir / "case.json").string());
  std::optional<RoiAnchor> stored_anchor;
  bool labels_file = true;
  try {
    const json j = json::parse(in);
    c.modality = j.at("modality");
    c.modality_id = modality_index(c.modality);
    c.labels = j.at("labels");
    c.labelled = j.at("labelled");
    const std::string vs = j.at("labels_file").at("vessel_source");
    // no label volume (null): all background; caches from before name labels.nii or nothing
    labels_file = !(j.at("labels_file").contains("file") && j.at("labels_file").at("file").is_null());
    c.has_vessels = is_segmentation_source(vs);
    for (const auto& p : j.at("points"))
      c.points.push_back(
          {Vec3{p.at("world_lps_mm")[0], p.at("world_lps_mm")[1], p.at("world_lps_mm")[2]}, p.at("column").get<int>()});
    if (j.contains("roi_anchor")) stored_anchor = roi_anchor_from_json(j.at("roi_anchor"));
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad case.json: ") + e.what(), (dir / "case.json").string());
  } catch (const Error& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad case.json: ") + e.what(), (dir / "case.json").string());
  }
  c.image = read_nifti(dir / "image.nii");
  if (maps == CaseMaps::Deface) {
    c.has_vessels = false;
    labels_file = false;
    std::error_code ec;
    if (fs::exists(dir / "deface.nii.gz", ec)) {
      const Volume<float> d = read_nifti(dir / "deface.nii.gz");
      if (d.geom.size != c.image.geom.size)
        throw Error(ErrorCode::CorruptInput, "deface.nii.gz does not match image.nii",
                    (dir / "deface.nii.gz").string());
      c.label_maps = Volume<float>(d.geom, 2);
      std::copy(d.data.begin(), d.data.end(), c.label_maps.data.begin());
      std::fill(c.label_maps.data.begin() + static_cast<std::ptrdiff_t>(d.data.size()), c.label_maps.data.end(), 0.f);
    }
  }
  if (labels_file) c.label_maps = read_nifti(dir / "labels.nii");
  if (labels_file && (c.label_maps.volumes != 2 || c.label_maps.geom.size != c.image.geom.size))
    throw Error(ErrorCode::CorruptInput, "labels.nii does not match image.nii", (dir / "labels.nii").string());
  c.roi_anchor = stored_anchor ? *stored_anchor : find_roi_anchor(c.image);  // cases made before the anchor was stored
  c.roi_centre = RoiOffsets{}.centre(c.roi_anchor);
  c.background = outside_value(c.image);
  return c;
}

namespace {

// The case's label maps on `grid` (nearest) as [2, X, Y, Z]; zeros for a case without a label volume.
torch::Tensor label_maps_on(const TrainCase& c, const Geometry& grid) {
  if (c.label_maps.data.empty()) return torch::zeros({2, grid.size[0], grid.size[1], grid.size[2]});
  return volume_to_tensor(resample_to(c.label_maps, grid, Interp::Nearest, 0.f));
}

// World LPS points as continuous voxel indices of `grid`, with their columns.
std::vector<std::pair<std::array<double, 3>, int>> grid_points(const std::vector<std::pair<Vec3, int>>& points,
                                                               const Geometry& grid) {
  std::vector<std::pair<std::array<double, 3>, int>> out;
  for (const auto& [p, col] : points) {
    const Vec3 ijk = grid.world_to_index(p);
    out.push_back({{ijk[0], ijk[1], ijk[2]}, col});
  }
  return out;
}

// Labels of a window from the case's points in window voxel indices: a location (and Present) is
// positive when one of its points lies inside. The case's labels when not `by_points` or when the
// case has no points (a positive case without localizers keeps its labels).
torch::Tensor window_labels(const std::vector<std::pair<std::array<double, 3>, int>>& points,
                            const std::array<int64_t, 3>& size, const std::array<int, kNumLabels>& case_labels,
                            bool by_points) {
  auto labels = torch::zeros({kNumLabels});
  if (!by_points || points.empty()) {
    for (int k = 0; k < kNumLabels; ++k) labels[k] = static_cast<float>(case_labels[k]);
    return labels;
  }
  for (const auto& [ijk, col] : points) {
    bool inside = true;
    for (int k = 0; k < 3; ++k) inside = inside && ijk[k] >= -0.5 && ijk[k] <= size[k] - 0.5;
    if (inside) labels[col] = 1, labels[kNumLabels - 1] = 1;
  }
  return labels;
}

}  // namespace

// The candidate a draw r in [0, 1) falls on: uniformly, or by the mined weights' shares.
size_t pick_candidate(size_t n, const std::vector<double>& weights, double r) {
  if (weights.size() != n) return static_cast<size_t>(r * static_cast<double>(n)) % n;
  double total = 0;
  for (double w : weights) total += w;
  double at = r * total;
  for (size_t k = 0; k < n; ++k) {
    if (at < weights[k]) return k;
    at -= weights[k];
  }
  return n - 1;
}

size_t pick_candidate(const TrainCase& c, double r) {
  return pick_candidate(c.candidates.size(), c.candidate_weights, r);
}

Sample make_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug) {
  if (slice_model(cfg)) return make_slice_sample(c, cfg, rng, aug);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> nrm(0.0, 1.0);
  const bool a = aug.enabled, win = windowed(cfg);
  const Vec3 sp = window_spacing(cfg);
  // Centre: the ROI centre (jittered; windowed: anywhere in the ROI), or near an aneurysm point of
  // a positive case (the point stays 8 mm inside the window, 16 mm inside a whole ROI).
  Vec3 centre = c.roi_centre;
  int64_t candidate = -1;
  // Near `p`, which stays min(8 mm, a quarter of the window) inside a window (16 mm inside a whole ROI).
  auto near = [&](const Vec3& p) {
    centre = p;
    for (int k = 0; k < 3; ++k) {
      const double w = cfg.patch_size[k] * sp[k];
      centre[k] +=
          (u(rng) - 0.5) * (win ? std::max(0.0, w - 2 * std::min(8.0, w / 4)) : std::max(0.0, cfg.roi_mm[k] / 2 - 16));
    }
  };
  if (a && !c.points.empty() && u(rng) < aug.focus_on_aneurysm) {
    near(c.points[static_cast<size_t>(u(rng) * c.points.size()) % c.points.size()].first);
  } else if (a && win && !c.candidates.empty() && u(rng) < aug.focus_on_candidate) {
    candidate = static_cast<int64_t>(pick_candidate(c, u(rng)));
    near(c.candidates[static_cast<size_t>(candidate)]);
  } else if (a) {
    for (int k = 0; k < 3; ++k)
      centre[k] += aug.jitter_mm * nrm(rng) +
                   (win ? (u(rng) - 0.5) * std::max(0.0, cfg.roi_mm[k] - cfg.patch_size[k] * sp[k]) : 0.0);
  }
  // Patch grid: RAS axes (LPS direction diag(-1,-1,1)), optionally rotated and scaled.
  Mat3 dir = kRasDirection;
  double scale = 1;
  if (a) {
    const double r = aug.rotate_deg * M_PI / 180;
    const Mat3 rot = rotation_xyz(r * (2 * u(rng) - 1), r * (2 * u(rng) - 1), r * (2 * u(rng) - 1));
    Mat3 d{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) d[i][j] += rot[i][k] * dir[k][j];
    dir = d;
    scale = 1 + aug.scale * (2 * u(rng) - 1);
  }
  const Geometry grid = window_grid(centre, cfg, dir, scale);
  Sample s;
  auto image = volume_to_tensor(resample_to(c.image, grid, Interp::Linear, c.background));
  const auto maps = label_maps_on(c, grid);
  s.vessel = maps[0].round().to(torch::kLong).clamp(0, 13);
  s.aneurysm = maps[1].round().to(torch::kLong).clamp(0, kNumLabels - 1);
  s.labels = window_labels(grid_points(c.points, grid), {cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]},
                           c.labels, win);
  s.modality = c.modality_id;
  s.has_vessels = c.has_vessels;
  s.labelled = c.labelled;
  s.candidate = candidate;
  const bool flip = a && u(rng) < aug.flip_probability;
  if (a) image = augment_intensity(image, rng);
  s.image = network_input(image, grid, c.roi_centre, cfg, 1);
  if (a) jitter_coordinates(s.image, aug.coordinate_jitter_mm, rng);
  if (flip) flip_left_right(s);
  return s;
}

double site_half_extent_mm(const Configuration& cfg, const AugmentOptions& aug) {
  const Vec3 sp = window_spacing(cfg);
  const double turn = 1 + 2 * std::sin(std::abs(aug.rotate_deg) * M_PI / 180), grow = 1 + std::abs(aug.scale);
  double half = 0;
  for (int k = 0; k < 3; ++k) {
    const double w = cfg.patch_size[k] * sp[k];
    const double jitter = std::max(0.0, w - 2 * std::min(8.0, w / 4)) / 2;  // make_sample's focus
    half = std::max(half, jitter + w / 2 * turn * grow);
  }
  return half;
}

SiteCase make_site_case(const TrainCase& c, double half_mm) {
  SiteCase s;
  std::vector<Vec3> sites = c.candidates;
  s.candidates = sites.size();
  s.candidate_weights = c.candidate_weights;
  for (const auto& [p, column] : c.points) sites.push_back(p);
  if (sites.empty()) {
    sites.push_back(c.roi_centre);
    s.candidates = 1;
  }
  const Geometry& g = c.image.geom;
  for (const Vec3& site : sites) {
    // the index box of the world box site +- half (its 8 corners), one voxel more for interpolation
    Box b;
    std::array<double, 3> lo{1e300, 1e300, 1e300}, hi{-1e300, -1e300, -1e300};
    for (int corner = 0; corner < 8; ++corner) {
      Vec3 p = site;
      for (int k = 0; k < 3; ++k) p[k] += (corner >> k & 1) ? half_mm : -half_mm;
      const Vec3 ijk = g.world_to_index(p);
      for (int k = 0; k < 3; ++k) lo[k] = std::min(lo[k], ijk[k]), hi[k] = std::max(hi[k], ijk[k]);
    }
    for (int k = 0; k < 3; ++k) {
      // at least one voxel, the nearest, for a site beyond the image (its windows are background)
      b.lo[k] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(lo[k])) - 1, 0, g.size[k] - 1);
      b.hi[k] = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(hi[k])) + 2, b.lo[k] + 1, g.size[k]);
    }
    auto crop_case = std::make_shared<TrainCase>();
    TrainCase& t = *crop_case;
    t.id = c.id;
    t.modality = c.modality;
    t.modality_id = c.modality_id;
    t.labels = c.labels;
    t.labelled = c.labelled;
    t.has_vessels = c.has_vessels;
    t.points = c.points;
    t.roi_anchor = c.roi_anchor;
    t.roi_centre = c.roi_centre;
    t.background = c.background;
    t.candidates = {site};
    t.image = crop(c.image, b);
    if (!c.label_maps.data.empty()) {
      Volume<float> maps = crop(c.label_maps, b);
      // all background: no maps (label_maps_on gives zeros)
      if (std::any_of(maps.data.begin(), maps.data.end(), [](float v) { return v != 0.f; }))
        t.label_maps = std::move(maps);
    }
    s.bytes += sizeof(float) * (t.image.data.size() + t.label_maps.data.size());
    s.sites.push_back(std::move(crop_case));
  }
  return s;
}

Sample make_site_sample(const SiteCase& s, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug) {
  if (!aug.enabled || s.sites.empty())
    throw Error(ErrorCode::Internal, "make_site_sample: needs augmentation and at least one site");
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const size_t points = s.sites.size() - s.candidates;
  size_t k = 0;
  if (points > 0 && (s.candidates == 0 || u(rng) < aug.focus_on_aneurysm))
    k = s.candidates + static_cast<size_t>(u(rng) * static_cast<double>(points)) % points;
  else
    k = pick_candidate(s.candidates, s.candidate_weights, u(rng));
  AugmentOptions on_site = aug;  // the crop's site is its only candidate
  on_site.focus_on_aneurysm = 0;
  on_site.focus_on_candidate = 1;
  Sample sample = make_sample(*s.sites[k], cfg, rng, on_site);
  sample.candidate = k < s.candidates ? static_cast<int64_t>(k) : -1;
  return sample;
}

void jitter_coordinates(torch::Tensor& x, double sd_mm, std::mt19937_64& rng) {
  if (!(sd_mm > 0)) return;  // no draw: a run without the jitter keeps its random stream
  std::normal_distribution<double> nrm(0.0, sd_mm);
  const int64_t first = x.size(-4) - kCoordinateChannels;
  for (int a = 0; a < kCoordinateChannels; ++a) x.select(-4, first + a).add_(static_cast<float>(nrm(rng) / 64.0));
}

torch::Tensor augment_intensity(const torch::Tensor& in, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const float sc = static_cast<float>(1 + 0.1 * (2 * u(rng) - 1)), sh = static_cast<float>(0.1 * (2 * u(rng) - 1));
  auto image = in * sc + sh;
  if (u(rng) < 0.3) {
    const auto mn = image.min(), mx = image.max();
    const auto range = (mx - mn).clamp_min(1e-6);
    const double gamma = std::exp(0.3 * (2 * u(rng) - 1));
    image = ((image - mn) / range).pow(gamma) * range + mn;
  }
  if (u(rng) < 0.2) {
    const int64_t seed = static_cast<int64_t>(rng() >> 1);
    auto gen = at::detail::createCPUGenerator(seed);
    image = image + torch::randn(image.sizes(), gen) * static_cast<float>(0.05 * u(rng));
  }
  return image;
}

namespace {

// Coordinate channels [3, ...] at continuous indices `idx` (one tensor per axis of `grid`, same shape):
// world[r] = origin[r] + sum_c direction[r][c] spacing[c] idx[c], minus the centre, / 64 mm (as
// coordinate_channels).
torch::Tensor coordinates_at(const Geometry& grid, const Vec3& centre, const std::array<torch::Tensor, 3>& idx) {
  std::vector<torch::Tensor> out;
  for (int r = 0; r < 3; ++r) {
    auto w = torch::full(idx[0].sizes(), (grid.origin[r] - centre[r]) / 64.0, torch::kDouble);
    for (int c = 0; c < 3; ++c) w = w + idx[static_cast<size_t>(c)] * (grid.direction[r][c] * grid.spacing[c] / 64.0);
    out.push_back(w.to(torch::kFloat));
  }
  return torch::stack(out);
}

// Hard-negative candidates of an image channel [X, Y, Z] on `spacing` without blob features: the
// bright-blob measure on a copy averaged down to ~2 mm, its maxima back on the full grid.
std::vector<std::array<int64_t, 3>> coarse_blob_candidates(const torch::Tensor& image, const Vec3& spacing,
                                                           int threads) {
  const double finest = std::min({spacing[0], spacing[1], spacing[2]});
  const int64_t f = std::max<int64_t>(1, std::llround(2.0 / finest));
  auto small = image;
  if (f > 1)
    small = torch::nn::functional::avg_pool3d(image.unsqueeze(0).unsqueeze(0),
                                              torch::nn::functional::AvgPool3dFuncOptions(f).stride(f).ceil_mode(true))
                .squeeze(0)
                .squeeze(0)
                .contiguous();
  const Vec3 sp{spacing[0] * f, spacing[1] * f, spacing[2] * f};
  auto found = channel_maxima(blob_channels(small, sp, threads)[0], kRoiCandidates);
  for (auto& c : found)
    for (int k = 0; k < 3; ++k)
      c[static_cast<size_t>(k)] = std::min<int64_t>(c[static_cast<size_t>(k)] * f + (f - 1) / 2, image.size(k) - 1);
  return found;
}

}  // namespace

RoiCase make_roi_case(const TrainCase& c, const Configuration& cfg, int threads) {
  RoiCase r;
  const RoiInput in = roi_input(c.image, c.roi_centre, cfg, c.background, threads);
  r.grid = in.grid;
  r.centre = c.roi_centre;
  r.x = in.x.slice(0, 0, in.x.size(0) - kCoordinateChannels).clone();
  const auto maps = label_maps_on(c, in.grid);
  r.vessel = maps[0].round().clamp(0, 13).to(torch::kUInt8);
  r.aneurysm = maps[1].round().clamp(0, kNumLabels - 1).to(torch::kUInt8);
  r.points = grid_points(c.points, in.grid);
  r.image_channels = static_cast<int>(c.image.volumes);
  // Hard-negative candidates: local maxima (5-voxel neighbourhood) of the bright-blob channel, the
  // strongest first.
  r.candidates = cfg.blob_features ? channel_maxima(r.x[r.image_channels], kRoiCandidates)
                                   : coarse_blob_candidates(r.x[0], in.grid.spacing, threads);
  r.labels = c.labels;
  r.modality = c.modality_id;
  r.has_vessels = c.has_vessels;
  r.labelled = c.labelled;
  return r;
}

Sample make_roi_sample(const RoiCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::array<int64_t, 3> n{c.x.size(1), c.x.size(2), c.x.size(3)};
  std::array<int64_t, 3> p{}, start{};
  for (int k = 0; k < 3; ++k) p[k] = std::min<int64_t>(cfg.patch_size[k], n[k]);
  const Vec3 sp = window_spacing(cfg);
  auto put = [&](int k, double s) { start[k] = std::clamp<int64_t>(std::llround(s), 0, n[k] - p[k]); };
  const bool a = aug.enabled;
  if (!a) {
    for (int k = 0; k < 3; ++k) put(k, (n[k] - p[k]) / 2.0);
  } else if (!c.points.empty() && u(rng) < aug.focus_on_aneurysm) {
    const auto& pt = c.points[static_cast<size_t>(u(rng) * c.points.size()) % c.points.size()].first;
    for (int k = 0; k < 3; ++k) {
      const double m = std::min(8.0 / sp[k], (p[k] - 1) / 2.0);  // the point stays 8 mm inside
      put(k, pt[k] - m - u(rng) * std::max(0.0, p[k] - 1 - 2 * m));
    }
  } else if (!c.candidates.empty() && u(rng) < aug.focus_on_candidate) {
    const auto& cd = c.candidates[static_cast<size_t>(u(rng) * c.candidates.size()) % c.candidates.size()];
    for (int k = 0; k < 3; ++k) put(k, cd[k] - (p[k] - 1) / 2.0 + (u(rng) - 0.5) * p[k] / 2.0);
  } else {
    for (int k = 0; k < 3; ++k) put(k, u(rng) * static_cast<double>(n[k] - p[k]));
  }
  Sample s;
  std::vector<std::pair<std::array<double, 3>, int>> in_window;
  if (a && u(rng) < aug.roi_spatial_probability) {
    // Rotated and scaled about the window's centre: output voxel o samples the ROI at
    // centre + A (o - h), A = diag(1/sp) scale R diag(sp) (R turns millimetres, sp the ROI spacing).
    const double r = aug.rotate_deg * M_PI / 180;
    const Mat3 rot = rotation_xyz(r * (2 * u(rng) - 1), r * (2 * u(rng) - 1), r * (2 * u(rng) - 1));
    const double scale = 1 + aug.scale * (2 * u(rng) - 1);
    double A[3][3], Ainv[3][3];
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        A[i][j] = scale * rot[i][j] * sp[j] / sp[i];
        Ainv[i][j] = rot[j][i] * sp[j] / (scale * sp[i]);
      }
    std::array<double, 3> centre{}, h{};
    for (int k = 0; k < 3; ++k) {
      centre[k] = start[k] + (p[k] - 1) / 2.0;
      h[k] = (p[k] - 1) / 2.0;
    }
    // grid_sample's last grid axis is (W, H, D) = (Z, Y, X) of the [C, X, Y, Z] tensors, in [-1, 1]
    // over the voxel centres (align_corners).
    std::vector<torch::Tensor> o;
    for (int k = 0; k < 3; ++k) {
      std::vector<int64_t> shape{1, 1, 1};
      shape[static_cast<size_t>(k)] = p[k];
      o.push_back(torch::arange(p[k], torch::kDouble).reshape(shape).sub(h[k]).expand({p[0], p[1], p[2]}));
    }
    std::array<torch::Tensor, 3> src, norm_idx;
    for (int i = 0; i < 3; ++i) {
      src[static_cast<size_t>(i)] = o[0] * A[i][0] + o[1] * A[i][1] + o[2] * A[i][2] + centre[i];
      norm_idx[static_cast<size_t>(i)] = src[static_cast<size_t>(i)] * (2.0 / std::max<int64_t>(1, n[i] - 1)) - 1.0;
    }
    const auto grid = torch::stack({norm_idx[2], norm_idx[1], norm_idx[0]}, -1).unsqueeze(0).to(torch::kFloat);
    namespace F = torch::nn::functional;
    auto sample = [&](const torch::Tensor& t, bool nearest) {
      auto opt = F::GridSampleFuncOptions().align_corners(true).padding_mode(torch::kBorder);
      if (nearest) opt = opt.mode(torch::kNearest);
      return F::grid_sample(t.unsqueeze(0), grid, opt).squeeze(0);
    };
    s.image = torch::cat({sample(c.x, false), coordinates_at(c.grid, c.centre, src)}).contiguous();
    const auto maps = sample(torch::stack({c.vessel, c.aneurysm}).to(torch::kFloat), true).round().to(torch::kLong);
    s.vessel = maps[0].contiguous();
    s.aneurysm = maps[1].contiguous();
    for (const auto& [pt, col] : c.points) {
      std::array<double, 3> q{};
      for (int i = 0; i < 3; ++i)
        q[i] = h[i] + Ainv[i][0] * (pt[0] - centre[0]) + Ainv[i][1] * (pt[1] - centre[1]) +
               Ainv[i][2] * (pt[2] - centre[2]);
      in_window.push_back({q, col});
    }
  } else {
    auto crop = [&](const torch::Tensor& t) {
      return t.slice(-3, start[0], start[0] + p[0])
          .slice(-2, start[1], start[1] + p[1])
          .slice(-1, start[2], start[2] + p[2]);
    };
    std::array<torch::Tensor, 3> idx;
    for (int k = 0; k < 3; ++k) {
      std::vector<int64_t> shape{1, 1, 1};
      shape[static_cast<size_t>(k)] = p[k];
      idx[static_cast<size_t>(k)] =
          torch::arange(start[k], start[k] + p[k], torch::kDouble).reshape(shape).expand({p[0], p[1], p[2]});
    }
    s.image = torch::cat({crop(c.x), coordinates_at(c.grid, c.centre, idx)}).contiguous();
    s.vessel = crop(c.vessel).to(torch::kLong);
    s.aneurysm = crop(c.aneurysm).to(torch::kLong);
    for (const auto& [pt, col] : c.points)
      in_window.push_back({{pt[0] - start[0], pt[1] - start[1], pt[2] - start[2]}, col});
  }
  s.labels = window_labels(in_window, p, c.labels, true);
  s.modality = c.modality;
  s.has_vessels = c.has_vessels;
  s.labelled = c.labelled;
  if (a) {
    const bool flip = u(rng) < aug.flip_probability;
    s.image.slice(0, 0, c.image_channels).copy_(augment_intensity(s.image.slice(0, 0, c.image_channels), rng));
    jitter_coordinates(s.image, aug.coordinate_jitter_mm, rng);
    if (flip) flip_left_right(s);
  }
  return s;
}

void flip_left_right(Sample& s) {
  s.image = mirror_input(s.image);
  s.vessel = cowseg_twin_lut().index({s.vessel.flip({0})});
  s.aneurysm = aneurysm_value_twin_lut().index({s.aneurysm.flip({0})});
  s.labels = s.labels.index_select(0, label_twin_lut());  // new[c] = old[twin(c)]
}

}  // namespace aneura
