#include "train/data.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "harmonize/normalize.hpp"
#include "harmonize/resample.hpp"
#include "io/nifti.hpp"

#include <itkHessianToObjectnessMeasureImageFilter.h>
#include <itkImage.h>
#include <itkHessianRecursiveGaussianImageFilter.h>
#include <itkSymmetricSecondRankTensor.h>

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
  std::optional<RoiAnchor> stored_anchor;
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
    if (j.contains("roi_anchor")) stored_anchor = roi_anchor_from_json(j.at("roi_anchor"));
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad case.json: ") + e.what(), (dir / "case.json").string());
  } catch (const Error& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad case.json: ") + e.what(), (dir / "case.json").string());
  }
  c.image = read_nifti(dir / "image.nii");
  c.label_maps = read_nifti(dir / "labels.nii");
  if (c.label_maps.volumes != 2 || c.label_maps.geom.size != c.image.geom.size)
    throw Error(ErrorCode::CorruptInput, "labels.nii does not match image.nii", (dir / "labels.nii").string());
  c.roi_anchor = stored_anchor ? *stored_anchor : find_roi_anchor(c.image);  // cases made before the anchor was stored
  c.roi_centre = RoiOffsets{}.centre(c.roi_anchor);
  if (!c.image.data.empty()) c.background = *std::min_element(c.image.data.begin(), c.image.data.end());
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

