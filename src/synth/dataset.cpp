#include "synth/dataset.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/parallel.hpp"
#include "io/csv.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura::synth {

namespace {

struct SeriesResult {
  std::string uid, modality, sex;
  std::string nifti, deface;  // unlabelled: the image and its deface mask, relative to the corpus root
  int age = 0;
  std::array<int, kNumLabels> labels{};
  std::vector<LocalizerRow> localizers;
  json truth;
};

json vec(const Vec3& v) { return {v[0], v[1], v[2]}; }

// The cowseg map of a series on its own converted grid (as the RSNA segmentations are).
void write_segmentation(const Subject& s, const VesselGrid& grid, const fs::path& series_dir, const fs::path& seg_dir,
                        const std::string& uid) {
  const DicomSeries ds = read_series(series_dir, SeriesOptions{{}, 0, 1, false, false});
  write_nifti(ds.image, seg_dir / (uid + ".nii"));
  Volume<float> labels(ds.image.geom);
  const auto& n = labels.geom.size;
  for (int64_t k = 0; k < n[2]; ++k)
    for (int64_t j = 0; j < n[1]; ++j)
      for (int64_t i = 0; i < n[0]; ++i)
        labels.at(i, j, k) =
            grid.vessel_at(s.to_subject(labels.geom.index_to_world({double(i), double(j), double(k)})));
  write_nifti(labels, seg_dir / (uid + "_cowseg.nii"));
}

SeriesResult make_series(const SynthOptions& o, int index, const fs::path& root) {
  std::seed_seq seq{static_cast<uint64_t>(o.seed), static_cast<uint64_t>(index), uint64_t{0xa5e07a}};
  std::mt19937_64 rng(seq);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  SeriesResult r;
  r.uid = series_uid(o.seed, index);
  const Subject subject =
      make_subject(rng, o.positive_fraction, o.cover_locations && index < kNumLabels - 1 ? index : -1);
  const Modality m = draw_modality(rng);
  const Appearance look = draw_appearance(m, rng);
  SeriesDesign d = draw_design(m, o.size, subject, o.hazards, rng);
  d.series_uid = r.uid;
  r.modality = modality_name(m);
  r.age = 20 + static_cast<int>(65 * u(rng));
  r.sex = u(rng) < 0.65 ? "Female" : "Male";
  const bool with_seg = u(rng) < o.segmentation_fraction;
  const uint64_t noise_seed = rng();
  // Small voxels for small vessels; a coarse grid is enough for tiny test data.
  const VesselGrid grid(subject, o.size == Size::Tiny ? 1.0 : 0.4);
  const fs::path dir = root / (o.unlabelled ? ".dicom" : "series") / r.uid;
  r.localizers = write_series(subject, grid, look, d, dir, noise_seed);
  if (o.unlabelled) {  // the same head as a BIDS NIfTI file, as OpenMind's corpus holds them
    char sub[16];
    std::snprintf(sub, sizeof sub, "sub-%04d", index + 1);
    const std::string stem = std::string(sub) + "_" + bids_suffix(r.modality);
    const fs::path rel = fs::path(sub) / "anat" / (stem + ".nii.gz");
    const fs::path rel_mask = fs::path(sub) / "anat" / (stem + "__Data") / "deface_mask.nii.gz";
    Volume<float> head = load_volume<float>(plan_series(dir));
    // Defaced, as OpenMind's images are: the face (the front eighth of the field of view, below its
    // middle) set to the image's minimum, and those voxels in the deface mask beside the image.
    Vec3 lo{1e9, 1e9, 1e9}, hi{-1e9, -1e9, -1e9};
    for (int c = 0; c < 8; ++c) {
      const Vec3 w =
          head.geom.index_to_world({(c & 1) ? head.geom.size[0] - 1.0 : 0.0, (c & 2) ? head.geom.size[1] - 1.0 : 0.0,
                                    (c & 4) ? head.geom.size[2] - 1.0 : 0.0});
      for (int a = 0; a < 3; ++a) lo[a] = std::min(lo[a], w[a]), hi[a] = std::max(hi[a], w[a]);
    }
    const float air = *std::min_element(head.data.begin(), head.data.end());
    Volume<uint8_t> removed(head.geom);
    for (int64_t k = 0; k < head.geom.size[2]; ++k)
      for (int64_t j = 0; j < head.geom.size[1]; ++j)
        for (int64_t i = 0; i < head.geom.size[0]; ++i) {
          const Vec3 w = head.geom.index_to_world({double(i), double(j), double(k)});  // LPS: anterior is -y
          const bool face = w[1] < lo[1] + (hi[1] - lo[1]) / 8 && w[2] < (lo[2] + hi[2]) / 2;
          removed.at(i, j, k) = face;
          if (face) head.at(i, j, k) = air;
        }
    fs::create_directories((root / rel_mask).parent_path());
    write_nifti(head, root / rel);
    write_nifti(removed, root / rel_mask);
    r.nifti = rel.string();
    r.deface = rel_mask.string();
    fs::remove_all(dir);
    r.localizers.clear();
  }
  for (const auto& a : subject.aneurysms) r.labels[a.column] = 1;
  r.labels[kPresentColumn] = subject.aneurysms.empty() ? 0 : 1;
  if (with_seg && !o.unlabelled) write_segmentation(subject, grid, dir, root / "segmentations", r.uid);

  json aneurysms = json::array();
  for (const auto& a : subject.aneurysms)
    aneurysms.push_back({{"centre_lps_mm", vec(a.centre_world)},
                         {"radius_mm", a.radius},
                         {"column", a.column},
                         {"location", label_names()[a.column]}});
  r.truth = {
      {"series_uid", r.uid},
      {"modality", r.modality},
      {"plane", d.plane},
      {"tilt_deg", d.tilt_deg},
      {"matrix", d.matrix},
      {"pixel_spacing_mm", d.pixel_spacing},
      {"slice_spacing_mm", d.slice_spacing},
      {"slices", d.slices},
      {"row_cos", vec(d.row_cos)},
      {"col_cos", vec(d.col_cos)},
      {"normal", vec(d.normal)},
      {"first_position_lps_mm", vec(d.first_position)},
      {"multiframe", d.multiframe},
      {"per_frame_groups", d.per_frame_groups},
      {"transfer_syntax", syntax_uid(d.syntax)},
      {"photometric", d.photometric},
      {"bits_stored", d.bits_stored},
      {"pixel_representation", d.pixel_representation},
      {"rescale", {d.slope, d.intercept}},
      {"hazards", {{"scout", d.scout}, {"missing_slice", d.missing_slice}, {"wrong_thickness", d.wrong_thickness}}},
      {"segmentation", with_seg},
      {"head_centre_lps_mm", vec(subject.translation)},
      {"head", head_to_json(subject)},
      {"aneurysms", aneurysms}};
  return r;
}

}  // namespace

