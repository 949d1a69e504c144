#include "io/dicom_series.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <type_traits>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "io/dicom_decode.hpp"

namespace fs = std::filesystem;

namespace aneura {

namespace {

// Two positions closer than this along the normal are the same slice position.
constexpr double kSamePositionMm = 0.01;
// Orientation cosines closer than this belong to the same geometry group.
constexpr double kSameOrientation = 1e-3;

std::string fmt3(const Vec3& v) {
  std::ostringstream s;
  s.precision(4);
  s << "(" << v[0] << ", " << v[1] << ", " << v[2] << ")";
  return s.str();
}

double max_abs_diff(const Vec3& a, const Vec3& b) {
  return std::max({std::fabs(a[0] - b[0]), std::fabs(a[1] - b[1]), std::fabs(a[2] - b[2])});
}

struct Group {
  std::vector<size_t> members;  // indices into the scanned records
  const SliceRecord* first = nullptr;
  bool multiframe_type = false;
  bool same_geometry(const SliceRecord& r) const {
    const SliceRecord& f = *first;
    return f.series_uid == r.series_uid && f.rows == r.rows && f.cols == r.cols && f.echo_number == r.echo_number &&
           (f.mosaic_tiles > 0) == (r.mosaic_tiles > 0) && (f.frames_in_file == 1 || f.image_type == r.image_type) &&
           max_abs_diff(f.row_cos, r.row_cos) < kSameOrientation &&
           max_abs_diff(f.col_cos, r.col_cos) < kSameOrientation;
  }
  std::string describe() const {
    const SliceRecord& f = *first;
    std::ostringstream s;
    s << members.size() << " image(s) of series '" << f.series_uid << "' " << f.cols << "x" << f.rows << " orientation "
      << fmt3(f.row_cos) << fmt3(f.col_cos);
    if (f.echo_number) s << " echo " << f.echo_number;
    if (f.frames_in_file > 1 && !f.image_type.empty()) s << " frame type " << f.image_type;
    if (f.image_type.find("LOCALIZER") != std::string::npos) s << " (LOCALIZER)";
    s << ", e.g. " << f.file.filename().string();
    return s.str();
  }
};

struct Scan {
  std::vector<SliceRecord> records;
  size_t files = 0, non_dicom = 0, non_image = 0;
  std::vector<std::pair<fs::path, std::string>> corrupt;
};

Scan scan_folder(const fs::path& folder, unsigned threads) {
  std::error_code ec;
  if (!fs::exists(folder, ec)) throw Error(ErrorCode::InputNotFound, "input does not exist", folder.string());
  std::vector<fs::path> files;
  if (fs::is_regular_file(folder, ec)) {
    files.push_back(folder);
  } else if (fs::is_directory(folder, ec)) {
    // Symbolic links are followed (a study folder of links to series folders), each folder and
    // each file once whatever the number of ways to it, so a link back up cannot loop.
    std::set<fs::path> folders_seen{fs::canonical(folder, ec)}, files_seen;
    fs::recursive_directory_iterator it(
        folder, fs::directory_options::skip_permission_denied | fs::directory_options::follow_directory_symlink, ec);
    if (ec) throw Error(ErrorCode::InputNotFound, "cannot read folder: " + ec.message(), folder.string());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) throw Error(ErrorCode::InputNotFound, "cannot read folder: " + ec.message(), folder.string());
      std::error_code e2;
      if (it->is_directory(e2)) {
        const fs::path real = fs::canonical(it->path(), e2);
        if (e2 || !folders_seen.insert(real).second) it.disable_recursion_pending();
      } else if (it->is_regular_file(e2)) {
        const fs::path real = fs::canonical(it->path(), e2);
        if (!e2 && files_seen.insert(real).second) files.push_back(it->path());
      }
    }
  } else {
    throw Error(ErrorCode::InputNotFound, "input is neither a file nor a folder", folder.string());
  }
  std::sort(files.begin(), files.end());
  std::vector<HeaderResult> results(files.size());
  parallel_for(files.size(), threads, [&](size_t i) { results[i] = read_dicom_header(files[i]); });
  Scan scan;
  scan.files = files.size();
  for (size_t i = 0; i < files.size(); ++i) {
    auto& r = results[i];
    switch (r.kind) {
      case HeaderResult::Kind::Image:
        for (auto& rec : r.records) scan.records.push_back(std::move(rec));
        break;
      case HeaderResult::Kind::NotDicom:
        ++scan.non_dicom;
        break;
      case HeaderResult::Kind::NonImage:
        ++scan.non_image;
        break;
      case HeaderResult::Kind::Corrupt:
        scan.corrupt.emplace_back(files[i], r.reason);
        break;
    }
  }
  return scan;
}

