#include "synth/series.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "core/parallel.hpp"

namespace fs = std::filesystem;

namespace aneura::synth {

namespace {

Vec3 rotate_about(const Vec3& v, const Vec3& axis, double angle) {
  // Rodrigues' rotation formula
  const Vec3 k = normalized(axis);
  const double c = std::cos(angle), s = std::sin(angle);
  return (c * v) + (s * cross(k, v)) + ((1 - c) * dot(k, v)) * k;
}

struct SizePreset {
  int matrix[4];       // rows = columns, per modality (CTA, MRA, T2, T1post)
  double fov[4];       // mm, in-plane, per modality
  double slice[4];     // slice spacing per modality
  double coverage[4];  // mm along the normal per modality
  bool vessel_fov[4];  // the field of view is centred on the vessel tree, not on the head (a
                       // partial field of view, as CTA reconstructions and TOF slabs have)
};

SizePreset preset(Size size) {
  switch (size) {
    case Size::Tiny:
      return {{40, 40, 40, 40}, {220, 220, 220, 220}, {5, 4, 6, 7}, {150, 80, 150, 160}, {}};
    case Size::Small:
      return {{128, 128, 128, 128}, {220, 220, 220, 220}, {1.25, 1.2, 5, 5}, {150, 70, 150, 170}, {}};
    case Size::Medium:  // clinical pixels: 0.50-0.61 mm (CTA, TOF), 0.62-0.76 mm (routine MRI)
      return {{256, 256, 320, 320},
              {141, 141, 220, 220},
              {0.625, 0.6, 5, 5},
              {90, 60, 150, 170},
              {true, true, false, false}};
    case Size::Full:
      return {{512, 512, 512, 512}, {230, 230, 230, 230}, {0.625, 0.5, 1.0, 5}, {250, 87, 150, 175}, {}};
  }
  return preset(Size::Small);
}

// The vessel tree's middle in subject coordinates (its extent: L-R +-64, A-P -38..+61, I-S
// -66..+48 mm around the Circle of Willis): the centre of a vessel-centred field of view.
const Vec3 kVesselTreeCentre{0, 11, -8};

}  // namespace

SeriesDesign draw_design(Modality m, Size size, const Subject& s, bool hazards, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const SizePreset p = preset(size);
  const int mi = static_cast<int>(m);
  SeriesDesign d;
  d.modality = m;

  // Plane: 96.5 % axial, 2 % coronal, 1.5 % sagittal (RSNA 2025); some oblique tilt.
  const double pr = u(rng);
  if (pr < 0.965) {
    d.plane = "axial";
    d.row_cos = {1, 0, 0};
    d.col_cos = {0, 1, 0};
  } else if (pr < 0.985) {
    d.plane = "coronal";
    d.row_cos = {1, 0, 0};
    d.col_cos = {0, 0, -1};
  } else {
    d.plane = "sagittal";
    d.row_cos = {0, 1, 0};
    d.col_cos = {0, 0, -1};
  }
  if (u(rng) < 0.2) {
    d.tilt_deg = (u(rng) < 0.5 ? -1 : 1) * (3 + 12 * u(rng));
    d.col_cos = rotate_about(d.col_cos, d.row_cos, d.tilt_deg * M_PI / 180.0);
  }
  d.normal = normalized(cross(d.row_cos, d.col_cos));

  d.matrix = p.matrix[mi];
  d.pixel_spacing = p.fov[mi] / p.matrix[mi] * (0.9 + 0.2 * u(rng));
  d.slice_spacing = p.slice[mi] * (0.9 + 0.2 * u(rng));
  double coverage = p.coverage[mi];
  if (d.plane != "axial") coverage = std::max(coverage, 150.0);

  // Slab centre: the Circle of Willis for MRA, the head otherwise (subject z up = cranial).
  const Vec3 centre_subject = m == Modality::MRA ? Vec3{0, 0, -8} : Vec3{0, 0, -10};
  const Vec3 jitter{4 * (u(rng) - 0.5), 4 * (u(rng) - 0.5), 4 * (u(rng) - 0.5)};
  Vec3 centre = s.to_world(centre_subject) + jitter;
  double lo = dot(centre, d.normal) - coverage / 2, hi = dot(centre, d.normal) + coverage / 2;
  for (const auto& a : s.aneurysms) {  // every aneurysm lies inside the slab
    lo = std::min(lo, dot(a.centre_world, d.normal) - a.radius - 2 * d.slice_spacing);
    hi = std::max(hi, dot(a.centre_world, d.normal) + a.radius + 2 * d.slice_spacing);
  }
  d.slices = static_cast<int>(std::ceil((hi - lo) / d.slice_spacing)) + 1;
  const double half = (d.matrix - 1) * d.pixel_spacing / 2.0;
  const Vec3 fov_centre = p.vessel_fov[mi] ? s.to_world(kVesselTreeCentre) + jitter : centre;
  Vec3 in_plane_centre = fov_centre - dot(fov_centre, d.normal) * d.normal;
  // Every aneurysm lies inside the field of view too (2 pixels to spare): a partial field of view
  // is moved, never widened (a whole-head field of view never needs it).
  const double spare = 2 * d.pixel_spacing;
  for (const auto& a : s.aneurysms)
    for (const Vec3& axis : {d.row_cos, d.col_cos}) {
      const double at = dot(a.centre_world - in_plane_centre, axis);
      const double room = half - a.radius - spare;
      if (room <= 0) continue;  // larger than the field: nothing to do
      if (at > room) in_plane_centre = in_plane_centre + (at - room) * axis;
      if (at < -room) in_plane_centre = in_plane_centre + (at + room) * axis;
    }
  d.first_position = in_plane_centre + lo * d.normal + (-half) * d.row_cos + (-half) * d.col_cos;

  // Storage like the scanners: CT unsigned 12-bit with intercept -1024, or signed 16-bit, a few
  // with another rescale; MR unsigned 12/16-bit, some with a slope.
  if (m == Modality::CTA) {
    const double r = u(rng);
    if (r < 0.5) {
      d.bits_stored = 12, d.pixel_representation = 0, d.intercept = -1024;
    } else if (r < 0.9) {
      d.bits_stored = 16, d.pixel_representation = 1, d.intercept = 0;
    } else {
      d.bits_stored = 16, d.pixel_representation = 0, d.slope = 0.5, d.intercept = -1024;
    }
  } else {
    d.bits_stored = u(rng) < 0.5 ? 12 : 16;
    d.pixel_representation = 0;
    if (u(rng) < 0.15) d.slope = 1.5 + u(rng);
  }
  if (u(rng) < 0.03) d.photometric = "MONOCHROME1";
  d.multiframe = u(rng) < 0.074;
  d.per_frame_groups = u(rng) < 0.7;
  if (u(rng) < 0.12) {
    static const Syntax compressed[] = {Syntax::JpegLossless, Syntax::JpegLsLossless, Syntax::Jpeg2000Lossless,
                                        Syntax::Rle};
    d.syntax = compressed[static_cast<int>(u(rng) * 4) % 4];
    if (d.syntax == Syntax::Jpeg2000Lossless && d.matrix < 64) d.syntax = Syntax::Rle;  // OpenJPEG limit
  }
  if (hazards) {
    d.scout = u(rng) < 0.1;
    if (!d.multiframe && d.slices > 6 && u(rng) < 0.1) d.missing_slice = 2 + static_cast<int>(u(rng) * (d.slices - 4));
    d.wrong_thickness = u(rng) < 0.1;
  }
  return d;
}

std::string coordinates_string(const LocalizerRow& r) {
  char buf[96];
  if (r.frame >= 0)
    std::snprintf(buf, sizeof buf, "{'x': %.2f, 'y': %.2f, 'f': %d}", r.x, r.y, r.frame);
  else
    std::snprintf(buf, sizeof buf, "{'x': %.2f, 'y': %.2f}", r.x, r.y);
  return buf;
}

std::vector<LocalizerRow> write_series(const Subject& s, const VesselGrid& grid, const Appearance& look,
                                       const SeriesDesign& d, const fs::path& dir, uint64_t noise_seed) {
  fs::create_directories(dir);
  const int n = d.matrix;
  const uint64_t max_stored = (1ull << d.bits_stored) - 1;
  const double lo_stored = d.pixel_representation ? -std::ldexp(1.0, d.bits_stored - 1) : 0.0;
  const double hi_stored = d.pixel_representation ? std::ldexp(1.0, d.bits_stored - 1) - 1 : double(max_stored);
  auto position = [&](int k) { return d.first_position + (k * d.slice_spacing) * d.normal; };

  // Physical slices written (one may be missing), in a non-spatial InstanceNumber order.
  std::vector<int> slices;
  for (int k = 0; k < d.slices; ++k)
    if (k != d.missing_slice) slices.push_back(k);
  std::vector<int> order = slices;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(noise_seed ^ 0x5eedULL));

