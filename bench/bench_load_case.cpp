// Reading a case from the cache, as training does for every sample when the cache does not fit in
// memory: load_case (case.json, image.nii, labels.nii, the ROI anchor) against the ROI finder alone.
//   aneura_bench_load_case WORK [WORK ...] [--cases N]
// Cases preprocessed by this aneura carry their ROI anchor in case.json; older ones make load_case
// run the finder (head mask, ITK opening) on every read. Prints seconds per case for both.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data.hpp"
#include "train/folds.hpp"

using namespace aneura;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  std::vector<std::string> works;
  size_t limit = 30;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cases" && i + 1 < argc)
      limit = std::stoul(argv[++i]);
    else
      works.push_back(a);
  }
  if (works.empty()) {
    std::fprintf(stderr, "usage: aneura_bench_load_case WORK [WORK ...] [--cases N]\n");
    return 2;
  }
  for (const auto& w : works) {
    double load = 0, finder = 0;
    size_t n = 0, stored = 0;
    for (const auto& c : list_cases(w)) {
      auto t = Clock::now();
      const TrainCase tc = load_case(w, c.id);
      load += since(t);
      t = Clock::now();
      const RoiAnchor a = find_roi_anchor(tc.image);
      finder += since(t);
      (void)a;
      std::ifstream in(std::filesystem::path(w) / "cases" / c.id / "case.json");
      stored += nlohmann::json::parse(in).contains("roi_anchor") ? 1 : 0;
      if (++n == limit) break;
    }
    if (!n) continue;
    std::printf("%s: %zu cases (%zu with a stored anchor): load_case %.3f s per case; the ROI finder alone %.3f s\n",
                w.c_str(), n, stored, load / static_cast<double>(n), finder / static_cast<double>(n));
  }
  return 0;
}