std::vector<Group> group_records(const std::vector<SliceRecord>& recs) {
  std::vector<Group> groups;
  for (size_t i = 0; i < recs.size(); ++i) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.same_geometry(recs[i]); });
    if (it == groups.end()) {
      groups.push_back(Group{{}, &recs[i]});
      it = groups.end() - 1;
    }
    it->members.push_back(i);
  }
  return groups;
}

// Picks the group to convert; every other group is reported in plan.dropped.
const Group& choose_group(std::vector<Group>& groups, const SeriesOptions& opts, SeriesPlan& plan) {
  std::vector<Group*> candidates;
  for (auto& g : groups) {
    if (!opts.series_uid.empty() && g.first->series_uid != opts.series_uid) continue;
    if (opts.echo > 0 && g.first->echo_number != opts.echo) continue;
    candidates.push_back(&g);
  }
  if (candidates.empty()) {
    std::string present;
    for (auto& g : groups) present += "\n  " + g.describe();
    throw Error(ErrorCode::AmbiguousSeries,
                "no images match --series '" + opts.series_uid + "'" +
                    (opts.echo ? " --echo " + std::to_string(opts.echo) : "") + "; present:" + present,
                plan.folder.string());
  }
  // Largest first; among equals the lower echo number, then the order found.
  std::stable_sort(candidates.begin(), candidates.end(), [](const Group* a, const Group* b) {
    if (a->members.size() != b->members.size()) return a->members.size() > b->members.size();
    return a->first->echo_number < b->first->echo_number;
  });
  const Group* best = candidates[0];
  for (size_t c = 1; c < candidates.size(); ++c) {
    const Group* g = candidates[c];
    if (g->members.size() != best->members.size()) break;
    const bool variant_of_same_series = g->first->series_uid == best->first->series_uid &&
                                        g->first->rows == best->first->rows && g->first->cols == best->first->cols &&
                                        max_abs_diff(g->first->row_cos, best->first->row_cos) < kSameOrientation &&
                                        max_abs_diff(g->first->col_cos, best->first->col_cos) < kSameOrientation;
    if (!variant_of_same_series)
      throw Error(ErrorCode::AmbiguousSeries,
                  "several series of equal size and no clear choice (use --series UID; aneura info --list lists "
                  "every series):\n  " +
                      best->describe() + "\n  " + g->describe(),
                  plan.folder.string());
    plan.warnings.push_back(
        "series holds several images per position that differ by echo or frame "
        "type; converting " +
        best->describe() + " (choose with --echo)");
    break;
  }
  for (auto& g : groups)
    if (&g != best) plan.dropped.push_back("dropped " + g.describe() + ": other series or geometry");
  return *best;
}

std::string plane_name(const Vec3& normal) {
  int best = 0;
  for (int c = 1; c < 3; ++c)
    if (std::fabs(normal[c]) > std::fabs(normal[best])) best = c;
  static const char* names[3] = {"sagittal", "coronal", "axial"};
  std::string name = names[best];
  const double tilt = std::acos(std::min(1.0, std::fabs(normal[best]))) * 180.0 / M_PI;
  if (tilt > 1.0) {
    std::ostringstream s;
    s.precision(3);
    s << name << " (oblique " << tilt << " deg)";
    name = s.str();
  }
  return name;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[(v.size() - 1) / 2];  // lower median: a missing slice must not set the step
}

