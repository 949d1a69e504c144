#include "train/folds.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/labels.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

bool is_segmentation_source(const std::string& vs) {
  return vs.size() > 4 && vs.compare(vs.size() - 4, 4, ".nii") == 0;
}

std::vector<CaseInfo> list_cases(const fs::path& work) {
  const fs::path dir = work / "cases";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorCode::InputNotFound, "no case cache (run aneura preprocess first)", dir.string());
  std::vector<CaseInfo> out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const fs::path f = e.path() / "case.json";
    if (!fs::is_regular_file(f, ec)) continue;
    std::ifstream in(f);
    try {
      const json j = json::parse(in);
      CaseInfo c;
      c.id = j.at("id");
      c.modality = j.at("modality");
      c.labelled = j.at("labelled");
      if (c.labelled) c.labels = j.at("labels").get<std::array<int, kNumLabels>>();
      c.present = c.labelled && c.labels[kNumLabels - 1] == 1;
      c.segmented = j.contains("labels_file") &&
                    is_segmentation_source(j.at("labels_file").value("vessel_source", std::string()));
      out.push_back(c);
    } catch (const json::exception& ex) {
      throw Error(ErrorCode::CorruptInput, std::string("bad case.json: ") + ex.what(), f.string());
    }
  }
  std::sort(out.begin(), out.end(), [](const CaseInfo& a, const CaseInfo& b) { return a.id < b.id; });
  return out;
}

std::vector<std::string> Folds::train(int fold) const {
  std::vector<std::string> t;
  for (int f = 0; f < k; ++f)
    if (f != fold || k == 1) t.insert(t.end(), val[f].begin(), val[f].end());
  std::sort(t.begin(), t.end());
  return t;
}

Folds make_folds(const std::vector<CaseInfo>& cases, int k, uint64_t seed) {
  if (k < 1) throw Error(ErrorCode::Usage, "folds must be at least 1");
  std::map<std::pair<std::string, bool>, std::vector<std::string>> strata;
  for (const auto& c : cases)
    if (c.labelled) strata[{c.modality, c.present}].push_back(c.id);
  Folds f;
  f.k = k;
  f.seed = seed;
  f.val.assign(k, {});
  if (k == 1) {
    for (auto& [key, ids] : strata) f.val[0].insert(f.val[0].end(), ids.begin(), ids.end());
    std::sort(f.val[0].begin(), f.val[0].end());
    return f;
  }
  std::mt19937_64 rng(seed);
  size_t next = 0;
  for (auto& [key, ids] : strata) {
    std::sort(ids.begin(), ids.end());
    std::shuffle(ids.begin(), ids.end(), rng);
    for (const auto& id : ids) f.val[next++ % k].push_back(id);
  }
  for (auto& v : f.val) std::sort(v.begin(), v.end());
  return f;
}

Folds load_or_make_folds(const fs::path& work, const std::vector<CaseInfo>& cases, int k, uint64_t seed) {
  const fs::path file = work / "folds.json";
  std::set<std::string> ids;
  for (const auto& c : cases)
    if (c.labelled) ids.insert(c.id);
  std::error_code ec;
  if (fs::exists(file, ec)) {
    std::ifstream in(file);
    try {
      const json j = json::parse(in);
      Folds f;
      f.k = j.at("k");
      f.seed = j.at("seed");
      f.val = j.at("val").get<std::vector<std::vector<std::string>>>();
      std::set<std::string> have;
      for (const auto& v : f.val) have.insert(v.begin(), v.end());
      if (f.k == k && static_cast<int>(f.val.size()) == k && have == ids) return f;
      spdlog::warn("{}: made for other cases or another k; making a new split", file.string());
    } catch (const json::exception& e) {
      throw Error(ErrorCode::CorruptInput, std::string("bad folds.json: ") + e.what(), file.string());
    }
  }
  Folds f = make_folds(cases, k, seed);
  const json j = {{"k", f.k}, {"seed", f.seed}, {"stratified_by", {"modality", "Aneurysm Present"}}, {"val", f.val}};
  write_text_atomically(file, j.dump(1) + "\n");
  return f;
}

}  // namespace aneura
