#include "synth/anatomy.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/labels.hpp"

namespace aneura::synth {

namespace {

double seg_distance(const Vec3& p, const Vec3& a, const Vec3& b, double* t_out = nullptr) {
  const Vec3 ab = b - a;
  const double len2 = dot(ab, ab);
  double t = len2 > 0 ? dot(p - a, ab) / len2 : 0;
  t = std::clamp(t, 0.0, 1.0);
  if (t_out) *t_out = t;
  return norm(p - (a + t * ab));
}

// cowseg values (the RSNA 2025 segmentations' *_cowseg.nii): 1 other posterior, 2 basilar tip, 3/4 R/L PComm, 5/6 R/L
// infraclinoid ICA, 7/8 R/L supraclinoid ICA, 9/10 R/L MCA, 11/12 R/L ACA, 13 AComm. x > 0 is the patient's left.
std::vector<Segment> vessel_tree(std::mt19937_64& rng) {
  std::normal_distribution<double> jitter(0.0, 1.5);
  std::uniform_real_distribution<double> calibre(0.85, 1.2);
  auto j = [&](Vec3 p) { return Vec3{p[0] + jitter(rng), p[1] + jitter(rng), p[2] + jitter(rng)}; };
  const double c = calibre(rng);
  std::vector<Segment> v;
  for (int side : {+1, -1}) {  // +1 left, -1 right
    const bool left = side > 0;
    const Vec3 ica0 = j({16.0 * side, 6, -48}), ica1 = j({15.0 * side, 0, -16}), bif = j({14.0 * side, -4, -5});
    const Vec3 mca1 = j({46.0 * side, -6, 2}), mca2 = j({58.0 * side, 4, 14});
    const Vec3 aca0 = {4.0 * side, -19, -2}, aca1 = j({3.0 * side, -32, 22}), aca2 = j({3.0 * side, -20, 48});
    const Vec3 pcom = j({10.0 * side, 11, -8});
    const Vec3 pca1 = j({26.0 * side, 30, -3}), pca2 = j({22.0 * side, 55, 5});
    const Vec3 vert0 = j({11.0 * side, 30, -66});
    v.push_back({ica0, ica1, 2.3 * c, left ? 6 : 5});
    v.push_back({ica1, bif, 2.1 * c, left ? 8 : 7});
    v.push_back({bif, mca1, 1.6 * c, left ? 10 : 9});
    v.push_back({mca1, mca2, 1.2 * c, left ? 10 : 9});
    v.push_back({bif, aca0, 1.3 * c, left ? 12 : 11});
    v.push_back({aca0, aca1, 1.2 * c, left ? 12 : 11});
    v.push_back({aca1, aca2, 1.0 * c, left ? 12 : 11});
    v.push_back({bif, pcom, 0.8 * c, left ? 4 : 3});
    v.push_back({pcom, pca1, 1.2 * c, 1});
    v.push_back({pca1, pca2, 1.0 * c, 1});
    v.push_back({vert0, {0, 22, -48}, 1.4 * c, 1});
    v.push_back({{0, 12, -9}, pcom, 1.1 * c, 1});  // P1
  }
  v.push_back({{4, -19, -2}, {-4, -19, -2}, 0.8 * c, 13});  // AComm
  v.push_back({{0, 22, -48}, {0, 13, -13}, 1.7 * c, 1});    // basilar trunk
  v.push_back({{0, 13, -13}, {0, 12, -9}, 1.7 * c, 2});     // basilar tip
  return v;
}

}  // namespace

Vec3 Subject::to_world(const Vec3& s) const { return rotation * s + translation; }

Vec3 Subject::to_subject(const Vec3& w) const {
  const Vec3 d = w - translation;
  Mat3 rt;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) rt[r][c] = rotation[c][r];
  return rt * d;
}

const std::vector<double>& location_weights() {
  // train.csv columns 0..12; counts from the RSNA 2025 training data.
  static const std::vector<double> w = {81, 101, 343, 287, 225, 304, 376, 47, 58, 89, 105, 114, 117};
  return w;
}