std::string size_name(Size s) {
  switch (s) {
    case Size::Tiny:
      return "tiny";
    case Size::Small:
      return "small";
    case Size::Medium:
      return "medium";
    case Size::Full:
      return "full";
  }
  return "small";
}

Size parse_size(const std::string& s) {
  if (s == "tiny") return Size::Tiny;
  if (s == "small") return Size::Small;
  if (s == "medium") return Size::Medium;
  if (s == "full") return Size::Full;
  throw Error(ErrorCode::Usage, "--size must be tiny, small, medium or full, not '" + s + "'");
}

std::string bids_suffix(const std::string& modality) {
  if (modality == "CTA") return "ct";
  if (modality == "MRA") return "angio";
  if (modality == "MRI T2") return "T2w";
  return "ce-gd_T1w";
}

std::string series_uid(uint64_t seed, int index) {
  // Under the 1.2.826.0.1.3680043.8.498 root used for generated UIDs; seed and index make it unique.
  return "1.2.826.0.1.3680043.8.498." + std::to_string(seed % 1000000000ULL) + "." + std::to_string(index + 1);
}

void write_dataset(const SynthOptions& o, const std::function<void(int, int)>& progress) {
  if (o.n <= 0) throw Error(ErrorCode::Usage, "--n must be positive, not " + std::to_string(o.n));
  const fs::path out = fs::absolute(o.out).lexically_normal();
  const fs::path parent = out.parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    throw Error(ErrorCode::OutputFailed, "output folder's parent does not exist", parent.string());
  if (::access(parent.c_str(), W_OK) != 0)
    throw Error(ErrorCode::OutputFailed, "output folder's parent is not writable", parent.string());
  const bool exists = fs::exists(out, ec);
  if (exists && !fs::is_directory(out, ec))
    throw Error(ErrorCode::OutputFailed, "output exists and is not a folder", out.string());
  if (exists && !fs::is_empty(out, ec) && !o.force)
    throw Error(ErrorCode::OutputFailed, "output folder exists and is not empty (use --force to replace it)",
                out.string());

  const fs::path work = parent / ("." + out.filename().string() + ".partial" + std::to_string(::getpid()));
  fs::remove_all(work, ec);
  try {
    if (!o.unlabelled) {
      fs::create_directories(work / "series");
      fs::create_directories(work / "segmentations");
    }
    std::vector<SeriesResult> results(static_cast<size_t>(o.n));
    std::atomic<int> done{0};
    std::mutex mu;
    parallel_for(results.size(), o.threads, [&](size_t i) {
      results[i] = make_series(o, static_cast<int>(i), work);
      const int d = ++done;
      if (progress) {
        std::lock_guard<std::mutex> lock(mu);
        progress(d, o.n);
      }
    });

    std::ostringstream train, loc;
    train << "SeriesInstanceUID,PatientAge,PatientSex,Modality";
    for (const auto& name : label_names()) train << "," << csv_quote(name);
    train << "\n";
    loc << "SeriesInstanceUID,SOPInstanceUID,coordinates,location\n";
    json truth = {{"seed", o.seed}, {"size", size_name(o.size)}, {"series", json::array()}};
    for (const auto& r : results) {
      train << r.uid << "," << r.age << "," << r.sex << "," << csv_quote(r.modality);
      for (int v : r.labels) train << "," << v;
      train << "\n";
      for (const auto& l : r.localizers)
        loc << r.uid << "," << l.sop_uid << "," << csv_quote(coordinates_string(l)) << ","
            << csv_quote(label_names()[l.column]) << "\n";
      json t = r.truth;
      json locs = json::array();
      for (const auto& l : r.localizers)
        locs.push_back({{"sop_uid", l.sop_uid}, {"x", l.x}, {"y", l.y}, {"frame", l.frame}, {"column", l.column}});
      t["localizers"] = locs;
      truth["series"].push_back(t);
    }
    if (o.unlabelled) {
      fs::remove_all(work / ".dicom");
      truth["unlabelled"] = true;
      // OpenMind's index of its images (the columns preprocess reads; quality 1 is the best)
      std::ostringstream meta;
      meta << "dataset_id,image_path,anat_mask_path,anon_mask_path,modality,image_quality_score\n";
      for (const auto& r : results) {
        const std::string stem = fs::path(r.nifti).filename().string();
        const std::string suffix = stem.substr(stem.rfind('_') + 1, stem.find('.') - stem.rfind('_') - 1);
        meta << "synth," << csv_quote(r.nifti) << ",," << csv_quote(r.deface) << "," << suffix << ",1\n";
      }
      write_text_atomically(work / "openneuro_metadata.csv", meta.str());
    } else {
      write_text_atomically(work / "train.csv", train.str());
      write_text_atomically(work / "train_localizers.csv", loc.str());
    }
    write_text_atomically(work / "truth.json", truth.dump(1));

    if (exists) {
      const fs::path old = parent / ("." + out.filename().string() + ".old" + std::to_string(::getpid()));
      fs::rename(out, old);
      fs::rename(work, out);
      fs::remove_all(old, ec);
    } else {
      fs::rename(work, out);
    }
  } catch (const Error&) {
    fs::remove_all(work, ec);
    throw;
  } catch (const std::exception& e) {
    fs::remove_all(work, ec);
    throw Error(ErrorCode::OutputFailed, std::string("synth failed: ") + e.what(), out.string());
  }
}

}  // namespace aneura::synth