// The images of the chosen series: scanned, corrupt files refused or dropped, grouped, one group
// chosen; colour refused.
std::vector<SliceRecord> chosen_records(const fs::path& folder, const SeriesOptions& opts, SeriesPlan& plan) {
  Scan scan = scan_folder(folder, opts.threads);
  plan.files_scanned = scan.files;
  plan.non_dicom_files = scan.non_dicom;
  plan.non_image_dicom_files = scan.non_image;
  for (auto& [file, reason] : scan.corrupt) {
    if (!opts.skip_corrupt) throw Error(ErrorCode::CorruptInput, reason, file.string());
    plan.dropped.push_back("dropped corrupt file " + file.string() + ": " + reason);
  }
  if (scan.records.empty())
    throw Error(ErrorCode::NoDicom,
                "no DICOM image found (" + std::to_string(scan.files) + " file(s), " + std::to_string(scan.non_image) +
                    " DICOM without pixel data)",
                folder.string());

  std::vector<Group> groups = group_records(scan.records);
  const Group& chosen = choose_group(groups, opts, plan);
  std::vector<SliceRecord> recs;
  for (size_t i : chosen.members) recs.push_back(scan.records[i]);

  for (const auto& r : recs)
    for (const auto& w : r.warnings) plan.warnings.push_back(w + " (" + r.file.string() + ")");
  if (recs[0].samples_per_pixel != 1)
    throw Error(ErrorCode::Unsupported,
                "colour images (SamplesPerPixel (0028,0002) = " + std::to_string(recs[0].samples_per_pixel) +
                    ") are not supported",
                recs[0].file.string());
  return recs;
}

// Images without a position: if none has one, stack them by InstanceNumber; else drop them.
void place_unpositioned(std::vector<SliceRecord>& recs, SeriesPlan& plan) {
  const size_t with_pos = std::count_if(recs.begin(), recs.end(), [](const SliceRecord& r) { return r.has_position; });
  if (with_pos == 0) {
    std::stable_sort(recs.begin(), recs.end(), [](const SliceRecord& a, const SliceRecord& b) {
      return a.instance_number != b.instance_number ? a.instance_number < b.instance_number : a.frame < b.frame;
    });
    const Vec3 n = normalized(cross(recs[0].row_cos, recs[0].col_cos));
    const double step = nominal_slice_step(recs[0]);
    for (size_t s = 0; s < recs.size(); ++s) recs[s].position = (s * step) * n;
    if (recs.size() > 1)
      plan.warnings.push_back("no ImagePositionPatient (0020,0032): slices stacked by InstanceNumber, " +
                              std::to_string(step) + " mm apart");
  } else if (with_pos < recs.size()) {
    for (const auto& r : recs)
      if (!r.has_position)
        plan.dropped.push_back("dropped " + r.file.string() + ": no ImagePositionPatient (0020,0032)");
    recs.erase(std::remove_if(recs.begin(), recs.end(), [](const SliceRecord& r) { return !r.has_position; }),
               recs.end());
  }
}

// The images along the slice normal: positions (coords, mm) and the images at each (clusters).
struct Stack {
  Vec3 normal{0, 0, 1};
  std::vector<std::vector<size_t>> clusters;  // indices into the records, per position
  std::vector<double> coords;                 // position along the normal, ascending
  size_t volumes = 1;                         // images per position kept (the fewest at any position)
};

Stack stack_by_position(const std::vector<SliceRecord>& recs, const fs::path& folder, SeriesPlan& plan) {
  Stack st;
  const SliceRecord& ref = recs[0];
  st.normal = slice_normal(ref);
  std::vector<std::pair<double, size_t>> order;
  for (size_t i = 0; i < recs.size(); ++i) order.emplace_back(dot(recs[i].position, st.normal), i);
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
    if (std::fabs(a.first - b.first) > kSamePositionMm) return a.first < b.first;
    const SliceRecord &ra = recs[a.second], &rb = recs[b.second];
    if (ra.instance_number != rb.instance_number) return ra.instance_number < rb.instance_number;
    if (ra.file != rb.file) return ra.file < rb.file;
    return ra.frame < rb.frame;
  });
  // Cluster equal positions: several images per position are several volumes (or duplicates).
  for (const auto& [d, i] : order) {
    if (st.clusters.empty() || d - st.coords.back() > kSamePositionMm) {
      st.clusters.push_back({});
      st.coords.push_back(d);
    }
    st.clusters.back().push_back(i);
  }
  if (st.clusters.size() == 1 && recs.size() > 1)
    throw Error(ErrorCode::BadGeometry,
                "all " + std::to_string(recs.size()) + " images lie at one position " + fmt3(ref.position) +
                    " along the slice normal (ImagePositionPatient (0020,0032))",
                folder.string());
  st.volumes = st.clusters[0].size();
  for (const auto& c : st.clusters) st.volumes = std::min(st.volumes, c.size());
  size_t extra = 0;
  for (const auto& c : st.clusters) extra += c.size() - st.volumes;
  if (extra > 0)
    plan.warnings.push_back(std::to_string(extra) +
                            " image(s) duplicate a slice position; kept the "
                            "lowest InstanceNumber at each position");
  if (st.volumes > 1)
    plan.warnings.push_back("series holds " + std::to_string(st.volumes) + " volumes at the same " +
                            std::to_string(st.clusters.size()) + " positions");
  return st;
}

