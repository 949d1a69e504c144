#include "dataset/case_cache.hpp"

#include <itkMultiThreaderBase.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/timer.hpp"
#include "core/uid.hpp"
#include "harmonize/qa.hpp"
#include "harmonize/roi.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

json vec(const Vec3& v) { return {v[0], v[1], v[2]}; }

}  // namespace

void write_preprocess_params(const fs::path& work, const HarmonizeParams& p) {
  write_text_atomically(work / "preprocess.json", json{{"harmonize", harmonize_params_to_json(p)}}.dump(1) + "\n");
}

std::optional<HarmonizeParams> read_preprocess_params(const fs::path& work) {
  const fs::path file = work / "preprocess.json";
  std::ifstream in(file);
  if (!in) return std::nullopt;
  try {
    return harmonize_params_from_json(json::parse(in).at("harmonize"));
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad preprocess.json: ") + e.what(), file.string());
  } catch (const Error& e) {  // harmonize_params_from_json: a missing or mistyped key
    throw Error(e.code(), std::string("bad preprocess.json: ") + e.what(), file.string());
  }
}

fs::path case_dir(const fs::path& work, const std::string& id) {
  if (!is_valid_uid(id) && !is_safe_name(id))
    throw Error(ErrorCode::CorruptInput, "case id is neither a DICOM UID nor a safe name: '" + id.substr(0, 80) + "'",
                (work / "cases").string());
  return work / "cases" / id;
}

json geometry_json(const Geometry& g) {
  json dir = json::array();
  for (int c = 0; c < 3; ++c) dir.push_back(vec(g.axis(c)));
  return {{"size", g.size},
          {"spacing_mm", vec(g.spacing)},
          {"origin_lps_mm", vec(g.origin)},
          {"direction_lps_columns", dir},
          {"orientation", g.orientation_code()}};
}

json write_case(const fs::path& work, const std::string& id, const Harmonized& h, const Volume<int16_t>& labels,
                json meta, bool qa, const CaseExports& exports) {
  auto t = SteadyClock::now();
  const fs::path dir = case_dir(work, id);
  fs::create_directories(dir);
  if (qa) {
    fs::create_directories(work / "qa");
    write_triplanar_png(h.image, h.brain.data.empty() ? h.mask : h.brain, work / "qa" / (id + ".png"));
  }
  write_nifti(h.image, dir / "image.nii", NiftiLayout::Native);
  std::error_code ec;
  fs::remove(dir / "brain.nii.gz", ec);  // (a rerun over an older case)
  if (!h.brain.data.empty()) write_nifti(h.brain, dir / "brain.nii.gz", NiftiLayout::Native);
  fs::remove(dir / "deface.nii.gz", ec);
  if (!h.deface.data.empty()) write_nifti(h.deface, dir / "deface.nii.gz", NiftiLayout::Native);
  // A case without a labelled voxel (a negative series without a segmentation, an unlabelled
  // source; `labels` may then be empty) writes no label volume: readers take it as all background.
  const bool any_label = std::any_of(labels.data.begin(), labels.data.end(), [](int16_t v) { return v != 0; });
  fs::remove(dir / "labels.nii", ec);  // (a rerun over an older case)
  if (any_label) write_nifti(labels, dir / "labels.nii", NiftiLayout::Native);
  if (exports.any()) meta["exports"] = write_exports(h.image, meta.value("points", json::array()), dir, exports);
  meta["id"] = id;
  meta["steps"] = h.steps;
  meta["foreground"] = h.foreground;
  meta["source_box_size"] = {h.crop_box.hi[0] - h.crop_box.lo[0], h.crop_box.hi[1] - h.crop_box.lo[1],
                             h.crop_box.hi[2] - h.crop_box.lo[2]};
  meta["grid"] = geometry_json(h.image.geom);
  meta["image"] = {{"file", "image.nii"}, {"channels", h.channels}};
  meta["brain_file"] = h.brain.data.empty() ? json(nullptr) : json("brain.nii.gz");
  meta["deface_file"] = h.deface.data.empty() ? json(nullptr) : json("deface.nii.gz");
  meta["labels_file"]["file"] = any_label ? json("labels.nii") : json(nullptr);
  meta["labels_file"]["volumes"] = {"vessels: cowseg values 0..13", "aneurysm: location column + 1"};
  json& timing = meta["timing_s"];
  timing["write"] = seconds_since(t);
  t = SteadyClock::now();
  meta["roi_anchor"] = roi_anchor_to_json(find_roi_anchor(h.image));  // once here, not per training sample
  timing["roi_anchor"] = seconds_since(t);
  write_text_atomically(dir / "case.json", meta.dump(1, ' ', false, json::error_handler_t::replace));
  return timing;
}

