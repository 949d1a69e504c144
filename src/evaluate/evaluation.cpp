#include "evaluate/evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "core/error.hpp"
#include "io/csv.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

std::array<size_t, kNumLabels> label_columns(const CsvTable& t, const fs::path& file) {
  std::array<size_t, kNumLabels> idx{};
  for (int c = 0; c < kNumLabels; ++c) idx[c] = t.column(label_names()[c], file);
  return idx;
}

std::string where(const fs::path& file, size_t line) { return file.string() + ":" + std::to_string(line); }

}  // namespace

ProbabilityTable read_predictions(const fs::path& file) {
  const CsvTable t = read_csv(file);
  const size_t uid = t.column("SeriesInstanceUID", file);
  const auto idx = label_columns(t, file);
  ProbabilityTable out;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    std::array<double, kNumLabels> p{};
    for (int c = 0; c < kNumLabels; ++c) {
      const std::string& s = row[idx[c]];
      double v = NAN;
      try {
        size_t used = 0;
        v = std::stod(s, &used);
        if (used != s.size()) v = NAN;
      } catch (const std::exception&) {}
      if (!(v >= 0 && v <= 1))
        throw Error(ErrorCode::CorruptInput, "'" + label_names()[c] + "' is '" + s + "', not a probability in [0, 1]",
                    where(file, t.line_numbers[r]));
      p[c] = v;
    }
    if (!out.emplace(row[uid], p).second)
      throw Error(ErrorCode::CorruptInput, "series " + row[uid] + " predicted twice", where(file, t.line_numbers[r]));
  }
  return out;
}

TruthTable read_truth(const fs::path& file) {
  const CsvTable t = read_csv(file);
  const size_t uid = t.column("SeriesInstanceUID", file);
  const auto idx = label_columns(t, file);
  TruthTable out;
  for (size_t r = 0; r < t.rows.size(); ++r) {
    std::array<int, kNumLabels> l{};
    for (int c = 0; c < kNumLabels; ++c) {
      const std::string& s = t.rows[r][idx[c]];
      if (s != "0" && s != "1")
        throw Error(ErrorCode::CorruptInput, "'" + label_names()[c] + "' is '" + s + "', not 0 or 1",
                    where(file, t.line_numbers[r]));
      l[c] = s == "1";
    }
    if (!out.emplace(t.rows[r][uid], l).second)
      throw Error(ErrorCode::CorruptInput, "series " + t.rows[r][uid] + " listed twice",
                  where(file, t.line_numbers[r]));
  }
  return out;
}

std::map<std::string, std::string> read_modalities(const fs::path& file) {
  const CsvTable t = read_csv(file);
  std::map<std::string, std::string> out;
  const auto& h = t.header;
  const auto m = std::find(h.begin(), h.end(), "Modality");
  if (m == h.end()) return out;
  const size_t uid = t.column("SeriesInstanceUID", file), col = static_cast<size_t>(m - h.begin());
  for (const auto& row : t.rows)
    if (!row[col].empty()) out[row[uid]] = row[col];
  return out;
}

std::vector<GroupScore> scores_by_group(const ProbabilityTable& pred, const TruthTable& truth,
                                        const std::map<std::string, std::string>& group_of) {
  std::map<std::string,
           std::pair<std::vector<std::array<int, kNumLabels>>, std::vector<std::array<double, kNumLabels>>>>
      groups;
  for (const auto& [uid, l] : truth) {
    const auto g = group_of.find(uid);
    const auto p = pred.find(uid);
    if (g == group_of.end() || p == pred.end()) continue;
    groups[g->second].first.push_back(l);
    groups[g->second].second.push_back(p->second);
  }
  std::vector<GroupScore> out;
  for (const auto& [name, tp] : groups) {
    GroupScore g;
    g.group = name;
    g.series = static_cast<int>(tp.first.size());
    for (const auto& l : tp.first) g.positives += l[kPresentColumn];
    const CompetitionScore s = competition_score(tp.first, tp.second);
    g.present_auc = s.auc[kPresentColumn];
    g.defined_columns_score = defined_columns_score(s);
    out.push_back(g);
  }
  return out;
}

