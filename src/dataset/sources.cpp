#include "dataset/sources.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/uid.hpp"
#include "harmonize/resample.hpp"
#include "io/csv.hpp"
#include "io/nifti.hpp"
#include "io/png.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A case id from a relative path: [A-Za-z0-9._-] only, '/' -> '_', at most 128 characters (a hash
// keeps long names unique).
std::string safe_id(const std::string& prefix, const std::string& rel) {
  std::string id = prefix;
  for (char c : rel) id += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  if (id.size() > 128) id = id.substr(0, 110) + "-" + std::to_string(std::hash<std::string>{}(rel) % 100000000000ULL);
  if (!is_safe_name(id)) throw Error(ErrorCode::CorruptInput, "cannot make a safe case id from '" + rel + "'");
  return id;
}

json vec(const Vec3& v) { return {v[0], v[1], v[2]}; }

// Harmonizes an unlabelled volume and writes its case (labels all 0) into the job's outcome (its
// warnings, with harmonization's, go into case.json too). `deface` (optional, on the image's grid):
// the voxels a defacing removed, kept on the case's grid (deface.nii.gz) so that pre-training does
// not learn to draw the zeros of a removed face. `modality`: the case's, where the source names it
// (a BIDS suffix); else the DICOM family.
void unlabelled_case(const Volume<float>& image, const std::string& dicom_modality, CaseOutcome& out,
                     const fs::path& work, const CaseOptions& o, bool qa, json source,
                     const Volume<uint8_t>* anatomy = nullptr, const Volume<uint8_t>* deface = nullptr,
                     const std::string& modality = "") {
  Harmonized h = harmonize(image, dicom_modality, o.harmonize, anatomy);
  source["geometry"] = geometry_json(image.geom);  // the source's grid, which the fingerprint reads
  if (deface) {
    Volume<float> m(deface->geom);
    std::copy(deface->data.begin(), deface->data.end(), m.data.begin());
    Geometry grid = h.image.geom;
    const Volume<float> on_grid = resample_to(m, grid, Interp::Nearest, 0.f);
    h.deface = Volume<uint8_t>(grid);
    size_t n = 0;
    for (size_t i = 0; i < h.deface.data.size(); ++i) n += h.deface.data[i] = on_grid.data[i] > 0.5f;
    source["deface_voxels"] = n;
    const auto head = static_cast<size_t>(std::count(h.mask.data.begin(), h.mask.data.end(), uint8_t(1)));
    if (n > head / 2)
      h.warnings.push_back("the deface mask covers more voxels than half the head (" + std::to_string(n) + " of " +
                           std::to_string(head) + "): it should mark the voxels the defacing removed");
    if (n == 0) h.deface = Volume<uint8_t>();  // nothing removed inside the case's box
  }
  const Volume<int16_t> labels;  // none: all background
  json c = {{"modality", modality.empty() ? dicom_modality : modality},
            {"dicom_modality", dicom_modality},
            {"labelled", false},
            {"labels", std::vector<int>(kNumLabels, 0)},
            {"label_names", label_names()},
            {"source", source},
            {"labels_file", {{"vessel_source", "none"}, {"sphere_radius_mm", o.sphere_radius_mm}}},
            {"points", json::array()}};
  out.warnings.insert(out.warnings.end(), h.warnings.begin(), h.warnings.end());
  c["warnings"] = out.warnings;
  write_case(work, out.id, h, labels, c, qa, o.exports);
}

// A mask (anatomy or deface) for an image: non-zero voxels, on the image's grid. Empty, with a
// warning, when the file is on another grid.
Volume<uint8_t> read_mask(const fs::path& file, const Geometry& image_grid, const char* what,
                          std::vector<std::string>& warnings) {
  const Volume<float> m = read_nifti(file);
  if (m.geom.size != image_grid.size) {
    warnings.push_back(std::string(what) + " " + file.string() + " is on another grid than the image: not used");
    return {};
  }
  Volume<uint8_t> mask(image_grid);
  for (size_t i = 0; i < mask.data.size(); ++i) mask.data[i] = m.data[i] > 0.5f;
  return mask;
}

// OpenMind's openneuro_metadata.csv at the corpus root, by image path relative to the root: the
// masks' paths, the modality (its BIDS suffix) and the image quality score. Paths in the file may
// start with the root's own folder name; an empty or missing column leaves that field empty.
struct OpenMindRow {
  fs::path anatomy, deface;
  std::string modality, quality, dataset;
  std::vector<std::string> refused;  // mask paths that leave the corpus (absolute or through ..): not read
};