  // Partial volume near vessels: a voxel's value is the mean over sub-samples (about 0.6 mm apart)
  // across its pixel and its slice thickness, so a small aneurysm between slice centres still shows
  // as a fainter blob, as on a scanner. Elsewhere one sample at the centre.
  const int kp = std::clamp(static_cast<int>(std::ceil(d.pixel_spacing / 0.6)), 1, 3);
  const int kn = std::clamp(static_cast<int>(std::ceil(d.slice_spacing / 0.6)), 1, 9);
  auto voxel_value = [&](const Vec3& w, double z) {
    if (kp * kn == 1 || !grid.near_vessel(s.to_subject(w))) return look.value(tissue_at(s, grid, w), w, z);
    double sum = 0;
    for (int c = 0; c < kn; ++c)
      for (int b = 0; b < kp; ++b)
        for (int a = 0; a < kp; ++a) {
          const Vec3 q = w + (((a + 0.5) / kp - 0.5) * d.pixel_spacing) * d.row_cos +
                         (((b + 0.5) / kp - 0.5) * d.pixel_spacing) * d.col_cos +
                         (((c + 0.5) / kn - 0.5) * d.slice_spacing) * d.normal;
          sum += look.value(tissue_at(s, grid, q), w, z);
        }
    return sum / (kp * kp * kn);
  };
  auto render = [&](int k, std::vector<uint16_t>& out) {
    std::mt19937_64 rng(noise_seed + 7919ULL * static_cast<uint64_t>(k + 1));
    std::normal_distribution<double> noise(0.0, 1.0);
    const Vec3 o = position(k);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i) {
        const Vec3 w = o + (i * d.pixel_spacing) * d.row_cos + (j * d.pixel_spacing) * d.col_cos;
        const double value = voxel_value(w, noise(rng));
        double sv = std::clamp(std::round((value - d.intercept) / d.slope), lo_stored, hi_stored);
        if (d.photometric == "MONOCHROME1") sv = (d.pixel_representation ? -1.0 : double(max_stored)) - sv;
        out.push_back(static_cast<uint16_t>(static_cast<int64_t>(sv) & 0xffff));
      }
  };

  DicomImageSpec base;
  base.series_uid = d.series_uid;
  base.modality = dicom_modality(d.modality);
  base.rows = base.cols = n;
  base.row_cos = d.row_cos;
  base.col_cos = d.col_cos;
  base.row_spacing = base.col_spacing = d.pixel_spacing;
  base.bits_stored = d.bits_stored;
  base.high_bit = d.bits_stored - 1;
  base.pixel_representation = d.pixel_representation;
  base.photometric = d.photometric;
  base.slopes = {d.slope};
  base.intercepts = {d.intercept};
  base.slice_thickness = d.wrong_thickness ? d.slice_spacing * 3 : d.slice_spacing;
  base.image_type = std::string("ORIGINAL\\PRIMARY\\") + (d.plane == "axial" ? "AXIAL" : "OTHER");

  if (d.multiframe) {
    DicomImageSpec m = base;
    m.enhanced = true;
    m.per_frame_groups = d.per_frame_groups;
    m.spacing_between_slices = d.slice_spacing;
    m.sop_uid = d.series_uid + ".1";
    m.frames = static_cast<int>(order.size());
    // Without per-frame positions the frames must be in spatial order (top-level tags only).
    const std::vector<int>& frames = d.per_frame_groups ? order : slices;
    for (int k : frames) {
      m.positions.push_back(position(k));
      render(k, m.stored);
    }
    write_dicom(m, dir / (m.sop_uid + ".dcm"), d.syntax);
  } else {
    parallel_for(order.size(), 1, [&](size_t idx) {
      const int k = order[idx];
      DicomImageSpec one = base;
      one.sop_uid = d.series_uid + "." + std::to_string(k + 1);
      one.instance_number = static_cast<int>(idx + 1);
      one.positions = {position(k)};
      render(k, one.stored);
      write_dicom(one, dir / (one.sop_uid + ".dcm"), d.syntax);
    });
  }
  if (d.scout) {  // a localizer image with another geometry in the same series
    DicomImageSpec sc = base;
    sc.rows = sc.cols = std::max(16, n / 2);
    sc.row_cos = {0, 1, 0};
    sc.col_cos = {0, 0, -1};
    sc.row_spacing = sc.col_spacing = d.pixel_spacing * 2;
    sc.sop_uid = d.series_uid + ".9999";
    sc.instance_number = 9999;
    sc.image_type = "ORIGINAL\\PRIMARY\\LOCALIZER";
    sc.positions = {s.to_world({0, -100, 100})};
    sc.stored.assign(static_cast<size_t>(sc.rows) * sc.cols, 100);
    write_dicom(sc, dir / (sc.sop_uid + ".dcm"));
  }

  // Localizers: the centre projected onto the nearest written slice, as a pixel (x, y).
  std::vector<LocalizerRow> rows;
  const std::vector<int>& frame_order = d.per_frame_groups ? order : slices;
  for (const auto& a : s.aneurysms) {
    int best = slices[0];
    for (int k : slices)
      if (std::fabs(dot(a.centre_world - position(k), d.normal)) <
          std::fabs(dot(a.centre_world - position(best), d.normal)))
        best = k;
    const Vec3 rel = a.centre_world - position(best);
    LocalizerRow r;
    r.x = dot(rel, d.row_cos) / d.pixel_spacing;
    r.y = dot(rel, d.col_cos) / d.pixel_spacing;
    r.column = a.column;
    if (d.multiframe) {
      r.sop_uid = d.series_uid + ".1";
      r.frame = static_cast<int>(std::find(frame_order.begin(), frame_order.end(), best) - frame_order.begin());
    } else {
      r.sop_uid = d.series_uid + "." + std::to_string(best + 1);
    }
    rows.push_back(r);
  }
  return rows;
}

}  // namespace aneura::synth
