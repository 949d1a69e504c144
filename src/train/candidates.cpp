#include "train/candidates.hpp"

#include <algorithm>
#include <array>
#include <fstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/progress.hpp"
#include "model/input.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

json shared_candidates(const fs::path& file, const Collective& c, const std::string& source, int count,
                       const std::vector<std::string>& ids, const std::function<json()>& make) {
  auto usable = [&](const json& j) {
    if (!j.is_object() || j.value("coarse_model", "") != source || j.value("count", 0) != count ||
        !j.contains("cases") || !j["cases"].is_object())
      return false;
    return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) { return j["cases"].contains(id); });
  };
  auto read = [&](bool lenient) {
    std::ifstream in(file);
    if (!in) return json();
    try {
      return json::parse(in);
    } catch (const json::exception& e) {
      if (lenient) return json();  // rank 0 makes it again
      throw Error(ErrorCode::CorruptInput, std::string("bad candidates file: ") + e.what(), file.string());
    }
  };
  json j;
  if (c.main()) {
    j = read(true);
    if (!usable(j)) {
      j = {{"coarse_model", source}, {"count", count}, {"cases", make()}};
      std::error_code ec;
      fs::create_directories(file.parent_path(), ec);
      write_text_atomically(file, j.dump() + "\n");
    }
  }
  c.barrier();
  if (!c.main()) j = read(false);
  if (!usable(j))
    throw Error(ErrorCode::CorruptInput, "candidates file of another candidate source or other cases", file.string());
  return j;
}

json dot_candidate_cases(const std::vector<const CaseStore*>& stores, const Configuration& cfg, int count,
                         bool progress) {
  json cases = json::object();
  int total = 0, done = 0;
  for (const CaseStore* s : stores) total += static_cast<int>(s->size());
  Progress bar("candidates", total, progress, "cases");
  for (const CaseStore* store : stores)
    for (size_t i = 0; i < store->size(); ++i) {
      const auto c = store->get(i);
      json found = json::array();
      for (const auto& d : dot_candidates(c->image, c->roi_centre, cfg, count))
        found.push_back({d.world_lps[0], d.world_lps[1], d.world_lps[2], 0.0});
      cases[c->id] = {{"probabilities", std::array<double, kNumLabels>{}}, {"candidates", found}};
      bar.update(++done);
    }
  return cases;
}

std::map<std::string, std::vector<Vec3>> candidates_by_id(const json& file) {
  std::map<std::string, std::vector<Vec3>> by_id;
  for (const auto& [id, v] : file.at("cases").items())
    for (const auto& cd : v.at("candidates")) by_id[id].push_back(Vec3{cd[0], cd[1], cd[2]});
  return by_id;
}

}  // namespace aneura