// The slice step from the positions, never from SliceThickness; uneven gaps are an error with
// --strict-spacing, else a linear resampling onto `nslices` even slices. Returns the step (mm).
double measure_slice_step(const Stack& st, const SliceRecord& ref, const SeriesOptions& opts, const fs::path& folder,
                          SeriesPlan& plan, size_t& nslices) {
  const auto& coords = st.coords;
  std::vector<double> gaps;
  for (size_t s = 1; s < coords.size(); ++s) gaps.push_back(coords[s] - coords[s - 1]);
  double step = gaps.empty() ? nominal_slice_step(ref) : median(gaps);
  nslices = coords.size();
  const double tol = std::max(kSamePositionMm, 0.01 * step);
  const auto [gmin, gmax] = gaps.empty() ? std::make_pair(step, step)
                                         : std::make_pair(*std::min_element(gaps.begin(), gaps.end()),
                                                          *std::max_element(gaps.begin(), gaps.end()));
  if (gmax - step > tol || step - gmin > tol) {
    std::ostringstream msg;
    msg.precision(4);
    msg << "uneven slice spacing along the normal: gaps " << gmin << " to " << gmax << " mm (median " << step << " mm)";
    if (opts.strict_spacing) throw Error(ErrorCode::BadGeometry, msg.str(), folder.string());
    const double extent = coords.back() - coords.front();
    nslices = static_cast<size_t>(std::lround(extent / step)) + 1;
    step = extent / static_cast<double>(nslices - 1);
    msg << "; resampled linearly onto " << nslices << " slices " << step << " mm apart";
    plan.warnings.push_back(msg.str());
    plan.resampled = true;
  }
  // Thickness may exceed or fall short of the spacing (overlap, gaps); only a factor 2 is suspicious.
  if (ref.slice_thickness > 0 && coords.size() > 1 &&
      (ref.slice_thickness > 2 * step || 2 * ref.slice_thickness < step)) {
    std::ostringstream msg;
    msg.precision(4);
    msg << "SliceThickness (0018,0050) " << ref.slice_thickness << " mm differs from the measured "
        << "spacing " << step << " mm (the measured spacing is used)";
    plan.warnings.push_back(msg.str());
  }
  return step;
}

// Positions off the slice normal mean a gantry tilt (CT): the slices are parallel but shifted in
// their own plane. As dcm2niix does, the grid becomes orthogonal (its third axis the normal) and
// wide enough to hold every slice: plan.tilt_shift[s] is slice s's first pixel's offset from the
// grid's first voxel column, in pixels, and load_volume resamples each slice by it.
constexpr double kTiltMm = 0.05;

void plan_tilt(const std::vector<SliceRecord>& recs, const Stack& st, SeriesPlan& plan) {
  const SliceRecord& ref = recs[st.clusters[0][0]];
  std::vector<std::array<double, 2>> shift;
  std::array<double, 2> lo{0, 0}, hi{0, 0};
  double drift = 0, along = 0;
  for (size_t s = 0; s < st.clusters.size(); ++s) {
    const Vec3 off = recs[st.clusters[s][0]].position - ref.position;
    const Vec3 side = off - dot(off, st.normal) * st.normal;
    shift.push_back({dot(side, ref.row_cos) / ref.col_spacing, dot(side, ref.col_cos) / ref.row_spacing});
    for (int a = 0; a < 2; ++a) lo[a] = std::min(lo[a], shift.back()[a]), hi[a] = std::max(hi[a], shift.back()[a]);
    if (norm(side) > drift) drift = norm(side), along = std::fabs(dot(off, st.normal));
  }
  if (drift <= kTiltMm) return;
  Geometry& g = plan.geometry;
  for (auto& sh : shift) sh = {sh[0] - lo[0], sh[1] - lo[1]};
  for (int a = 0; a < 2; ++a) g.size[a] += static_cast<int64_t>(std::ceil(hi[a] - lo[a] - 1e-6));
  g.origin = g.origin + (lo[0] * ref.col_spacing) * ref.row_cos + (lo[1] * ref.row_spacing) * ref.col_cos;
  plan.tilt_shift = std::move(shift);
  plan.tilt_max_mm = drift;
  plan.tilt_deg = std::atan2(drift, along) * 180.0 / M_PI;
  std::ostringstream msg;
  msg.precision(3);
  msg << "gantry tilt " << plan.tilt_deg << " deg: slice positions drift up to " << drift
      << " mm off the slice normal; every slice is resampled onto an orthogonal " << g.size[0] << "x" << g.size[1]
      << " grid (voxels a slice does not cover hold the series' minimum)";
  plan.warnings.push_back(msg.str());
}

}  // namespace

