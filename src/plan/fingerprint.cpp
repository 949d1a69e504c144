#include "plan/fingerprint.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/error.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - lo) * (v[hi] - v[lo]);
}

// Pooled statistics: percentiles as the median of the cases' own, mean and std of the union of
// all foreground voxels (from each case's count, mean and std).
ModalitySummary summarise(const std::vector<const CaseFingerprint*>& cs) {
  ModalitySummary s;
  s.cases = static_cast<int>(cs.size());
  if (cs.empty()) return s;
  s.dicom_modality = cs[0]->dicom_modality;
  for (int a = 0; a < 3; ++a) {
    std::vector<double> sp, sh;
    for (const auto* c : cs) sp.push_back(c->spacing_ras[a]), sh.push_back(double(c->shape_cropped[a]));
    s.spacing_median[a] = quantile(sp, 0.5);
    s.spacing_p10[a] = quantile(sp, 0.1);
    s.shape_cropped_median[a] = quantile(sh, 0.5);
  }
  std::vector<double> lo, hi;
  double n = 0, sum = 0, sq = 0;
  for (const auto* c : cs) {
    lo.push_back(c->p00_5);
    hi.push_back(c->p99_5);
    const double w = std::max(1.0, c->foreground_ml);
    n += w;
    sum += w * c->mean;
    sq += w * (c->std * c->std + c->mean * c->mean);
    s.positives += c->labels[kPresentColumn];
  }
  s.p00_5 = quantile(lo, 0.5);
  s.p99_5 = quantile(hi, 0.5);
  s.mean = sum / n;
  s.std = std::sqrt(std::max(0.0, sq / n - s.mean * s.mean));
  return s;
}

json summary_json(const ModalitySummary& s) {
  return {{"cases", s.cases},
          {"positives", s.positives},
          {"dicom_modality", s.dicom_modality},
          {"spacing_median_ras_mm", s.spacing_median},
          {"spacing_p10_ras_mm", s.spacing_p10},
          {"shape_cropped_median", s.shape_cropped_median},
          {"foreground", {{"p00_5", s.p00_5}, {"p99_5", s.p99_5}, {"mean", s.mean}, {"std", s.std}}}};
}

ModalitySummary summary_from(const json& j) {
  ModalitySummary s;
  s.cases = j.at("cases");
  s.positives = j.at("positives");
  s.dicom_modality = j.at("dicom_modality");
  s.spacing_median = j.at("spacing_median_ras_mm");
  s.spacing_p10 = j.at("spacing_p10_ras_mm");
  s.shape_cropped_median = j.at("shape_cropped_median");
  const json& f = j.at("foreground");
  s.p00_5 = f.at("p00_5");
  s.p99_5 = f.at("p99_5");
  s.mean = f.at("mean");
  s.std = f.at("std");
  return s;
}

}  // namespace

Fingerprint compute_fingerprint(const fs::path& work) {
  const fs::path cases = work / "cases";
  std::error_code ec;
  if (!fs::is_directory(cases, ec))
    throw Error(ErrorCode::InputNotFound, "no case cache (run aneura preprocess first)", cases.string());
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(cases, ec))
    if (fs::is_regular_file(e.path() / "case.json", ec)) files.push_back(e.path() / "case.json");
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(ErrorCode::NoDicom, "no finished case (case.json) in the case cache", cases.string());
  Fingerprint f;
  for (const auto& file : files) {
    std::ifstream in(file);
    try {
      const json c = json::parse(in);
      CaseFingerprint cf;
      cf.id = c.at("id");
      cf.modality = c.at("modality");
      cf.dicom_modality = c.at("dicom_modality");
      if (cf.modality.empty()) cf.modality = cf.dicom_modality;  // unlabelled series
      const json& g = c.at("source").at("geometry");
      const auto size = g.at("size").get<std::array<int64_t, 3>>();
      const auto spacing = g.at("spacing_mm").get<std::array<double, 3>>();
      const auto dir = g.at("direction_lps_columns").get<std::array<std::array<double, 3>, 3>>();
      cf.shape_source = size;
      for (int a = 0; a < 3; ++a) {  // RAS axis each source axis runs along (largest component)
        const auto& d = dir[a];
        const int w = static_cast<int>(
            std::max_element(d.begin(), d.end(), [](double x, double y) { return std::fabs(x) < std::fabs(y); }) -
            d.begin());
        cf.spacing_ras[w] = spacing[a];
      }
      cf.shape_cropped = c.at("source_box_size").get<std::array<int64_t, 3>>();
      const json& fg = c.at("foreground");
      cf.p00_5 = fg.at("p00_5");
      cf.p99_5 = fg.at("p99_5");
      cf.mean = fg.at("mean");
      cf.std = fg.at("std");
      cf.foreground_ml = fg.at("volume_ml");
      cf.labels = c.at("labels").get<std::array<int, kNumLabels>>();
      cf.labelled = c.at("labelled");
      cf.points = static_cast<int>(c.at("points").size());
      f.cases.push_back(cf);
    } catch (const json::exception& e) {
      throw Error(ErrorCode::CorruptInput, std::string("case.json is not a case description: ") + e.what(),
                  file.string());
    }
  }
  std::map<std::string, std::vector<const CaseFingerprint*>> by_mod, by_dicom;
  std::vector<const CaseFingerprint*> all;
  for (const auto& c : f.cases) {
    by_mod[c.modality].push_back(&c);
    by_dicom[c.dicom_modality].push_back(&c);
    all.push_back(&c);
    for (int k = 0; k < kNumLabels; ++k) f.label_counts[k] += c.labels[k];
    f.localizer_points += c.points;
  }
  for (const auto& [m, cs] : by_mod) f.by_modality[m] = summarise(cs);
  for (const auto& [m, cs] : by_dicom) f.by_dicom_modality[m] = summarise(cs);
  f.all = summarise(all);
  return f;
}