Evaluation evaluate(const ProbabilityTable& pred, const TruthTable& truth) {
  std::vector<std::string> missing, extra;
  for (const auto& [uid, l] : truth)
    if (!pred.count(uid)) missing.push_back(uid);
  for (const auto& [uid, p] : pred)
    if (!truth.count(uid)) extra.push_back(uid);
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 5) s += ", ... (" + std::to_string(v.size()) + " in all)";
    return s;
  };
  if (!missing.empty())
    throw Error(ErrorCode::CorruptInput,
                "no prediction for " + std::to_string(missing.size()) + " series: " + list(missing));
  if (!extra.empty())
    throw Error(ErrorCode::CorruptInput,
                std::to_string(extra.size()) + " predicted series not in the truth: " + list(extra));
  std::vector<std::array<int, kNumLabels>> t;
  std::vector<std::array<double, kNumLabels>> p;
  Evaluation e;
  for (const auto& [uid, l] : truth) {
    t.push_back(l);
    p.push_back(pred.at(uid));
    for (int c = 0; c < kNumLabels; ++c) e.positives[c] += l[c];
  }
  e.series = t.size();
  e.score = competition_score(t, p);
  return e;
}

Localization localize(const std::map<std::string, std::vector<Vec3>>& truth,
                      const std::map<std::string, std::vector<Vec3>>& predicted, double radius_mm) {
  Localization L;
  L.radius_mm = radius_mm;
  const std::vector<Vec3> none;
  std::set<std::string> series;
  for (const auto& [uid, pts] : truth) series.insert(uid);
  for (const auto& [uid, pts] : predicted) series.insert(uid);
  for (const auto& uid : series) {
    const auto& tp = truth.count(uid) ? truth.at(uid) : none;
    const auto& pp = predicted.count(uid) ? predicted.at(uid) : none;
    auto near = [&](const Vec3& a, const std::vector<Vec3>& set) {
      for (const auto& b : set)
        if (norm(a - b) <= radius_mm) return true;
      return false;
    };
    for (const auto& a : tp) {
      ++L.true_points;
      L.hits += near(a, pp);
    }
    for (const auto& b : pp) {
      ++L.predicted_points;
      L.predicted_hits += near(b, tp);
    }
    ++L.series;
  }
  return L;
}

VesselDice vessel_dice(const Volume<float>& truth, const Volume<float>& prediction) {
  std::array<double, 14> inter{}, t_count{}, p_count{};
  VesselDice d;
  const auto& g = truth.geom;
  const auto& pg = prediction.geom;
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 q = pg.world_to_index(g.index_to_world({double(i), double(j), double(k)}));
        int64_t n[3];
        bool inside = true;
        for (int a = 0; a < 3; ++a) {
          n[a] = static_cast<int64_t>(std::lround(q[a]));
          inside = inside && n[a] >= 0 && n[a] < pg.size[a];
        }
        if (!inside) continue;
        ++d.voxels;
        const int t = std::clamp(static_cast<int>(std::lround(truth.at(i, j, k))), 0, 13);
        const int p = std::clamp(static_cast<int>(std::lround(prediction.at(n[0], n[1], n[2]))), 0, 13);
        t_count[t] += 1;
        p_count[p] += 1;
        if (t == p) inter[t] += 1;
      }
  double fg_inter = 0, fg_t = 0, fg_p = 0, sum = 0;
  int classes = 0;
  for (int c = 1; c < 14; ++c) {
    fg_t += t_count[c];
    fg_p += p_count[c];
    if (t_count[c] + p_count[c] > 0) sum += 2 * inter[c] / (t_count[c] + p_count[c]), ++classes;
  }
  // vessel vs background: a voxel that is a vessel in both, whatever the territory
  fg_inter = d.voxels - t_count[0] - p_count[0] + inter[0];
  d.foreground = fg_t + fg_p > 0 ? 2 * fg_inter / (fg_t + fg_p) : 1.0;
  d.territories = classes ? sum / classes : 1.0;
  return d;
}