Subject make_subject(std::mt19937_64& rng, double p_positive, int first_column) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> n(0.0, 1.0);
  Subject s;
  const double size = 0.92 + 0.16 * u(rng);
  s.head_radii = {75 * size, 92 * size, 70 * size};
  const double deg = M_PI / 180.0;
  s.rotation = rotation_xyz(6 * deg * n(rng), 4 * deg * n(rng), 6 * deg * n(rng));
  s.translation = {6 * n(rng), 6 * n(rng), 6 * n(rng)};
  s.vessels = vessel_tree(rng);
  if (u(rng) >= p_positive && first_column < 0) return s;

  // ~13 % of positives carry 2 or 3 aneurysms.
  const double r = u(rng);
  const int count = r < 0.87 ? 1 : r < 0.97 ? 2 : 3;
  std::discrete_distribution<int> where(location_weights().begin(), location_weights().end());
  for (int a = 0; a < count; ++a) {
    const int drawn = where(rng);
    const int column = a == 0 && first_column >= 0 ? first_column : drawn;
    const int cowseg = column_to_cowseg(column);
    std::vector<const Segment*> segs;
    for (const auto& seg : s.vessels)
      if (seg.cowseg == cowseg) segs.push_back(&seg);
    const Segment& seg = *segs[static_cast<size_t>(u(rng) * segs.size()) % segs.size()];
    const double t = column == 6 ? 0.5 : column == 11 ? 1.0 : 0.2 + 0.6 * u(rng);
    const Vec3 on = seg.a + t * (seg.b - seg.a);
    // A direction perpendicular to the segment: the blob sits on the vessel wall.
    const Vec3 axis = normalized(seg.b - seg.a);
    Vec3 d{n(rng), n(rng), n(rng)};
    d = normalized(d - dot(d, axis) * axis);
    const double radius = 1.0 + 5.0 * std::pow(u(rng), 2.0);  // 1-6 mm, small ones common
    Aneurysm an;
    an.radius = radius;
    an.column = column;
    an.centre_subject = on + (seg.radius + 0.6 * radius) * d;
    an.centre_world = s.to_world(an.centre_subject);
    s.aneurysms.push_back(an);
  }
  return s;
}

VesselGrid::VesselGrid(const Subject& s, double step) : step_(step) {
  Vec3 lo{1e9, 1e9, 1e9}, hi{-1e9, -1e9, -1e9};
  auto grow = [&](const Vec3& p, double r) {
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], p[a] - r - step);
      hi[a] = std::max(hi[a], p[a] + r + step);
    }
  };
  for (const auto& v : s.vessels) {
    grow(v.a, v.radius);
    grow(v.b, v.radius);
  }
  for (const auto& a : s.aneurysms) grow(a.centre_subject, a.radius);
  lo_ = lo;
  for (int a = 0; a < 3; ++a) n_[a] = static_cast<int64_t>(std::ceil((hi[a] - lo[a]) / step)) + 1;
  labels_.assign(static_cast<size_t>(n_[0] * n_[1] * n_[2]), 0);
  aneurysm_.assign(labels_.size(), 0);
  auto stamp = [&](const Vec3& blo, const Vec3& bhi, auto&& inside) {
    int64_t i0[3], i1[3];
    for (int a = 0; a < 3; ++a) {
      i0[a] = std::max<int64_t>(0, static_cast<int64_t>(std::floor((blo[a] - lo_[a]) / step)));
      i1[a] = std::min<int64_t>(n_[a] - 1, static_cast<int64_t>(std::ceil((bhi[a] - lo_[a]) / step)));
    }
    for (int64_t k = i0[2]; k <= i1[2]; ++k)
      for (int64_t j = i0[1]; j <= i1[1]; ++j)
        for (int64_t i = i0[0]; i <= i1[0]; ++i)
          inside(static_cast<size_t>(i + n_[0] * (j + n_[1] * k)),
                 Vec3{lo_[0] + i * step, lo_[1] + j * step, lo_[2] + k * step});
  };
  for (const auto& v : s.vessels) {
    Vec3 blo, bhi;
    for (int a = 0; a < 3; ++a) {
      blo[a] = std::min(v.a[a], v.b[a]) - v.radius;
      bhi[a] = std::max(v.a[a], v.b[a]) + v.radius;
    }
    stamp(blo, bhi, [&](size_t idx, const Vec3& p) {
      if (seg_distance(p, v.a, v.b) <= v.radius && labels_[idx] == 0) labels_[idx] = static_cast<uint8_t>(v.cowseg);
    });
  }
  for (size_t i = 0; i < s.aneurysms.size(); ++i) {
    const auto& an = s.aneurysms[i];
    const Vec3 r{an.radius, an.radius, an.radius};
    stamp(an.centre_subject - r, an.centre_subject + r, [&](size_t idx, const Vec3& p) {
      if (norm(p - an.centre_subject) <= an.radius) aneurysm_[idx] = static_cast<uint8_t>(i + 1);
    });
  }
  // Blocks near a vessel: each occupied voxel marks its block and the 26 around it.
  for (int a = 0; a < 3; ++a) nb_[a] = static_cast<int64_t>(std::ceil(n_[a] * step / kNearBlockMm)) + 1;
  near_.assign(static_cast<size_t>(nb_[0] * nb_[1] * nb_[2]), 0);
  for (int64_t k = 0; k < n_[2]; ++k)
    for (int64_t j = 0; j < n_[1]; ++j)
      for (int64_t i = 0; i < n_[0]; ++i) {
        const size_t idx = static_cast<size_t>(i + n_[0] * (j + n_[1] * k));
        if (!labels_[idx] && !aneurysm_[idx]) continue;
        const int64_t b[3] = {static_cast<int64_t>(i * step / kNearBlockMm),
                              static_cast<int64_t>(j * step / kNearBlockMm),
                              static_cast<int64_t>(k * step / kNearBlockMm)};
        for (int64_t dz = -1; dz <= 1; ++dz)
          for (int64_t dy = -1; dy <= 1; ++dy)
            for (int64_t dx = -1; dx <= 1; ++dx) {
              const int64_t x = b[0] + dx, y = b[1] + dy, z = b[2] + dz;
              if (x < 0 || y < 0 || z < 0 || x >= nb_[0] || y >= nb_[1] || z >= nb_[2]) continue;
              near_[static_cast<size_t>(x + nb_[0] * (y + nb_[1] * z))] = 1;
            }
      }
}