namespace {

// Labels of a window from the case's points in window voxel indices: a location (and Present) is
// positive when one of its points lies inside. The case's labels when not `by_points` or when the
// case has no points (a positive case without localizers keeps its labels).
// World LPS points as continuous voxel indices of `grid`, with their columns.
std::vector<std::pair<std::array<double, 3>, int>> grid_points(const std::vector<std::pair<Vec3, int>>& points, const Geometry& grid) {
  std::vector<std::pair<std::array<double, 3>, int>> out;
  for (const auto& [p, col] : points) {
    const Vec3 ijk = grid.world_to_index(p);
    out.push_back({{ijk[0], ijk[1], ijk[2]}, col});
  }
  return out;
}

torch::Tensor window_labels(const std::vector<std::pair<std::array<double, 3>, int>>& points, const std::array<int64_t, 3>& size,
                            const std::array<int, kNumLabels>& case_labels, bool by_points) {
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

bool windowed(const Configuration& cfg) {
  for (int k = 0; k < 3; ++k)
    if (cfg.patch_size[k] * cfg.target_spacing_mm[k] * 1.1 < cfg.roi_mm[k]) return true;
  return false;
}

Vec3 window_spacing(const Configuration& cfg) {
  const bool w = windowed(cfg);
  Vec3 s;
  for (int k = 0; k < 3; ++k) s[k] = w ? cfg.target_spacing_mm[k] : cfg.roi_mm[k] / cfg.patch_size[k];
  return s;
}

namespace {

Geometry centred_grid(const Vec3& centre, const std::array<int64_t, 3>& size, const Vec3& spacing, const Mat3& direction) {
  Geometry grid;
  grid.direction = direction;
  grid.size = size;
  grid.spacing = spacing;
  const Vec3 half{(size[0] - 1) / 2.0, (size[1] - 1) / 2.0, (size[2] - 1) / 2.0};
  grid.origin = {0, 0, 0};
  grid.origin = centre - grid.index_to_world(half);
  return grid;
}

const Mat3 kRas{{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};

}  // namespace

Geometry window_grid(const Vec3& centre, const Configuration& cfg, const Mat3& direction, double scale) {
  const Vec3 sp = window_spacing(cfg);
  return centred_grid(centre, {cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]},
                      {sp[0] * scale, sp[1] * scale, sp[2] * scale}, direction);
}

Geometry roi_grid(const Vec3& centre, const Configuration& cfg) {
  if (!windowed(cfg)) return window_grid(centre, cfg, kRas, 1.0);
  std::array<int64_t, 3> n{};
  for (int k = 0; k < 3; ++k)
    n[k] = std::max<int64_t>(cfg.patch_size[k], static_cast<int64_t>(std::ceil(cfg.roi_mm[k] / cfg.target_spacing_mm[k] - 1e-6)));
  return centred_grid(centre, n, {cfg.target_spacing_mm[0], cfg.target_spacing_mm[1], cfg.target_spacing_mm[2]}, kRas);
}

std::vector<std::array<int64_t, 3>> window_starts(const std::array<int64_t, 3>& roi, const std::array<int, 3>& patch, double overlap) {
  std::array<std::vector<int64_t>, 3> axis;
  for (int k = 0; k < 3; ++k) {
    const int64_t d = std::max<int64_t>(0, roi[k] - patch[k]);
    const double stride = std::max(1.0, patch[k] * (1 - overlap));  // at most
    const int64_t n = d == 0 ? 1 : static_cast<int64_t>(std::ceil(static_cast<double>(d) / stride - 1e-9)) + 1;
    axis[k].assign(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t m = n - 1 - i;  // mirrored partner: the starts are symmetric about the ROI centre
      axis[k][static_cast<size_t>(i)] = i <= m ? (i * d) / std::max<int64_t>(1, n - 1) : d - (m * d) / (n - 1);
    }
  }
  std::vector<std::array<int64_t, 3>> out;
  for (int64_t x : axis[0])
    for (int64_t y : axis[1])
      for (int64_t z : axis[2]) out.push_back({x, y, z});
  return out;
}

torch::Tensor coordinate_channels(const Geometry& grid, const Vec3& roi_centre) {
  // world[r] = origin[r] + sum_c direction[r][c] * spacing[c] * index[c], - centre, / 64 mm
  const auto& n = grid.size;
  std::vector<torch::Tensor> idx;
  for (int c = 0; c < 3; ++c) {
    std::vector<int64_t> shape{1, 1, 1};
    shape[static_cast<size_t>(c)] = n[c];
    idx.push_back(torch::arange(n[c], torch::kFloat).reshape(shape));
  }
  std::vector<torch::Tensor> out;
  for (int r = 0; r < 3; ++r) {
    auto w = torch::full({n[0], n[1], n[2]}, static_cast<float>((grid.origin[r] - roi_centre[r]) / 64.0));
    for (int c = 0; c < 3; ++c) w = w + idx[c] * static_cast<float>(grid.direction[r][c] * grid.spacing[c] / 64.0);
    out.push_back(w);
  }
  return torch::stack(out);
}

torch::Tensor blob_channels(const torch::Tensor& image, const Vec3& spacing, int threads) {
  using Image = itk::Image<float, 3>;
  using Hessian = itk::Image<itk::SymmetricSecondRankTensor<double, 3>, 3>;
  const auto zyx = image.permute({2, 1, 0}).contiguous();  // ITK: x fastest
  auto in = Image::New();
  Image::RegionType region;
  Image::SizeType size;
  for (int a = 0; a < 3; ++a) size[a] = static_cast<itk::SizeValueType>(image.size(a));
  region.SetSize(size);
  in->SetRegions(region);
  const double sp[3] = {spacing[0], spacing[1], spacing[2]};
  in->SetSpacing(sp);
  in->Allocate();
  std::copy(zyx.data_ptr<float>(), zyx.data_ptr<float>() + zyx.numel(), in->GetBufferPointer());
  // One Hessian per scale (scale-normalised, as ITK's multi-scale filter does), both measures on
  // it, the maximum over the scales 1.5 and 3 mm (blobs of radius ~2.6 and ~5 mm: sigma = r / sqrt 3).
  std::array<torch::Tensor, 2> best;
  for (int k = 0; k < 2; ++k) {
    const double sigma = 1.5 * (k + 1);
    using HessianFilter = itk::HessianRecursiveGaussianImageFilter<Image, Hessian>;
    auto h = HessianFilter::New();
    h->SetInput(in);
    h->SetSigma(sigma);
    h->SetNormalizeAcrossScale(true);
    if (threads > 0) h->SetNumberOfWorkUnits(static_cast<itk::ThreadIdType>(threads));
    h->Update();
    for (int bright = 0; bright < 2; ++bright) {
      using Objectness = itk::HessianToObjectnessMeasureImageFilter<Hessian, Image>;
      auto obj = Objectness::New();
      obj->SetInput(h->GetOutput());
      obj->SetObjectDimension(0);
      obj->SetBrightObject(bright == 0);
      obj->SetScaleObjectnessMeasure(true);
      obj->SetAlpha(0.5);
      obj->SetBeta(0.5);
      obj->SetGamma(0.5);  // z-scored images: vessel contrast ~1 .. 8, so structures above noise pass
      if (threads > 0) obj->SetNumberOfWorkUnits(static_cast<itk::ThreadIdType>(threads));
      obj->Update();
      const float* o = obj->GetOutput()->GetBufferPointer();
      auto t = torch::from_blob(const_cast<float*>(o), {image.size(2), image.size(1), image.size(0)}, torch::kFloat).permute({2, 1, 0}).clone();
      best[static_cast<size_t>(bright)] = k == 0 ? t : torch::maximum(best[static_cast<size_t>(bright)], t);
    }
  }
  return torch::stack({best[0], best[1]});
}

int input_channels(const Configuration& cfg, int image_channels) {
  return image_channels + (cfg.blob_features ? kBlobChannels : 0) + kCoordinateChannels;
}

torch::Tensor network_input(const torch::Tensor& image, const Geometry& grid, const Vec3& roi_centre, const Configuration& cfg,
                            int blob_threads) {
  std::vector<torch::Tensor> parts{image};
  if (cfg.blob_features) parts.push_back(blob_channels(image[0], grid.spacing, blob_threads));
  parts.push_back(coordinate_channels(grid, roi_centre));
  return torch::cat(parts);
}

torch::Tensor mirror_input(const torch::Tensor& x) {
  auto y = x.flip({-3});
  y.select(-4, x.size(-4) - kCoordinateChannels).mul_(-1);
  return y;
}

torch::Tensor volume_to_tensor(const Volume<float>& v) {
  // Volume is i-fastest [t][k][j][i]; the tensor is [C, X, Y, Z] = permute of [C, Z, Y, X].
  const auto& n = v.geom.size;
  return torch::from_blob(const_cast<float*>(v.data.data()), {v.volumes, n[2], n[1], n[0]}, torch::kFloat)
      .permute({0, 3, 2, 1})
      .contiguous();
}

RoiInput roi_input(const Volume<float>& image, const Vec3& centre, const Configuration& cfg, std::optional<float> outside,
                   int blob_threads) {
  RoiInput r;
  r.grid = roi_grid(centre, cfg);
  if (!outside) outside = image.data.empty() ? 0.f : *std::min_element(image.data.begin(), image.data.end());
  r.x = network_input(volume_to_tensor(resample_to(image, r.grid, Interp::Linear, *outside)), r.grid, centre, cfg, blob_threads);
  return r;
}

Sample make_sample(const TrainCase& c, const Configuration& cfg, std::mt19937_64& rng, const AugmentOptions& aug) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> nrm(0.0, 1.0);
  const bool a = aug.enabled, win = windowed(cfg);
  const Vec3 sp = window_spacing(cfg);
  // Centre: the ROI centre (jittered; windowed: anywhere in the ROI), or near an aneurysm point of
  // a positive case (the point stays 8 mm inside the window, 16 mm inside a whole ROI).
  Vec3 centre = c.roi_centre;
  if (a && !c.points.empty() && u(rng) < aug.focus_on_aneurysm) {
    const auto& p = c.points[static_cast<size_t>(u(rng) * c.points.size()) % c.points.size()];
    centre = p.first;
    for (int k = 0; k < 3; ++k)
      centre[k] += (u(rng) - 0.5) * (win ? std::max(0.0, cfg.patch_size[k] * sp[k] - 16) : std::max(0.0, cfg.roi_mm[k] / 2 - 16));
  } else if (a) {
    for (int k = 0; k < 3; ++k)
      centre[k] += aug.jitter_mm * nrm(rng) + (win ? (u(rng) - 0.5) * std::max(0.0, cfg.roi_mm[k] - cfg.patch_size[k] * sp[k]) : 0.0);
  }
  // Patch grid: RAS axes (LPS direction diag(-1,-1,1)), optionally rotated and scaled.
  Mat3 dir = kRas;
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
  const Geometry grid = window_grid(centre, cfg, dir, scale);
  Sample s;
  auto image = volume_to_tensor(resample_to(c.image, grid, Interp::Linear, c.background));
  const auto maps = volume_to_tensor(resample_to(c.label_maps, grid, Interp::Nearest, 0.f));
  s.vessel = maps[0].round().to(torch::kLong).clamp(0, 13);
  s.aneurysm = maps[1].round().to(torch::kLong).clamp(0, kNumLabels - 1);
  s.labels = window_labels(grid_points(c.points, grid), {cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]}, c.labels, win);
  s.modality = c.modality_id;
  s.has_vessels = c.has_vessels;
  s.labelled = c.labelled;
  const bool flip = a && u(rng) < aug.flip_probability;
  if (a) image = augment_intensity(image, rng);
  s.image = network_input(image, grid, c.roi_centre, cfg, 1);
  if (a) jitter_coordinates(s.image, aug.coordinate_jitter_mm, rng);
  if (flip) flip_left_right(s);
  return s;
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

RoiCase make_roi_case(const TrainCase& c, const Configuration& cfg, int threads) {
  RoiCase r;
  const RoiInput in = roi_input(c.image, c.roi_centre, cfg, c.background, threads);
  r.x = in.x;
  const auto maps = volume_to_tensor(resample_to(c.label_maps, in.grid, Interp::Nearest, 0.f));
  r.vessel = maps[0].round().clamp(0, 13).to(torch::kUInt8);
  r.aneurysm = maps[1].round().clamp(0, kNumLabels - 1).to(torch::kUInt8);
  r.points = grid_points(c.points, in.grid);
  r.image_channels = static_cast<int>(c.image.volumes);
  // Hard-negative candidates: local maxima (5-voxel neighbourhood) of the bright-blob channel (of
  // the first image channel without blob features), the strongest first.
  const auto f = r.x[cfg.blob_features ? r.image_channels : 0];
  const auto pooled = torch::max_pool3d(f.unsqueeze(0).unsqueeze(0), {5, 5, 5}, {1, 1, 1}, {2, 2, 2}).squeeze(0).squeeze(0);
  const auto at = torch::nonzero((f == pooled) & (f > 0));  // [K, 3]
  if (at.size(0) > 0) {
    const auto v = f.index({at.select(1, 0), at.select(1, 1), at.select(1, 2)});
    const auto top = std::get<1>(v.topk(std::min<int64_t>(kRoiCandidates, v.size(0))));
    const auto sel = at.index_select(0, top).contiguous();
    for (int64_t i = 0; i < sel.size(0); ++i)
      r.candidates.push_back({sel[i][0].item<int64_t>(), sel[i][1].item<int64_t>(), sel[i][2].item<int64_t>()});
  }
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
    const Mat3 rot = rotation(r * (2 * u(rng) - 1), r * (2 * u(rng) - 1), r * (2 * u(rng) - 1));
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
    std::array<torch::Tensor, 3> norm_idx;
    for (int i = 0; i < 3; ++i) {
      const auto src = o[0] * A[i][0] + o[1] * A[i][1] + o[2] * A[i][2] + centre[i];
      norm_idx[static_cast<size_t>(i)] = src * (2.0 / std::max<int64_t>(1, n[i] - 1)) - 1.0;
    }
    const auto grid = torch::stack({norm_idx[2], norm_idx[1], norm_idx[0]}, -1).unsqueeze(0).to(torch::kFloat);
    namespace F = torch::nn::functional;
    auto sample = [&](const torch::Tensor& t, bool nearest) {
      auto opt = F::GridSampleFuncOptions().align_corners(true).padding_mode(torch::kBorder);
      if (nearest) opt = opt.mode(torch::kNearest);
      return F::grid_sample(t.unsqueeze(0), grid, opt).squeeze(0);
    };
    s.image = sample(c.x, false).contiguous();
    const auto maps = sample(torch::stack({c.vessel, c.aneurysm}).to(torch::kFloat), true).round().to(torch::kLong);
    s.vessel = maps[0].contiguous();
    s.aneurysm = maps[1].contiguous();
    for (const auto& [pt, col] : c.points) {
      std::array<double, 3> q{};
      for (int i = 0; i < 3; ++i)
        q[i] = h[i] + Ainv[i][0] * (pt[0] - centre[0]) + Ainv[i][1] * (pt[1] - centre[1]) + Ainv[i][2] * (pt[2] - centre[2]);
      in_window.push_back({q, col});
    }
  } else {
    auto crop = [&](const torch::Tensor& t) {
      return t.slice(-3, start[0], start[0] + p[0]).slice(-2, start[1], start[1] + p[1]).slice(-1, start[2], start[2] + p[2]);
    };
    s.image = crop(c.x).clone();
    s.vessel = crop(c.vessel).to(torch::kLong);
    s.aneurysm = crop(c.aneurysm).to(torch::kLong);
    for (const auto& [pt, col] : c.points) in_window.push_back({{pt[0] - start[0], pt[1] - start[1], pt[2] - start[2]}, col});
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

namespace {

// A long tensor t[v] = f(v), v = 0..n-1.
template <class F>
torch::Tensor make_lut(int n, F f) {
  auto t = torch::zeros({n}, torch::kLong);
  for (int v = 0; v < n; ++v) t[v] = f(v);
  return t;
}

}  // namespace

const torch::Tensor& label_twin_lut() {
  static const torch::Tensor lut = make_lut(kNumLabels, label_twin);
  return lut;
}

const torch::Tensor& aneurysm_value_twin_lut() {
  static const torch::Tensor lut = make_lut(kNumLabels, [](int v) { return v == 0 ? 0 : label_twin(v - 1) + 1; });
  return lut;
}

const torch::Tensor& cowseg_twin_lut() {
  static const torch::Tensor lut = make_lut(14, cowseg_twin);
  return lut;
}

void flip_left_right(Sample& s) {
  s.image = mirror_input(s.image);
  s.vessel = cowseg_twin_lut().index({s.vessel.flip({0})});
  s.aneurysm = aneurysm_value_twin_lut().index({s.aneurysm.flip({0})});
  s.labels = s.labels.index_select(0, label_twin_lut());  // new[c] = old[twin(c)]
}

}  // namespace aneura
