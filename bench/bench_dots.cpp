// A dot-candidate stage's reach (model/input.hpp dot_candidates): on a case cache and its plans,
// the N strongest dot-filter maxima of every case's ROI, and the seconds they took, through
// dot_filter and (with --itk) through the reference dot_filter_itk on the same cases.
//   aneura_bench_dots WORK [configuration] [--count N] [--cases K] [--itk] > candidates.json
// Prints {"<case id>": {"seconds": s, "candidates": [[x, y, z, strength], ...]}, ...} (world LPS),
// with --itk also "seconds_itk" and "candidates_itk"; on stderr the seconds per case, their ratio
// and how many of the reference's candidates have one of dot_filter's within 1 mm.
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
  bool itk = false;
  for (int i = 1, positional = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--count" && i + 1 < argc)
      count = std::stoi(argv[++i]);
    else if (a == "--cases" && i + 1 < argc)
      limit = std::stoul(argv[++i]);
    else if (a == "--itk")
      itk = true;
    else if (positional++ == 0)
      work = a;
    else
      config = a;
  }
  if (work.empty()) {
    std::fprintf(stderr, "usage: aneura_bench_dots WORK [configuration] [--count N] [--cases K] [--itk]\n");
    return 2;
  }
  const Configuration cfg = read_plans(std::filesystem::path(work) / "plans.json").get(config);
  nlohmann::json out = nlohmann::json::object();
  double total = 0, total_itk = 0;
  size_t n = 0, matched = 0, reference = 0;
  auto as_json = [](const std::vector<DotCandidate>& cands) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : cands) list.push_back({d.world_lps[0], d.world_lps[1], d.world_lps[2], d.strength});
    return list;
  };
  for (const auto& c : list_cases(work)) {
    if (n++ >= limit) break;
    const TrainCase tc = load_case(work, c.id);
    auto t = Clock::now();
    const auto cands = dot_candidates(tc.image, tc.roi_centre, cfg, count);
    const double s = std::chrono::duration<double>(Clock::now() - t).count();
    total += s;
    auto& entry = out[c.id] = {{"modality", tc.modality}, {"seconds", s}, {"candidates", as_json(cands)}};
    std::fprintf(stderr, "%s %s %.2f s", c.id.c_str(), tc.modality.c_str(), s);
    if (itk) {
      t = Clock::now();
      const auto ref = dot_candidates(tc.image, tc.roi_centre, cfg, count, 0, true);
      const double si = std::chrono::duration<double>(Clock::now() - t).count();
      total_itk += si;
      size_t near = 0;
      for (const auto& r : ref) {
        bool found = false;
        for (const auto& d : cands) found = found || norm(d.world_lps - r.world_lps) <= 1.0;
        near += found;
      }
      matched += near;
      reference += ref.size();
      entry["seconds_itk"] = si;
      entry["candidates_itk"] = as_json(ref);
      std::fprintf(stderr, ", ITK %.2f s, %zu of its %zu candidates within 1 mm", si, near, ref.size());
    }
    std::fprintf(stderr, "\n");
  }
  const double per = out.empty() ? 0.0 : total / static_cast<double>(out.size());
  std::fprintf(stderr, "%zu cases, %.2f s per case", out.size(), per);
  if (itk && !out.empty())
    std::fprintf(stderr, "; ITK %.2f s per case (%.1fx); %zu of ITK's %zu candidates within 1 mm of ours",
                 total_itk / static_cast<double>(out.size()), total_itk / std::max(total, 1e-9), matched, reference);
  std::fprintf(stderr, "\n");
  std::printf("%s\n", out.dump().c_str());
}