bool VesselGrid::near_vessel(const Vec3& s) const {
  int64_t idx[3];
  for (int a = 0; a < 3; ++a) {
    idx[a] = static_cast<int64_t>(std::floor((s[a] - lo_[a]) / kNearBlockMm));
    if (idx[a] < 0 || idx[a] >= nb_[a]) return false;
  }
  return near_[static_cast<size_t>(idx[0] + nb_[0] * (idx[1] + nb_[1] * idx[2]))] != 0;
}

uint8_t VesselGrid::lookup(const std::vector<uint8_t>& v, const Vec3& s) const {
  int64_t idx[3];
  for (int a = 0; a < 3; ++a) {
    idx[a] = static_cast<int64_t>(std::lround((s[a] - lo_[a]) / step_));
    if (idx[a] < 0 || idx[a] >= n_[a]) return 0;
  }
  return v[static_cast<size_t>(idx[0] + n_[0] * (idx[1] + n_[1] * idx[2]))];
}

double head_depth_mm(const Subject& s, const Vec3& world) {
  const Vec3 p = s.to_subject(world);
  const Vec3& r = s.head_radii;
  const double e = std::sqrt(p[0] * p[0] / (r[0] * r[0]) + p[1] * p[1] / (r[1] * r[1]) + p[2] * p[2] / (r[2] * r[2]));
  return (1.0 - e) * r[2];
}

nlohmann::json head_to_json(const Subject& s) {
  return {{"rotation_subject_to_lps", s.rotation}, {"translation_lps_mm", s.translation}, {"radii_mm", s.head_radii}};
}

Subject head_from_json(const nlohmann::json& j) {
  Subject s;
  try {
    s.rotation = j.at("rotation_subject_to_lps").get<Mat3>();
    s.translation = j.at("translation_lps_mm").get<Vec3>();
    s.head_radii = j.at("radii_mm").get<Vec3>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("truth.json head: ") + e.what());
  }
  return s;
}

Tissue tissue_at(const Subject& s, const VesselGrid& g, const Vec3& world) {
  const double depth = head_depth_mm(s, world);
  if (depth < 0) return Tissue::Air;
  if (depth < kScalpDepthMm) return Tissue::Scalp;
  if (depth < kSkullDepthMm) return Tissue::Skull;
  if (depth < kBrainDepthMm) return Tissue::Csf;
  const Vec3 p = s.to_subject(world);
  if (g.aneurysm_at(p)) return Tissue::Aneurysm;
  if (g.vessel_at(p)) return Tissue::Vessel;
  // lateral ventricles
  for (double side : {-1.0, 1.0}) {
    const Vec3 q{(p[0] - 10 * side) / 6, (p[1] + 5) / 22, (p[2] - 18) / 9};
    if (dot(q, q) < 1.0) return Tissue::Csf;
  }
  return Tissue::Brain;
}

}  // namespace aneura::synth