std::vector<SeriesSummary> list_series(const fs::path& folder, unsigned threads) {
  const Scan scan = scan_folder(folder, threads);
  if (scan.records.empty())
    throw Error(ErrorCode::NoDicom, "no DICOM image found (" + std::to_string(scan.files) + " file(s))",
                folder.string());
  std::vector<Group> groups = group_records(scan.records);
  std::stable_sort(groups.begin(), groups.end(),
                   [](const Group& a, const Group& b) { return a.members.size() > b.members.size(); });
  std::vector<SeriesSummary> out;
  for (const auto& g : groups) {
    const SliceRecord& f = *g.first;
    SeriesSummary s;
    s.series_uid = f.series_uid;
    s.modality = f.modality;
    s.description = f.series_description;
    const Vec3 normal = slice_normal(f);
    s.plane = plane_name(normal);
    Geometry geom;
    for (int r = 0; r < 3; ++r) geom.direction[r] = {f.row_cos[r], f.col_cos[r], normal[r]};
    s.orientation = geom.orientation_code();
    s.columns = f.cols;
    s.rows = f.rows;
    s.echo = f.echo_number;
    s.images = g.members.size();
    s.multiframe = f.frames_in_file > 1;
    s.mosaic = f.mosaic_tiles > 0;
    out.push_back(s);
  }
  return out;
}

SeriesPlan plan_series(const fs::path& folder, const SeriesOptions& opts) {
  SeriesPlan plan;
  plan.folder = folder;
  std::vector<SliceRecord> recs = chosen_records(folder, opts, plan);
  place_unpositioned(recs, plan);
  const Stack st = stack_by_position(recs, folder, plan);
  const SliceRecord& ref = recs[0];
  size_t nslices = 0;
  const double step = measure_slice_step(st, ref, opts, folder, plan, nslices);
  const auto& clusters = st.clusters;
  const auto& coords = st.coords;
  const size_t nvol = st.volumes;
  const Vec3 normal = st.normal;

  Geometry& g = plan.geometry;
  g.size = {ref.cols, ref.rows, static_cast<int64_t>(nslices)};
  g.spacing = {ref.col_spacing, ref.row_spacing, step};
  g.origin = recs[clusters[0][0]].position;
  const Vec3 axes[3] = {ref.row_cos, ref.col_cos, normal};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) g.direction[r][c] = axes[c][r];
  plan_tilt(recs, st, plan);

  plan.volumes = static_cast<int>(nvol);
  plan.slices.assign(nvol, {});
  for (size_t v = 0; v < nvol; ++v)
    for (const auto& c : clusters) plan.slices[v].push_back(recs[c[v]]);
  plan.slice_coord = coords;
  for (size_t v = 0; v < nvol; ++v)
    for (size_t s = 0; s < clusters.size(); ++s) {
      const SliceRecord& r = plan.slices[v][s];
      plan.slice_map.push_back({r.sop_uid, r.frame, r.file.string(), (coords[s] - coords[0]) / step,
                                static_cast<int>(v), r.position, r.row_cos, r.col_cos, r.row_spacing, r.col_spacing});
    }

  plan.series_uid = ref.series_uid;
  plan.study_uid = ref.study_uid;
  plan.frame_of_reference_uid = ref.frame_of_reference_uid;
  plan.patient_id = ref.patient_id;
  plan.modality = ref.modality;
  plan.sop_class_uid = ref.sop_class_uid;
  plan.transfer_syntax = ref.transfer_syntax;
  plan.photometric = ref.photometric;
  plan.multiframe = ref.frames_in_file > 1;
  plan.mosaic = ref.mosaic_tiles > 0;
  plan.acquisition_3d = ref.acquisition_3d;
  plan.epi = ref.epi;
  plan.slice_thickness = ref.slice_thickness;
  plan.plane = plane_name(normal);
  return plan;
}