bool case_done(const fs::path& work, const std::string& id) {
  std::error_code ec;
  return fs::is_regular_file(case_dir(work, id) / "case.json", ec);
}

void build_rsna_case(const RsnaDataset& d, const SeriesEntry& e, const fs::path& work, const CaseOptions& o, bool qa,
                     CaseOutcome& out) {
  const auto t0 = std::chrono::steady_clock::now();
  auto t = SteadyClock::now();
  json timing;  // seconds per stage
  SeriesOptions so;
  so.threads = 1;  // parallel over series, not inside one
  const SeriesPlan plan = plan_series(d.series_dir(e.uid), so);
  out.warnings = plan.warnings;
  timing["scan"] = seconds_since(t);
  // Exact int16 sources (most CT and MR) are decoded as int16: half the memory and time. The
  // decoded volume is gone once harmonized.
  auto decode_and_harmonize = [&](auto raw) {
    timing["decode"] = seconds_since(t);
    t = SteadyClock::now();
    Harmonized hz = harmonize(raw, plan.modality, o.harmonize);
    timing["harmonize"] = seconds_since(t);
    return hz;
  };
  t = SteadyClock::now();
  const Harmonized h = volume_fits_int16(plan) ? decode_and_harmonize(load_volume<int16_t>(plan, 1))
                                               : decode_and_harmonize(load_volume<float>(plan, 1));
  t = SteadyClock::now();
  out.warnings.insert(out.warnings.end(), h.warnings.begin(), h.warnings.end());
  const Geometry& grid = h.image.geom;

  // [0] vessel territories from the segmentation, when it exists and sits on the series' grid.
  // The label volume is made only when something is labelled (most series have neither a
  // segmentation nor a localizer): an empty one is all background.
  Volume<int16_t> labels;
  auto labelled = [&]() -> Volume<int16_t>& {
    if (labels.data.empty()) {
      labels = Volume<int16_t>(grid, 2);
      std::fill(labels.data.begin(), labels.data.end(), int16_t{0});
    }
    return labels;
  };
  const size_t n = static_cast<size_t>(grid.voxel_count());
  std::string vessel_source = "none";
  if (const auto cow = d.cowseg(e.uid)) {
    const Volume<float> seg = read_nifti(*cow);
    if (!same_grid_points(seg.geom, plan.geometry, 1.0)) {
      vessel_source = "skipped: grid of " + cow->filename().string() + " does not match the series";
      out.warnings.push_back(vessel_source);
    } else {
      const Volume<float> on_grid = resample_to(seg, grid, Interp::Nearest, 0);
      Volume<int16_t>& lab = labelled();
      for (size_t i = 0; i < n; ++i) lab.data[i] = static_cast<int16_t>(std::lround(on_grid.data[i]));
      vessel_source = cow->filename().string();
    }
  }
  // [1] aneurysm spheres at the localizer points.
  json points = json::array();
  auto it = d.localizers.find(e.uid);
  if (it != d.localizers.end()) {
    for (const auto& l : it->second) {
      Vec3 w;
      try {
        w = localizer_to_world(plan, l.sop_uid, l.x, l.y, l.frame);
      } catch (const Error& err) {
        out.warnings.push_back(std::string("localizer skipped: ") + err.what());
        continue;
      }
      const Vec3 ijk = grid.world_to_index(w);
      points.push_back({{"sop_uid", l.sop_uid},
                        {"frame", l.frame},
                        {"x", l.x},
                        {"y", l.y},
                        {"column", l.column},
                        {"location", label_names()[l.column]},
                        {"world_lps_mm", vec(w)},
                        {"voxel", vec(ijk)}});
      Volume<int16_t>& lab = labelled();
      const double r = o.sphere_radius_mm;
      int64_t lo[3], hi[3];
      for (int a = 0; a < 3; ++a) {
        const double reach = r / grid.spacing[a];
        lo[a] = std::max<int64_t>(0, static_cast<int64_t>(std::floor(ijk[a] - reach)));
        hi[a] = std::min<int64_t>(grid.size[a] - 1, static_cast<int64_t>(std::ceil(ijk[a] + reach)));
      }
      for (int64_t k = lo[2]; k <= hi[2]; ++k)
        for (int64_t j = lo[1]; j <= hi[1]; ++j)
          for (int64_t i = lo[0]; i <= hi[0]; ++i)
            if (norm(grid.index_to_world({double(i), double(j), double(k)}) - w) <= r)
              lab.data[n + lab.offset(i, j, k)] = static_cast<int16_t>(l.column + 1);
    }
  }

  timing["labels"] = seconds_since(t);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json c = {{"series_uid", e.uid},
            {"modality", e.modality},
            {"dicom_modality", plan.modality},
            {"labelled", e.labelled},
            {"labels", e.labels},
            {"label_names", label_names()},
            {"source",
             {{"kind", "rsna-dicom"},
              {"folder", plan.folder.string()},
              {"geometry", geometry_json(plan.geometry)},
              {"plane", plan.plane},
              {"multiframe", plan.multiframe},
              {"images", plan.slice_map.size()},
              {"dropped", plan.dropped}}},
            {"labels_file", {{"vessel_source", vessel_source}, {"sphere_radius_mm", o.sphere_radius_mm}}},
            {"points", points},
            {"warnings", out.warnings},
            {"seconds", secs},
            {"timing_s", timing}};
  out.timing = write_case(work, e.uid, h, labels, c, qa, o.exports);
}