std::map<std::string, OpenMindRow> read_openmind_metadata(const fs::path& root) {
  std::map<std::string, OpenMindRow> rows;
  const fs::path file = root / "openneuro_metadata.csv";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return rows;
  const CsvTable t = read_csv(file);
  const size_t image = t.column("image_path", file);
  auto optional = [&](const char* name) {
    const auto it = std::find(t.header.begin(), t.header.end(), name);
    return it == t.header.end() ? t.header.size() : static_cast<size_t>(it - t.header.begin());
  };
  const size_t anat = optional("anat_mask_path"), anon = optional("anon_mask_path"), mod = optional("modality"),
               iqs = optional("image_quality_score"), ds = optional("dataset_id");
  const std::string own = root.filename().empty() ? root.parent_path().filename().string() : root.filename().string();
  // A path from the file, relative to the root; empty when it is empty or leaves the root (a name
  // from a file never reaches outside the corpus).
  auto relative = [&](const std::string& p, std::vector<std::string>* refused = nullptr) -> fs::path {
    if (p.empty()) return {};
    fs::path r = fs::path(p).lexically_normal();
    if (!r.empty() && *r.begin() == own && !fs::exists(root / r, ec)) r = r.lexically_relative(own);
    if (r.is_absolute() || r.empty() || *r.begin() == "..") {
      if (refused) refused->push_back(p);
      return {};
    }
    return r;
  };
  for (const auto& row : t.rows) {
    auto field = [&](size_t c) { return c < row.size() ? row[c] : std::string(); };
    OpenMindRow r;
    const fs::path a = relative(field(anat), &r.refused), d = relative(field(anon), &r.refused);
    if (!a.empty()) r.anatomy = root / a;
    if (!d.empty()) r.deface = root / d;
    r.modality = field(mod);
    r.quality = field(iqs);
    r.dataset = field(ds);
    rows[relative(field(image)).string()] = r;
  }
  return rows;
}

}  // namespace

SourceKind detect_source(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error(ErrorCode::InputNotFound, "source folder not found", root.string());
  if (fs::exists(root / "train.csv", ec) || fs::is_directory(root / "series", ec)) return SourceKind::Rsna;
  if (fs::exists(root / "DL_info.csv", ec)) return SourceKind::DeepLesion;
  return SourceKind::Nifti;
}

std::vector<CaseJob> nifti_jobs(const fs::path& root, const fs::path& work, const CaseOptions& o, size_t* left_out) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    // OpenMind keeps each image's masks in a sibling folder <image>__Data/: not images themselves
    if (it->is_directory(ec) && ends_with(name, "__Data")) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && (ends_with(name, ".nii") || ends_with(name, ".nii.gz"))) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  const std::map<std::string, OpenMindRow> metadata = read_openmind_metadata(root);
  std::set<fs::path> masks;  // the metadata's masks, wherever they lie, are not images either
  for (const auto& [image, row] : metadata)
    for (const auto& m : {row.anatomy, row.deface})
      if (!m.empty()) masks.insert(m.lexically_normal());
  files.erase(std::remove_if(files.begin(), files.end(),
                             [&](const fs::path& f) { return masks.count(f.lexically_normal()) > 0; }),
              files.end());
  if (files.empty()) throw Error(ErrorCode::NoDicom, "no .nii or .nii.gz file found", root.string());
  std::vector<CaseJob> jobs;
  for (const auto& f : files) {
    std::string rel = fs::relative(f, root).string();
    const auto listed = metadata.find(rel);
    rel = rel.substr(0, rel.size() - (ends_with(rel, ".nii.gz") ? 7 : 4));
    const std::string base = f.filename().string();
    const std::string stem = base.substr(0, base.find('.'));
    std::string suffix = stem.substr(stem.rfind('_') == std::string::npos ? 0 : stem.rfind('_') + 1);
    // OpenMind's masks of this image: the metadata's paths, else <image>__Data/{fb,deface}_mask.nii.gz
    const fs::path data = f.parent_path() / (fs::path(rel).filename().string() + "__Data");
    fs::path anatomy = data / "fb_mask.nii.gz", deface = data / "deface_mask.nii.gz";
    json source = {{"kind", "nifti"}, {"file", f.string()}};
    std::vector<std::string> notes;
    if (listed != metadata.end()) {
      const OpenMindRow& m = listed->second;
      for (const auto& p : m.refused)
        notes.push_back("openneuro_metadata.csv names a mask outside the corpus (" + p.substr(0, 200) + "): not read");
      if (!m.anatomy.empty()) anatomy = m.anatomy;
      if (!m.deface.empty()) deface = m.deface;
      if (!m.modality.empty()) suffix = m.modality;
      json meta = {{"file", (root / "openneuro_metadata.csv").string()}};
      if (!m.dataset.empty()) meta["dataset_id"] = m.dataset;
      char* end = nullptr;
      const double q = std::strtod(m.quality.c_str(), &end);
      if (!m.quality.empty() && end && *end == 0) {
        meta["image_quality_score"] = q;
        if (o.max_image_quality_score > 0 && q > o.max_image_quality_score) {
          if (left_out) ++*left_out;
          continue;
        }
      }
      source["openneuro_metadata"] = meta;
    }
    source["bids_suffix"] = suffix;
    // the modalities the RSNA labels name, where the suffix says which: time-of-flight angiography,
    // T2, contrast-enhanced T1 (a configuration that learns from some modalities only pre-trains on
    // those); else the DICOM family, CT or MR
    const std::string named = suffix == "angio"                                           ? "MRA"
                              : suffix == "T2w"                                           ? "MRI T2"
                              : suffix == "T1w" && stem.find("_ce-") != std::string::npos ? "MRI T1post"
                                                                                          : "";
    if (!fs::exists(anatomy, ec)) anatomy.clear();
    if (!fs::exists(deface, ec)) deface.clear();
    const std::string modality = (suffix == "ct" || suffix == "CT") ? "CT" : "MR";
    jobs.push_back({safe_id("nii-", rel),
                    [f, modality, named, anatomy, deface, source, notes, work, o](CaseOutcome& out, bool qa) mutable {
                      out.warnings.insert(out.warnings.end(), notes.begin(), notes.end());
                      const Volume<float> v = read_nifti(f);
                      if (v.volumes > 1) out.warnings.push_back("4D NIfTI: first volume used");
                      Volume<float> first(v.geom);
                      std::copy(v.data.begin(), v.data.begin() + first.data.size(), first.data.begin());
                      Volume<uint8_t> anatomy_mask, deface_mask;
                      if (!anatomy.empty()) anatomy_mask = read_mask(anatomy, first.geom, "anatomy mask", out.warnings);
                      if (!anatomy_mask.data.empty()) source["anatomy_mask"] = anatomy.string();
                      if (!deface.empty()) deface_mask = read_mask(deface, first.geom, "deface mask", out.warnings);
                      if (!deface_mask.data.empty()) source["deface_mask"] = deface.string();
                      unlabelled_case(first, modality, out, work, o, qa, source,
                                      anatomy_mask.data.empty() ? nullptr : &anatomy_mask,
                                      deface_mask.data.empty() ? nullptr : &deface_mask, named);
                    }});
  }
  return jobs;
}