// Bilinear resampling of one slice (nx x ny) onto a plane grid (gx x gy) whose first voxel lies at
// source pixel (-dx, -dy): dst(i, j) = src(i - dx, j - dy). A pixel covers half a pixel on each side
// of its centre, so samples up to half a pixel beyond the edge take the edge's value; voxels beyond
// hold `fill`.
template <class T>
void shift_slice(const T* src, int64_t nx, int64_t ny, T* dst, int64_t gx, int64_t gy, double dx, double dy, T fill) {
  auto axis = [](double x, int64_t n, int64_t& i0, int64_t& i1, double& w) {
    if (x < -0.5 || x > n - 0.5) return false;
    x = std::clamp(x, 0.0, static_cast<double>(n - 1));
    i0 = std::min<int64_t>(static_cast<int64_t>(x), n - 1);
    i1 = std::min<int64_t>(i0 + 1, n - 1);
    w = x - i0;
    return true;
  };
  for (int64_t j = 0; j < gy; ++j) {
    int64_t y0, y1;
    double wy;
    const bool row_in = axis(j - dy, ny, y0, y1, wy);
    for (int64_t i = 0; i < gx; ++i) {
      int64_t x0, x1;
      double wx;
      if (!row_in || !axis(i - dx, nx, x0, x1, wx)) {
        dst[j * gx + i] = fill;
        continue;
      }
      const double top = (1 - wx) * src[y0 * nx + x0] + wx * src[y0 * nx + x1];
      const double bottom = (1 - wx) * src[y1 * nx + x0] + wx * src[y1 * nx + x1];
      dst[j * gx + i] = static_cast<T>((1 - wy) * top + wy * bottom);
    }
  }
}

template <class T>
Volume<T> load_volume(const SeriesPlan& plan, unsigned threads, RowOrder rows) {
  const bool flip = rows == RowOrder::BottomUp;
  const bool tilted = !plan.tilt_shift.empty();
  const Geometry g = flip ? plan.geometry.flipped(1) : plan.geometry;
  const SliceRecord& first = plan.slices[0][0];
  const int64_t nx = first.cols, ny = first.rows;  // the stored images
  const size_t src_px = static_cast<size_t>(nx * ny), grid_px = static_cast<size_t>(g.size[0] * g.size[1]);
  const size_t nsrc = plan.slice_coord.size();
  if ((plan.resampled || tilted) && !std::is_floating_point_v<T>)
    throw Error(ErrorCode::Internal, "a resampled or tilted series needs a floating-point volume",
                plan.folder.string());
  // Decoded source slices: straight into the volume when the grid is uniform and untilted, else a
  // stack (tilted slices top-down: their rows are flipped once they lie on the grid).
  const bool staged = plan.resampled || tilted;
  std::vector<T> stack;
  if (staged) stack.resize(nsrc * src_px * plan.volumes);
  Volume<T> out(g, plan.volumes);
  const size_t nvox = static_cast<size_t>(g.voxel_count());
  auto dest = [&](size_t v, size_t s) -> T* {
    return staged ? stack.data() + (v * nsrc + s) * src_px : out.data.data() + v * nvox + s * grid_px;
  };

  // One decode per file, however many slices (frames, tiles, volumes) it holds.
  std::map<std::string, std::vector<std::pair<size_t, size_t>>> by_file;
  for (size_t v = 0; v < plan.slices.size(); ++v)
    for (size_t s = 0; s < plan.slices[v].size(); ++s) by_file[plan.slices[v][s].file.string()].push_back({v, s});
  std::vector<const std::pair<const std::string, std::vector<std::pair<size_t, size_t>>>*> jobs;
  for (const auto& kv : by_file) jobs.push_back(&kv);
  parallel_for(jobs.size(), threads, [&](size_t j) {
    const auto& [file, targets] = *jobs[j];
    const DecodedPixels px = decode_pixels(file);
    for (const auto& [v, s] : targets) copy_slice(px, plan.slices[v][s], dest(v, s), flip && !tilted);
  });

  // Tilted: each slice onto the orthogonal grid's plane at its own position (into a second stack
  // when the slices are also resampled along the normal below); voxels no slice covers hold the
  // series' minimum (air in CT), as in dcm2niix.
  std::vector<T> gridded;
  if (tilted) {
    const T fill = *std::min_element(stack.begin(), stack.end());
    if (plan.resampled) gridded.resize(nsrc * grid_px * plan.volumes);
    parallel_for(nsrc * plan.volumes, threads, [&](size_t vs) {
      const size_t v = vs / nsrc, s = vs % nsrc;
      T* to = plan.resampled ? gridded.data() + vs * grid_px : out.data.data() + v * nvox + s * grid_px;
      shift_slice(dest(v, s), nx, ny, to, g.size[0], g.size[1], plan.tilt_shift[s][0], plan.tilt_shift[s][1], fill);
    });
  }
  if (plan.resampled) {
    // Linear interpolation along the normal between the two nearest source slices.
    const T* from = tilted ? gridded.data() : stack.data();
    for (int64_t k = 0; k < g.size[2]; ++k) {
      const double c = plan.slice_coord.front() + k * g.spacing[2];
      size_t b = std::upper_bound(plan.slice_coord.begin(), plan.slice_coord.end(), c) - plan.slice_coord.begin();
      b = std::min(std::max<size_t>(b, 1), nsrc - 1);
      const size_t a = b - 1;
      const double w = std::clamp((c - plan.slice_coord[a]) / (plan.slice_coord[b] - plan.slice_coord[a]), 0.0, 1.0);
      for (int v = 0; v < plan.volumes; ++v) {
        const T* pa = from + (v * nsrc + a) * grid_px;
        const T* pb = from + (v * nsrc + b) * grid_px;
        T* o = out.data.data() + v * nvox + k * grid_px;
        for (size_t p = 0; p < grid_px; ++p) o[p] = static_cast<T>((1 - w) * pa[p] + w * pb[p]);
      }
    }
  }
  if (tilted && flip)
    for (size_t z = 0; z < static_cast<size_t>(g.size[2] * plan.volumes); ++z) {
      T* sl = out.data.data() + z * grid_px;
      for (int64_t j = 0; j < g.size[1] / 2; ++j)
        std::swap_ranges(sl + j * g.size[0], sl + (j + 1) * g.size[0], sl + (g.size[1] - 1 - j) * g.size[0]);
    }
  return out;
}

