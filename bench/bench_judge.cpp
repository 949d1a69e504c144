// A candidate stage's judgements replayed on cached cases: the candidates a prediction listed
// (POINTS_DIR/<id>.json from `aneura predict`) judged again on the same series' harmonized case from
// a case cache, so other readings of the judge (its label head, `head`) can be compared without
// running the candidate finder again.
//   aneura_bench_judge WORK MODEL_DIR POINTS_DIR [FLIP_CANDIDATES [PRECISION]] > judged.json
// (FLIP_CANDIDATES: PredictOptions::flip_candidates, predict --flip-candidates; default predict's;
// PRECISION: fp32 or bf16, predict --precision; default the model's plans)
// Prints {"<case id>": [{"fine_centre": f, "head": h, "head_locations": [13], "fine_locations": [13],
// "prior_locations": [13]}, ...], ...} in the JSON's candidate order (Candidate's fields).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "infer/predictor.hpp"
#include "train/data.hpp"
#include "train/folds.hpp"

using namespace aneura;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 4 || argc > 6) {
    std::fprintf(stderr, "usage: aneura_bench_judge WORK MODEL_DIR POINTS_DIR [FLIP_CANDIDATES [PRECISION]]\n");
    return 2;
  }
  const fs::path work = argv[1], points = argv[3];
  PredictOptions po;
  if (argc >= 5) po.flip_candidates = std::atoi(argv[4]);
  if (argc == 6) po.precision = argv[5];
  Predictor predictor(argv[2], po);
  nlohmann::json out = nlohmann::json::object();
  for (const auto& c : list_cases(work)) {
    std::ifstream in(points / (c.id + ".json"));
    if (!in) continue;
    const auto j = nlohmann::json::parse(in);
    SeriesPrediction r;
    for (const auto& cd : j.value("candidates", nlohmann::json::array()))
      r.candidates.push_back({cd.at("world_lps_mm").get<Vec3>(), cd.at("coarse").get<double>(), -1});
    if (r.candidates.empty()) continue;
    const TrainCase tc = load_case(work, c.id);
    predictor.judge_candidates(tc.image, r);
    auto& list = out[c.id] = nlohmann::json::array();
    for (const auto& cd : r.candidates)
      list.push_back({{"fine_centre", cd.fine_centre},
                      {"head", cd.head},
                      {"head_locations", cd.head_locations},
                      {"fine_locations", cd.fine_locations},
                      {"prior_locations", cd.prior_locations}});
    std::fprintf(stderr, "%s: %zu candidates\n", c.id.c_str(), r.candidates.size());
  }
  std::printf("%s\n", out.dump().c_str());
}