json to_json(const Fingerprint& f) {
  json cases = json::array();
  for (const auto& c : f.cases)
    cases.push_back(
        {{"id", c.id},
         {"modality", c.modality},
         {"dicom_modality", c.dicom_modality},
         {"spacing_ras_mm", c.spacing_ras},
         {"shape_source", c.shape_source},
         {"shape_cropped", c.shape_cropped},
         {"foreground",
          {{"p00_5", c.p00_5}, {"p99_5", c.p99_5}, {"mean", c.mean}, {"std", c.std}, {"volume_ml", c.foreground_ml}}},
         {"labels", c.labels},
         {"labelled", c.labelled},
         {"points", c.points}});
  json mods = json::object(), dicom = json::object(), counts = json::object();
  for (const auto& [m, s] : f.by_modality) mods[m] = summary_json(s);
  for (const auto& [m, s] : f.by_dicom_modality) dicom[m] = summary_json(s);
  for (int k = 0; k < kNumLabels; ++k) counts[label_names()[k]] = f.label_counts[k];
  return {{"version", 1},           {"all", summary_json(f.all)},
          {"by_modality", mods},    {"by_dicom_modality", dicom},
          {"label_counts", counts}, {"localizer_points", f.localizer_points},
          {"cases", cases}};
}

Fingerprint read_fingerprint(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw Error(ErrorCode::InputNotFound, "no fingerprint (run aneura fingerprint WORK first)", file.string());
  std::ifstream in(file);
  try {
    const json j = json::parse(in);
    if (j.at("version") != 1) throw Error(ErrorCode::CorruptInput, "unknown fingerprint version", file.string());
    Fingerprint f;
    f.all = summary_from(j.at("all"));
    for (const auto& [m, s] : j.at("by_modality").items()) f.by_modality[m] = summary_from(s);
    for (const auto& [m, s] : j.at("by_dicom_modality").items()) f.by_dicom_modality[m] = summary_from(s);
    for (int k = 0; k < kNumLabels; ++k) f.label_counts[k] = j.at("label_counts").at(label_names()[k]);
    f.localizer_points = j.at("localizer_points");
    for (const auto& c : j.at("cases")) {
      CaseFingerprint cf;
      cf.id = c.at("id");
      cf.modality = c.at("modality");
      cf.dicom_modality = c.at("dicom_modality");
      cf.spacing_ras = c.at("spacing_ras_mm");
      cf.shape_source = c.at("shape_source");
      cf.shape_cropped = c.at("shape_cropped");
      const json& fg = c.at("foreground");
      cf.p00_5 = fg.at("p00_5");
      cf.p99_5 = fg.at("p99_5");
      cf.mean = fg.at("mean");
      cf.std = fg.at("std");
      cf.foreground_ml = fg.at("volume_ml");
      cf.labels = c.at("labels");
      cf.labelled = c.at("labelled");
      cf.points = c.at("points");
      f.cases.push_back(cf);
    }
    return f;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("corrupt fingerprint: ") + e.what(), file.string());
  }
}

}  // namespace aneura