template Volume<float> load_volume<float>(const SeriesPlan&, unsigned, RowOrder);
template Volume<int16_t> load_volume<int16_t>(const SeriesPlan&, unsigned, RowOrder);

bool volume_fits_int16(const SeriesPlan& plan) {
  if (plan.resampled || !plan.tilt_shift.empty()) return false;
  for (const auto& vol : plan.slices)
    for (const auto& r : vol)
      if (!fits_int16(r)) return false;
  return true;
}

bool dcm2niix_rotates(const SeriesPlan& plan) {
  return plan.acquisition_3d && !plan.epi && plan.volumes == 1 && plan.geometry.size[2] > 1 && !plan.resampled &&
         plan.tilt_shift.empty();
}

DicomSeries load_series(const SeriesPlan& plan, unsigned threads) {
  DicomSeries out;
  out.plan = plan;
  out.image = load_volume<float>(plan, threads);
  return out;
}

DicomSeries read_series(const fs::path& folder, const SeriesOptions& opts) {
  return load_series(plan_series(folder, opts), opts.threads);
}

Vec3 localizer_to_world(const SeriesPlan& plan, const std::string& sop_uid, double x, double y, int frame) {
  for (const auto& e : plan.slice_map)
    if (e.sop_uid == sop_uid && e.frame == frame)
      return e.position + (x * e.col_spacing) * e.row_cos + (y * e.row_spacing) * e.col_cos;
  throw Error(ErrorCode::CorruptInput,
              "SOPInstanceUID " + sop_uid + " frame " + std::to_string(frame) + " is not in the series",
              plan.folder.string());
}

LocalizerPoint world_to_localizer(const SeriesPlan& plan, const Vec3& world) {
  LocalizerPoint best;
  double best_d = 1e300;
  for (const auto& e : plan.slice_map) {
    const Vec3 d = world - e.position;
    const Vec3 n = cross(e.row_cos, e.col_cos);
    const double dist = std::fabs(dot(d, n));
    if (dist < best_d) {
      best_d = dist;
      best = {e.sop_uid, e.frame, dot(d, e.row_cos) / e.col_spacing, dot(d, e.col_cos) / e.row_spacing, dist};
    }
  }
  if (best.sop_uid.empty())
    throw Error(ErrorCode::CorruptInput, "the series has no instance to place a point on", plan.folder.string());
  return best;
}

}  // namespace aneura
