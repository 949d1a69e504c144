// Brain extraction against the synthetic brain's truth, on the series of a synthetic dataset as
// preprocess sees them (DICOM read, crop, reorientation, resampling):
//   aneura_bench_brain DATA [--spacing MM] [--series N]
// DATA is an `aneura synth` folder whose truth.json holds each head's pose ("head"). For each series:
// harmonize with and without --brain-mask (the difference is the brain mask's time), the truth
// (synth::in_brain) on the harmonized grid, and the Dice. Prints one line per series and the mean
// and worst Dice and the mean time per modality.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "harmonize/brain.hpp"
#include "harmonize/pipeline.hpp"
#include "io/dicom_series.hpp"
#include "synth/anatomy.hpp"

using namespace aneura;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: aneura_bench_brain DATA [--spacing MM] [--series N]\n");
    return 2;
  }
  const std::filesystem::path data = argv[1];
  double spacing = 1.0;
  size_t limit = 1000000;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--spacing") spacing = std::stod(argv[i + 1]);
    if (a == "--series") limit = std::stoul(argv[i + 1]);
  }
  std::ifstream in(data / "truth.json");
  if (!in) {
    std::fprintf(stderr, "no truth.json in %s\n", data.c_str());
    return 2;
  }
  const nlohmann::json truth = nlohmann::json::parse(in);
  struct Stats {
    double dice = 0, worst = 1, seconds = 0;
    int n = 0, missed = 0;
  };
  std::map<std::string, Stats> by;
  size_t done = 0;
  for (const auto& s : truth.at("series")) {
    if (done++ >= limit) break;
    if (!s.contains("head")) {
      std::fprintf(stderr, "truth.json has no head pose (made by an older aneura synth)\n");
      return 2;
    }
    const std::string uid = s.at("series_uid"), modality = s.at("modality");
    const SeriesPlan plan = plan_series(data / "series" / uid);
    const Volume<float> raw = load_volume<float>(plan);
    HarmonizeParams p;
    p.spacing = {spacing, spacing, spacing};
    auto t = Clock::now();
    harmonize(raw, plan.modality, p);
    const double without = since(t);
    p.brain_mask = true;
    t = Clock::now();
    const Harmonized h = harmonize(raw, plan.modality, p);
    const double with = since(t);
    Stats& st = by[modality];
    st.seconds += with - without, ++st.n;
    if (h.brain.data.empty()) {
      ++st.missed, st.worst = 0;
      std::printf("%-12s %s  not found: %s\n", modality.c_str(), uid.c_str(),
                  h.warnings.empty() ? "" : h.warnings[0].c_str());
      continue;
    }
    const synth::Subject head = synth::head_from_json(s.at("head"));
    const Geometry& g = h.brain.geom;
    Volume<uint8_t> t_mask(g);
    for (int64_t k = 0; k < g.size[2]; ++k)
      for (int64_t j = 0; j < g.size[1]; ++j)
        for (int64_t i = 0; i < g.size[0]; ++i)
          t_mask.at(i, j, k) = synth::in_brain(head, g.index_to_world({double(i), double(j), double(k)})) ? 1 : 0;
    const double dice = mask_dice(h.brain, t_mask);
    st.dice += dice, st.worst = std::min(st.worst, dice);
    std::printf("%-12s %s  dice %.4f  brain %.2f s  grid %lldx%lldx%lld\n", modality.c_str(), uid.c_str(), dice,
                with - without, static_cast<long long>(g.size[0]), static_cast<long long>(g.size[1]),
                static_cast<long long>(g.size[2]));
  }
  std::printf("\n%-12s %6s %10s %10s %8s %12s\n", "modality", "series", "mean Dice", "worst", "missed", "s per case");
  for (const auto& [m, st] : by) {
    const int found = st.n - st.missed;
    std::printf("%-12s %6d %10.4f %10.4f %8d %12.2f\n", m.c_str(), st.n, found ? st.dice / found : 0.0, st.worst,
                st.missed, st.seconds / st.n);
  }
  return 0;
}
