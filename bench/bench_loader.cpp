// Loader vs model: can the asynchronous loader keep the network fed?
//   aneura_bench_loader WORK [configuration] [workers] [steps]
// Measures, on the case cache and plans of WORK, (1) samples/s the loader makes with the plans'
// augmentation and `workers` threads while nothing else runs, resampling each window from the case
// and (windowed configurations) cutting it from the case's ROI made once, as training does, (2) samples/s of one
// training step of the plans' network (forward + backward + AdamW) on ready batches, and (3) samples/s of training fed
// by the loader. Prints the ratio loader / model (must be > 1). A stage that finds its own candidates (cpu_dots) is
// measured as it trains on cases too large to keep: its cases read once to cut crops around their candidates and
// points (CaseStore::cache_sites), its windows cut from those crops; the candidates from WORK/runs/<configuration>/
// candidates.json as training reads it (shared_candidates: made by the dot filter and kept there when missing).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "core/parallel.hpp"
#include "model/input.hpp"
#include "model/registry.hpp"
#include "train/candidates.hpp"
#include "train/collective.hpp"
#include "train/folds.hpp"
#include "train/loader.hpp"
#include "train/losses.hpp"

using namespace aneura;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: aneura_bench_loader WORK [configuration] [workers] [steps]\n");
    return 2;
  }
  const std::filesystem::path work = argv[1];
  const Plans plans = read_plans(work / "plans.json");
  Configuration cfg = plans.get(argc > 2 ? argv[2] : "");
  const int workers = argc > 3 ? std::stoi(argv[3]) : cfg.loader_workers;
  set_cpu_threads(static_cast<int>(default_threads()));
  std::vector<std::string> ids;
  for (const auto& c : list_cases(work))
    if (c.labelled) ids.push_back(c.id);
  const bool sites = finds_own_candidates(cfg);
  CaseStore store(work, ids, sites ? 0 : 8e9);
  AugmentOptions aug;
  double sites_s = 0;
  if (sites) {
    auto t0 = Clock::now();
    // a training run's candidates.json where it left a usable one, else the dot filter's (kept there)
    const auto j = shared_candidates(work / "runs" / cfg.name / "candidates.json", local_collective(),
                                     kDotCandidatesVersion, cfg.candidates, ids,
                                     [&] { return dot_candidate_cases({&store}, cfg, cfg.candidates, false); });
    store.set_candidates(candidates_by_id(j));
    std::printf("candidates of %zu cases in %.1f s\n", store.size(), since(t0));
    t0 = Clock::now();
    if (!store.cache_sites(cfg, aug, static_cast<int>(default_threads()), 8e9)) {
      std::fprintf(stderr, "the crops around the candidates do not fit in 8 GB\n");
      return 1;
    }
    sites_s = since(t0);
  }
  const int steps = argc > 4 ? std::max(1, std::stoi(argv[4])) : 6;  // model steps timed in (2) and (3)
  const size_t n = std::max<size_t>(64, static_cast<size_t>(steps * cfg.batch_size));
  std::vector<size_t> draws;
  for (size_t i = 0; i < n; ++i) draws.push_back(i % store.size());

  // (1) loader alone
  auto loader_alone = [&] {
    const auto t0 = Clock::now();
    BatchLoader loader(store, cfg, aug, draws, cfg.batch_size, 1, 0, workers, cfg.queue_length);
    while (loader.next()) {}
    return n / since(t0);
  };
  const double resample_sps = sites ? 0 : loader_alone();
  // (1b) the same from ROIs made once (what training does for a windowed configuration)
  auto t = Clock::now();
  const bool rois = !sites && store.cache_rois(cfg, static_cast<int>(default_threads()), 8e9);
  const double roi_s = since(t);
  const double loader_sps = loader_alone();

  // (2) model alone, on one ready batch
  const Autocast autocast(torch::kCPU, cfg.mixed_precision);
  MultiTaskUNet net = build_model(cfg, input_channels(cfg, static_cast<int>(store.get(0)->image.volumes)));
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(cfg.learning_rate));
  BatchLoader one(store, cfg, aug, std::vector<size_t>(draws.begin(), draws.begin() + cfg.batch_size), cfg.batch_size,
                  1, 0, 0, 1);
  const Batch b = *one.next();
  auto step = [&](const Batch& x) {
    Targets tg{x.vessel, x.aneurysm, x.labels, x.modality, x.has_vessels};
    opt.zero_grad();
    multitask_loss(net->forward(x.image), tg, torch::ones({kNumLabels}), cfg.loss_weights).total.backward();
    opt.step();
  };
  step(b);  // warm-up
  t = Clock::now();
  for (int i = 0; i < steps; ++i) step(b);
  const double model_sps = steps * cfg.batch_size / since(t);

  // (3) training fed by the loader
  t = Clock::now();
  {
    BatchLoader loader(store, cfg, aug, std::vector<size_t>(draws.begin(), draws.begin() + steps * cfg.batch_size),
                       cfg.batch_size, 2, 0, workers, cfg.queue_length);
    while (auto x = loader.next()) step(*x);
  }
  const double fed_sps = steps * cfg.batch_size / since(t);
  std::printf("configuration %s, patch %dx%dx%d, batch %d, %d loader worker(s), %d LibTorch thread(s)\n",
              cfg.name.c_str(), cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2], cfg.batch_size, workers,
              torch::get_num_threads());
  if (sites)
    std::printf(
        "crops around the candidates and points of %zu cases (%.0f MB) in %.1f s; loader alone, windows cut "
        "from them  %8.1f samples/s\n",
        store.size(), static_cast<double>(store.site_bytes()) / 1e6, sites_s, loader_sps);
  else
    std::printf("loader alone, resampling each window  %8.1f samples/s\n", resample_sps);
  if (rois)
    std::printf("ROI inputs of %zu cases made once in %.1f s; loader alone, crops of them  %8.1f samples/s\n",
                store.size(), roi_s, loader_sps);
  std::printf("model step alone    %8.1f samples/s\n", model_sps);
  std::printf("training, fed       %8.1f samples/s (%.0f %% of the model alone)\n", fed_sps, 100 * fed_sps / model_sps);
  std::printf("loader / model      %8.1fx\n", loader_sps / model_sps);
  return 0;
}