NyulModel nyul_for_dataset(const RsnaDataset& d, const fs::path& work, const CaseOptions& o, int max_series) {
  const fs::path file = work / "nyul.json";
  std::error_code ec;
  NyulModel m = o.harmonize.nyul;
  if (fs::exists(file, ec)) {
    std::ifstream in(file);
    try {
      const json j = json::parse(in);
      m.percentiles = j.at("percentiles").get<std::vector<double>>();
      m.standard = j.at("standard").get<std::vector<double>>();
      m.scale_min = j.at("scale_min");
      m.scale_max = j.at("scale_max");
    } catch (const std::exception& e) {
      throw Error(ErrorCode::CorruptInput, std::string("cannot read the Nyul landmarks: ") + e.what(), file.string());
    }
    return m;
  }
  HarmonizeParams hp = o.harmonize;
  hp.mr_normalization = "none";
  std::vector<std::vector<double>> landmarks;
  for (const auto& e : d.series) {
    if (static_cast<int>(landmarks.size()) >= max_series) break;
    if (!e.labelled || e.modality.rfind("MR", 0) != 0) continue;
    try {
      const SeriesPlan plan = plan_series(d.series_dir(e.uid));
      if (plan.modality != "MR") continue;
      const Harmonized h = harmonize(load_volume<float>(plan), plan.modality, hp);
      landmarks.push_back(percentiles(h.image, m.percentiles, h.brain.data.empty() ? &h.mask : &h.brain));
    } catch (const Error&) {
      continue;  // a series that cannot be read is reported by the batch itself
    }
  }
  if (landmarks.empty())
    throw Error(ErrorCode::Usage, "--mr-norm nyul needs labelled MR series to fit on", d.root.string());
  m = nyul_fit_landmarks(landmarks, m);
  fs::create_directories(work, ec);
  write_text_atomically(file, json{{"percentiles", m.percentiles},
                                   {"standard", m.standard},
                                   {"scale_min", m.scale_min},
                                   {"scale_max", m.scale_max},
                                   {"fitted_on_series", landmarks.size()}}
                                  .dump(1, ' ', false, json::error_handler_t::replace));
  return m;
}