std::vector<SizeBand> present_auc_by_radius(const ProbabilityTable& pred, const TruthTable& truth,
                                            const std::map<std::string, double>& largest_radius_mm,
                                            const std::vector<double>& edges_mm) {
  constexpr int present = kNumLabels - 1;
  std::vector<double> negatives;
  for (const auto& [uid, l] : truth)
    if (!l[present] && pred.count(uid)) negatives.push_back(pred.at(uid)[present]);
  std::vector<SizeBand> bands;
  for (size_t b = 0; b < edges_mm.size(); ++b) {
    SizeBand band;
    band.lo_mm = edges_mm[b];
    band.hi_mm = b + 1 < edges_mm.size() ? edges_mm[b + 1] : INFINITY;
    std::vector<int> t(negatives.size(), 0);
    std::vector<double> score = negatives;
    for (const auto& [uid, l] : truth) {
      const auto r = largest_radius_mm.find(uid);
      if (!l[present] || !pred.count(uid) || r == largest_radius_mm.end() || r->second < band.lo_mm ||
          !(r->second < band.hi_mm))
        continue;
      t.push_back(1);
      score.push_back(pred.at(uid)[present]);
      ++band.positives;
    }
    band.negatives = static_cast<int>(negatives.size());
    band.auc = roc_auc(t, score);
    bands.push_back(band);
  }
  return bands;
}

std::map<std::string, double> read_synthetic_radii(const fs::path& truth_json) {
  std::ifstream in(truth_json);
  if (!in) throw Error(ErrorCode::InputNotFound, "cannot read the synthetic truth", truth_json.string());
  std::map<std::string, double> out;
  try {
    const json j = json::parse(in);
    for (const auto& s : j.at("series")) {
      double largest = -1;
      for (const auto& a : s.at("aneurysms")) largest = std::max(largest, a.at("radius_mm").get<double>());
      if (largest >= 0) out[s.at("series_uid").get<std::string>()] = largest;
    }
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad synthetic truth: ") + e.what(), truth_json.string());
  }
  return out;
}

std::optional<VesselDice> mean_vessel_dice(const Evaluation& e) {
  if (e.vessels.empty()) return std::nullopt;
  VesselDice m;
  for (const auto& [uid, d] : e.vessels) {
    m.foreground += d.foreground / static_cast<double>(e.vessels.size());
    m.territories += d.territories / static_cast<double>(e.vessels.size());
    m.voxels += d.voxels;
  }
  return m;
}

json to_json(const Evaluation& e) {
  json auc = json::object();
  for (int c = 0; c < kNumLabels; ++c)
    auc[label_names()[c]] = {{"auc", e.score.auc[c] ? json(*e.score.auc[c]) : json(nullptr)},
                             {"positives", e.positives[c]}};
  const auto partial = defined_columns_score(e.score);
  json j = {{"series", e.series},
            {"score", e.score.score ? json(*e.score.score) : json(nullptr)},
            {"defined_columns_score", partial ? json(*partial) : json(nullptr)},
            {"columns", auc},
            {"undefined_columns", e.score.undefined}};
  if (e.localization) {
    const auto& l = *e.localization;
    j["localization"] = {
        {"radius_mm", l.radius_mm},
        {"true_points", l.true_points},
        {"hits", l.hits},
        {"sensitivity", l.true_points ? json(double(l.hits) / l.true_points) : json(nullptr)},
        {"predicted_points", l.predicted_points},
        {"predicted_hits", l.predicted_hits},
        {"precision", l.predicted_points ? json(double(l.predicted_hits) / l.predicted_points) : json(nullptr)}};
  }
  if (!e.size_bands.empty()) {
    json bands = json::array();
    for (const auto& b : e.size_bands)
      bands.push_back({{"radius_from_mm", b.lo_mm},
                       {"radius_below_mm", std::isfinite(b.hi_mm) ? json(b.hi_mm) : json(nullptr)},
                       {"positives", b.positives},
                       {"negatives", b.negatives},
                       {"auc", b.auc ? json(*b.auc) : json(nullptr)}});
    j["present_auc_by_largest_radius"] = bands;
  }
  if (!e.by_modality.empty()) {
    json groups = json::object();
    for (const auto& g : e.by_modality)
      groups[g.group] = {
          {"series", g.series},
          {"positives", g.positives},
          {"present_auc", g.present_auc ? json(*g.present_auc) : json(nullptr)},
          {"defined_columns_score", g.defined_columns_score ? json(*g.defined_columns_score) : json(nullptr)}};
    j["by_modality"] = groups;
  }
  if (const auto m = mean_vessel_dice(e)) {
    json per = json::object();
    for (const auto& [uid, d] : e.vessels)
      per[uid] = {{"foreground", d.foreground}, {"territories", d.territories}, {"voxels", d.voxels}};
    j["vessel_dice"] = {{"series", e.vessels.size()},
                        {"foreground", m->foreground},
                        {"territories", m->territories},
                        {"per_series", per}};
  }
  return j;
}

}  // namespace aneura
