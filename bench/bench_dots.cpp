// A dot-candidate stage's reach (model/input.hpp dot_candidates): on a case cache and its plans,
// the N strongest dot-filter maxima of every case's ROI, and the seconds they took.
//   aneura_bench_dots WORK [configuration] [--count N] [--cases K] > candidates.json
// Prints {"<case id>": {"seconds": s, "candidates": [[x, y, z, strength], ...]}, ...} (world LPS);
// bench/dot_reach.py ranks each aneurysm of the data's truth.json among them.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "plan/plans.hpp"
#include "train/data.hpp"
#include "train/folds.hpp"

using namespace aneura;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string work, config = "cpu_native";
  int count = 64;
  size_t limit = 1000000;
  for (int i = 1, positional = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--count" && i + 1 < argc)
      count = std::stoi(argv[++i]);
    else if (a == "--cases" && i + 1 < argc)
      limit = std::stoul(argv[++i]);
    else if (positional++ == 0)
      work = a;
    else
      config = a;
  }
  if (work.empty()) {
    std::fprintf(stderr, "usage: aneura_bench_dots WORK [configuration] [--count N] [--cases K]\n");
    return 2;
  }
  const Configuration cfg = read_plans(std::filesystem::path(work) / "plans.json").get(config);
  nlohmann::json out = nlohmann::json::object();
  double total = 0;
  size_t n = 0;
  for (const auto& c : list_cases(work)) {
    if (n++ >= limit) break;
    const TrainCase tc = load_case(work, c.id);
    const auto t = Clock::now();
    const auto cands = dot_candidates(tc.image, tc.roi_centre, cfg, count);
    const double s = std::chrono::duration<double>(Clock::now() - t).count();
    total += s;
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : cands) list.push_back({d.world_lps[0], d.world_lps[1], d.world_lps[2], d.strength});
    out[c.id] = {{"modality", tc.modality}, {"seconds", s}, {"candidates", list}};
    std::fprintf(stderr, "%s %s %.2f s\n", c.id.c_str(), tc.modality.c_str(), s);
  }
  std::fprintf(stderr, "%zu cases, %.2f s per case\n", out.size(), out.empty() ? 0.0 : total / out.size());
  std::printf("%s\n", out.dump().c_str());
}