Volume<float> load_deeplesion_series(const fs::path& folder, const Vec3& spacing) {
  std::vector<std::pair<int, fs::path>> slices;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string name = e.path().filename().string();
    if (!ends_with(name, ".png")) continue;
    char* end = nullptr;
    const long n = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || std::string(end) != ".png")
      throw Error(ErrorCode::CorruptInput, "DeepLesion slice name is not <number>.png", e.path().string());
    slices.emplace_back(static_cast<int>(n), e.path());
  }
  if (slices.empty()) throw Error(ErrorCode::NoDicom, "no PNG slices", folder.string());
  std::sort(slices.begin(), slices.end());
  const Gray16Image first = read_png_gray16(slices[0].second);
  Geometry g;
  g.size = {first.width, first.height, static_cast<int64_t>(slices.size())};
  g.spacing = spacing;
  g.direction = {{{1, 0, 0}, {0, 1, 0}, {0, 0, -1}}};  // LPS in-plane; slices towards the feet
  Volume<float> v(g);
  const size_t px = static_cast<size_t>(first.width) * first.height;
  for (size_t k = 0; k < slices.size(); ++k) {
    const Gray16Image s = k == 0 ? first : read_png_gray16(slices[k].second);
    if (s.width != first.width || s.height != first.height)
      throw Error(ErrorCode::CorruptInput, "slice size differs from the first slice", slices[k].second.string());
    for (size_t i = 0; i < px; ++i) v.data[k * px + i] = static_cast<float>(static_cast<int>(s.pixels[i]) - 32768);
  }
  return v;
}

std::vector<CaseJob> deeplesion_jobs(const fs::path& root, const fs::path& work, const CaseOptions& o) {
  const fs::path info = root / "DL_info.csv";
  const CsvTable t = read_csv(info);
  const size_t c_file = t.column("File_name", info), c_spacing = t.column("Spacing_mm_px_", info);
  // One spacing per series folder (the file name minus its last "_<slice>.png").
  std::map<std::string, Vec3> series;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const std::string& file = t.rows[r][c_file];
    const size_t cut = file.rfind('_');
    if (cut == std::string::npos) continue;
    const std::string folder = file.substr(0, cut);
    Vec3 s{0, 0, 0};
    if (std::sscanf(t.rows[r][c_spacing].c_str(), "%lf, %lf, %lf", &s[0], &s[1], &s[2]) != 3 ||
        !(s[0] > 0 && s[1] > 0 && s[2] > 0))
      throw Error(ErrorCode::CorruptInput, "Spacing_mm_px_ must be 'x, y, z' in mm",
                  info.string() + ":" + std::to_string(t.line_numbers[r]));
    series[folder] = s;
  }
  std::vector<CaseJob> jobs;
  for (const auto& [folder, spacing] : series) {
    if (!is_safe_name(folder))
      throw Error(ErrorCode::CorruptInput, "unsafe series folder name '" + folder + "'", info.string());
    const fs::path dir = root / "Images_png" / folder;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;  // listed in the CSV but not downloaded
    jobs.push_back({safe_id("dl-", folder), [dir, spacing, work, o](CaseOutcome& out, bool qa) {
                      unlabelled_case(load_deeplesion_series(dir, spacing), "CT", out, work, o, qa,
                                      {{"kind", "deeplesion"}, {"folder", dir.string()}, {"spacing_mm", vec(spacing)}});
                    }});
  }
  if (jobs.empty())
    throw Error(ErrorCode::NoDicom, "no DeepLesion series folder found under Images_png", root.string());
  return jobs;
}

}  // namespace aneura