fs::path manifest_file(const fs::path& work, const Shard& shard) { return shard_file(work / "manifest.jsonl", shard); }

PreprocessSummary run_case_jobs(const std::vector<CaseJob>& all_jobs, const fs::path& work, unsigned workers,
                                int qa_cases, const std::function<void(int, int, const CaseOutcome&)>& progress,
                                const Shard& shard) {
  std::error_code ec;
  fs::create_directories(work / "cases", ec);
  if (ec) throw Error(ErrorCode::OutputFailed, "cannot create the work folder: " + ec.message(), work.string());
  const fs::path manifest_path = manifest_file(work, shard);
  std::ofstream manifest(manifest_path, std::ios::app);
  if (!manifest) throw Error(ErrorCode::OutputFailed, "cannot write the manifest", manifest_path.string());
  std::vector<std::string> ids;
  for (const auto& j : all_jobs) ids.push_back(j.id);
  const auto mine = shard.select(ids);
  const std::set<std::string> owned(mine.begin(), mine.end());
  std::vector<CaseJob> jobs;
  for (const auto& j : all_jobs)
    if (owned.count(j.id)) jobs.push_back(j);
  // Cases run in parallel; each uses one ITK thread so the workers do not oversubscribe cores.
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(1);
  PreprocessSummary sum;
  std::mutex mu;
  std::atomic<int> done{0};
  const int total = static_cast<int>(jobs.size());
  // QA sample: the ids with the smallest hashes (random-looking, stable across runs).
  std::vector<std::pair<size_t, std::string>> ranked;
  for (const auto& j : all_jobs) ranked.emplace_back(std::hash<std::string>{}(j.id), j.id);
  std::sort(ranked.begin(), ranked.end());
  std::set<std::string> qa;
  for (int i = 0; i < std::min<int>(qa_cases, static_cast<int>(ranked.size())); ++i) qa.insert(ranked[i].second);
  parallel_for(jobs.size(), workers, [&](size_t i) {
    const CaseJob& job = jobs[i];
    CaseOutcome r;
    r.id = job.id;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      if (case_done(work, job.id)) {
        r.status = "skipped";
        r.reason = "already built";
      } else {
        job.build(r, qa.count(job.id) > 0);
        r.status = "ok";
      }
    } catch (const Error& err) {
      r.status = "failed";
      r.reason = std::string(err.what()) + (err.where().empty() ? "" : " (" + err.where() + ")");
    } catch (const std::exception& err) {
      r.status = "failed";
      r.reason = std::string("internal: ") + err.what();
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard<std::mutex> lock(mu);
    (r.status == "ok" ? sum.ok : r.status == "skipped" ? sum.skipped : sum.failed)++;
    json line = {{"id", r.id},
                 {"status", r.status},
                 {"reason", r.reason},
                 {"seconds", r.seconds},
                 {"warnings", r.warnings.size()},
                 {"peak_rss_mb", peak_rss_mb()}};
    if (!r.timing.is_null()) line["timing_s"] = r.timing;
    manifest << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    manifest.flush();
    if (progress) progress(++done, total, r);
  });
  return sum;
}

PreprocessSummary preprocess_dataset(const RsnaDataset& d, const fs::path& work, const CaseOptions& o, unsigned workers,
                                     const std::function<void(int, int, const CaseOutcome&)>& progress) {
  std::vector<CaseJob> jobs;
  for (const auto& e : d.series)
    jobs.push_back(
        {e.uid, [&d, &e, &work, &o](CaseOutcome& out, bool qa) { build_rsna_case(d, e, work, o, qa, out); }});
  return run_case_jobs(jobs, work, workers, o.qa_cases, progress);
}

}  // namespace aneura
