// A candidate stage's candidates per case, found once and kept in a run folder's candidates.json
// ({"coarse_model": source, "count": N, "cases": {id: {"probabilities": [14], "candidates":
// [[x, y, z, coarse], ...]}}}): by `train` (WORK/runs/<configuration>) and by `pretrain`
// (WORK/pretrain/<configuration>, whose windows sit on the dot filter's candidates).
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/geometry.hpp"
#include "plan/plans.hpp"
#include "train/collective.hpp"
#include "train/loader.hpp"

namespace aneura {

// Rank 0 reads `file` and keeps it when usable (its "coarse_model" and "count" are `source` and
// `count`, and its "cases" hold every one of `ids`), else writes {"coarse_model", "count", "cases": make()} there
// atomically; after a barrier the other ranks read what rank 0 wrote. Throws Error(CorruptInput) for a file the other
// ranks cannot use, Error(OutputFailed) when it cannot be written.
nlohmann::json shared_candidates(const std::filesystem::path& file, const Collective& c, const std::string& source,
                                 int count, const std::vector<std::string>& ids,
                                 const std::function<nlohmann::json()>& make);

// The "cases" of a candidates.json from the dot filter: every case of `stores`, its `count`
// strongest dot candidates around its ROI centre (dot_candidates), coarse value 0, no probabilities.
nlohmann::json dot_candidate_cases(const std::vector<const CaseStore*>& stores, const Configuration& cfg, int count,
                                   bool progress);

// The candidates per case id of a candidates.json.
std::map<std::string, std::vector<Vec3>> candidates_by_id(const nlohmann::json& file);

}  // namespace aneura
