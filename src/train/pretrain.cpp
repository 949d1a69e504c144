#include "train/pretrain.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "core/timer.hpp"
#include "harmonize/qa.hpp"
#include "model/checkpoint.hpp"
#include "model/input.hpp"
#include "model/registry.hpp"
#include "plan/hardware.hpp"
#include "train/candidates.hpp"
#include "train/folds.hpp"
#include "train/loader.hpp"
#include "train/time_budget.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

constexpr double kRamShare = 0.4;       // of the available RAM, for the case store
constexpr size_t kWindowsPerCase = 4;   // a windowed epoch draws this many windows per case
constexpr double kLearningRate = 1e-3;  // AdamW, cosine (MAE / SparK style), whatever the plans' optimizer
constexpr double kWeightDecay = 1e-4;
constexpr int kPictureRowPixels = 192;        // the reconstruction picture's rows are enlarged to about this height
constexpr uint64_t kMaskStream = 0x6d61736b;  // "mask": the masks' random numbers apart from the samples'

// A Volume on a window's grid (RAS axes, the window's spacing) from a tensor [X, Y, Z].
template <class T>
Volume<T> window_volume(const torch::Tensor& t, const Configuration& cfg) {
  Geometry g;
  for (int a = 0; a < 3; ++a) g.size[a] = t.size(a);
  g.spacing = window_spacing(cfg);
  g.direction = kRasDirection;
  Volume<T> v(g);
  const auto c = t.permute({2, 1, 0}).contiguous().to(torch::kFloat);  // (i fastest, as Volume stores)
  const float* p = c.data_ptr<float>();
  for (size_t i = 0; i < v.data.size(); ++i) v.data[i] = static_cast<T>(p[i]);
  return v;
}

// What was learnt, in one picture: a window of the first case (no augmentation) with its hidden
// cubes, rows: the input the network saw, its reconstruction, the truth; tri-planar slices through
// the middle.
void write_reconstruction(MultiTaskUNet& net, torch::nn::Conv3d& head, const CaseStore& store, const Configuration& cfg,
                          int hidden_channels, double ratio, int block, uint64_t seed, const torch::Device& dev,
                          const fs::path& file) {
  torch::NoGradGuard ng;
  AugmentOptions none;
  none.enabled = false;
  std::mt19937_64 rng(seed);
  const Sample s =
      store.roi(0) ? make_roi_sample(*store.roi(0), cfg, rng, none) : make_sample(*store.get(0), cfg, rng, none);
  const auto x = s.image.unsqueeze(0).to(dev);
  const auto mask = cube_mask(s.image.sizes(), ratio, block, seed).unsqueeze(0).to(dev);
  auto input = x.clone();
  input.slice(1, 0, hidden_channels).mul_(1 - mask);
  net->eval();
  const auto pred = head(net->features(input));
  net->train();
  const auto none_marked = window_volume<uint8_t>(torch::zeros_like(mask[0][0]).cpu(), cfg);  // (no outline: the
  // hidden cubes are the black ones of the first row)
  std::vector<RgbImage> rows;
  for (const auto& t : {input[0][0], pred[0][0], x[0][0]})
    rows.push_back(triplanar(window_volume<float>(t.cpu(), cfg), none_marked));
  const int w = rows[0].width, h = rows[0].height, zoom = std::max(1, kPictureRowPixels / std::max(1, h));
  RgbImage all(w * zoom, h * zoom * 3);  // the rows one under the other, each pixel zoom x zoom
  for (int r = 0; r < 3; ++r)
    for (int y = 0; y < h * zoom; ++y)
      for (int x = 0; x < w * zoom; ++x)
        std::copy_n(rows[static_cast<size_t>(r)].at(x / zoom, y / zoom), 3, all.at(x, r * h * zoom + y));
  write_png(all, file);
}

}  // namespace

torch::Tensor cube_mask(const torch::IntArrayRef& shape, double ratio, int block, uint64_t seed) {
  std::array<int64_t, 3> cubes{};
  for (int a = 0; a < 3; ++a) cubes[a] = (shape[1 + a] + block - 1) / block;
  const int64_t per = cubes[0] * cubes[1] * cubes[2];
  const auto hidden = static_cast<int64_t>(std::llround(ratio * static_cast<double>(per)));
  torch::Tensor m = torch::zeros({1, cubes[0], cubes[1], cubes[2]});
  auto flat = m.view({per});
  std::mt19937_64 rng(seed);
  std::vector<int64_t> order(static_cast<size_t>(per));
  std::iota(order.begin(), order.end(), 0);
  for (int64_t k = 0; k < hidden; ++k) {  // a partial Fisher-Yates shuffle with our own uniform
    const auto j = k + static_cast<int64_t>(rng() % static_cast<uint64_t>(per - k));
    std::swap(order[static_cast<size_t>(k)], order[static_cast<size_t>(j)]);
    flat[order[static_cast<size_t>(k)]] = 1.0;
  }
  for (int a = 0; a < 3; ++a) m = m.repeat_interleave(block, 1 + a);
  return m.slice(1, 0, shape[1]).slice(2, 0, shape[2]).slice(3, 0, shape[3]).contiguous();
}

torch::Tensor counted_voxels(const torch::Tensor& hidden, const torch::Tensor& removed) {
  return hidden * (removed == 0).unsqueeze(1).to(hidden.dtype());
}

AugmentOptions pretrain_augmentation(const Configuration& cfg) {
  AugmentOptions aug;
  aug.roi_spatial_probability = cfg.spatial_augmentation;
  aug.focus_on_aneurysm = 0;  // no label steers a window, of a labelled case either
  if (finds_own_candidates(cfg)) aug.focus_on_candidate = 1;
  return aug;
}

PretrainResult pretrain(const PretrainOptions& o) {
  const auto t_start = SteadyClock::now();
  const Collective& c = o.collective ? *o.collective : local_collective();
  // Configuration
  const Plans plans = read_plans(o.plans_file.empty() ? o.work / "plans.json" : o.plans_file);
  Configuration cfg = plans.get(o.configuration);
  if (!o.device.empty()) cfg.device = o.device;
  if (o.epochs > 0) cfg.epochs = o.epochs;
  if (o.time_budget_s >= 0) cfg.time_budget_s = o.time_budget_s;
  if (o.workers >= 0) cfg.loader_workers = o.workers;
  if (cfg.device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::Usage, "configuration '" + cfg.name + "' wants CUDA, but this LibTorch has no CUDA device");
  if (!(o.mask_ratio > 0 && o.mask_ratio < 1))
    throw Error(ErrorCode::Usage, "--mask-ratio must lie strictly between 0 and 1");
  if (cfg.batch_size < c.world())
    throw Error(ErrorCode::Usage, "the global batch (" + std::to_string(cfg.batch_size) + ") is smaller than the " +
                                      std::to_string(c.world()) + " ranks");
  const torch::Device dev(cfg.device == "cuda" ? torch::kCUDA : torch::kCPU);
  set_cpu_threads(o.threads > 0 ? o.threads : static_cast<int>(default_threads()));
  const int block = o.mask_block > 0 ? o.mask_block : std::max(2, cfg.patch_size[0] / 8);
  if (block < 1 || block > cfg.patch_size[0])
    throw Error(ErrorCode::Usage,
                "--mask-block must be between 1 and the patch (" + std::to_string(cfg.patch_size[0]) + " voxels)");
  // Every finished case, labelled or not, but those of a modality the configuration does not learn
  // from (a series without a train.csv row has none: it stays)
  std::vector<std::string> ids;
  size_t other_modalities = 0, unknown = 0;
  for (const auto& ci : list_cases(o.work)) {
    const bool learns = cfg.modalities.empty() || ci.modality.empty() ||
                        std::find(cfg.modalities.begin(), cfg.modalities.end(), ci.modality) != cfg.modalities.end();
    if (learns) ids.push_back(ci.id);
    other_modalities += learns ? 0 : 1;
    unknown += ci.modality.empty() ? 1 : 0;
  }
  if (!cfg.modalities.empty() && c.main()) {
    std::string names;
    for (const auto& m : cfg.modalities) names += (names.empty() ? "" : ", ") + m;
    spdlog::info("configuration {} learns from {}: {} cases of other modalities left out, {} of no known modality kept",
                 cfg.name, names, other_modalities, unknown);
  }
  if (ids.empty())
    throw Error(ErrorCode::InputNotFound,
                other_modalities > 0 ? "no case of configuration '" + cfg.name + "''s modalities in the case cache"
                                     : std::string("no case in the case cache"),
                (o.work / "cases").string());
  const double ram = kRamShare * probe_hardware(o.work).ram_available_gb * 1e9 / c.world();
  CaseStore store(o.work, ids, ram, CaseMaps::Deface);  // each window carries its defaced voxels
  const int in_channels = store.input_channels(cfg);
  const int hidden_channels = in_channels - kCoordinateChannels;  // image (and blob) channels
  const fs::path run_dir = o.work / "pretrain" / cfg.name;
  AugmentOptions aug = pretrain_augmentation(cfg);
  if (finds_own_candidates(cfg)) {
    // near the arteries: every window on one of the dot filter's candidates (bright dots along the
    // vessels), cut from crops around them when the cases are read per sample
    const auto t = SteadyClock::now();
    const json j = shared_candidates(run_dir / "candidates.json", c, kDotCandidatesVersion, cfg.candidates, ids,
                                     [&] { return dot_candidate_cases({&store}, cfg, cfg.candidates, o.progress); });
    store.set_candidates(candidates_by_id(j));
    if (store.cache_sites(cfg, aug, static_cast<int>(default_threads()), ram))
      spdlog::info("crops around the {} dot candidates of {} cases: {:.0f} MB, {:.1f} s", cfg.candidates, store.size(),
                   static_cast<double>(store.site_bytes()) / 1e6, seconds_since(t));
    else
      spdlog::info("windows on the {} dot candidates of {} cases ({:.1f} s)", cfg.candidates, store.size(),
                   seconds_since(t));
  } else if (cfg.candidates > 0) {
    spdlog::info("configuration {} takes its candidates from a coarse model: windows anywhere in the ROI", cfg.name);
  } else if (windowed(cfg) && store.cache_rois(cfg, static_cast<int>(default_threads()), ram)) {
    spdlog::info("ROI inputs of {} cases made in {:.1f} s", store.size(), seconds_since(t_start));
  }
  const int threads = loader_threads(cfg, store, o.workers);
  // Network, head, optimizer
  torch::manual_seed(o.seed);
  MultiTaskUNet net = build_model(cfg, in_channels);
  torch::nn::Conv3d head(torch::nn::Conv3dOptions(std::min(cfg.base_channels, cfg.max_channels), 1, 1));
  if (c.world() > 1) {  // every rank starts from rank 0's weights
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) c.broadcast(p);
    for (auto& p : head->parameters()) c.broadcast(p);
  }
  net->to(dev);
  head->to(dev);
  std::vector<torch::Tensor> params = net->parameters();
  for (const auto& p : head->parameters()) params.push_back(p);
  c.overlap_gradients(params);  // several ranks: the sums start during the backward pass
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(kLearningRate).weight_decay(kWeightDecay));
  // Run folder, resume
  const fs::path last = run_dir / "last.pt", log_file = run_dir / "log.jsonl";
  std::error_code ec;
  if (c.main()) fs::create_directories(run_dir, ec);
  if (ec) throw Error(ErrorCode::OutputFailed, "cannot create the run folder: " + ec.message(), run_dir.string());
  TimeBudget budget(cfg.time_budget_s, false, t_start);
  int start_epoch = 0, schedule_epochs = cfg.epochs;
  int64_t step = 0;
  if (o.resume) {
    auto ar = open_checkpoint(last);
    const json meta = read_checkpoint_meta(ar, last);
    load_module(ar, "model", net, last);
    try {
      torch::serialize::InputArchive h, oa;
      ar.read("head", h);
      head->load(h);
      ar.read("optimizer", oa);
      opt.load(oa);
    } catch (const std::exception&) {
      throw Error(ErrorCode::CorruptInput, "checkpoint head or optimizer state does not fit", last.string());
    }
    start_epoch = meta.at("epoch");
    step = meta.at("step");
    schedule_epochs = meta.at("schedule_epochs");
    budget.set_elapsed_before(meta.at("elapsed_s"));
    spdlog::info("resuming {} after epoch {}", run_dir.string(), start_epoch);
  } else if (c.main()) {
    fs::remove(log_file, ec);
  }
  const size_t samples = store.size() * (windowed(cfg) ? kWindowsPerCase : 1);
  const int steps = o.steps_per_epoch > 0
                        ? o.steps_per_epoch
                        : std::max<int>(1, static_cast<int>((samples + cfg.batch_size - 1) / cfg.batch_size));
  spdlog::info(
      "pre-training {} on {} cases (labelled or not): masked image modelling, {:.0f} % of {}^3-voxel cubes hidden, "
      "{} steps of {} per epoch, up to {} epochs{}",
      cfg.name, store.size(), 100 * o.mask_ratio, block, steps, cfg.batch_size, cfg.epochs,
      budget.enabled() ? fmt::format(" within {:.0f} s", budget.budget_s()) : std::string());
  const std::vector<double> uniform(store.size(), 1.0);
  PretrainResult r;
  r.run_dir = run_dir;
  r.cases = static_cast<int>(store.size());
  for (int epoch = start_epoch; epoch < cfg.epochs && epoch < schedule_epochs; ++epoch) {
    const auto t_epoch = SteadyClock::now();
    const double lr = kLearningRate * 0.5 * (1 + std::cos(M_PI * epoch / std::max(1, schedule_epochs)));
    for (auto& g : opt.param_groups()) g.options().set_lr(lr);
    BatchLoader loader(store, cfg, aug,
                       epoch_draws(uniform, static_cast<size_t>(steps) * cfg.batch_size, o.seed, epoch), cfg.batch_size,
                       o.seed, epoch, threads, cfg.queue_length, c.rank(), c.world());
    Progress progress("pretrain: epoch " + std::to_string(epoch + 1) + "/" + std::to_string(schedule_epochs),
                      static_cast<int>(loader.batches()), o.progress && c.main(), "steps",
                      Progress::Mode::TerminalOnly);
    const size_t first_in_batch = rank_share(static_cast<size_t>(cfg.batch_size), c.rank(), c.world()).first;
    double loss_sum = 0;
    int n = 0;
    size_t seen = 0;
    net->train();
    while (auto b = loader.next()) {
      const auto x = b->image.to(dev);
      // each sample's mask from its global position in the epoch, whatever the ranks
      std::vector<torch::Tensor> masks;
      for (int64_t i = 0; i < x.size(0); ++i)
        masks.push_back(cube_mask(x[i].sizes(), o.mask_ratio, block,
                                  sample_seed(o.seed ^ kMaskStream, epoch,
                                              static_cast<size_t>(n) * static_cast<size_t>(cfg.batch_size) +
                                                  first_in_batch + static_cast<size_t>(i))));
      const auto mask = torch::stack(masks).to(dev);
      auto input = x.clone();
      input.slice(1, 0, hidden_channels).mul_(1 - mask);
      const auto pred = head(net->features(input));
      // this rank's squared errors over the global batch's hidden voxels, but for those a defacing
      // removed (their zeros are not anatomy to reconstruct)
      const auto counted = counted_voxels(mask, b->vessel.to(dev));
      const double hidden = c.global_count(counted.sum().to(torch::kDouble).cpu()).item<double>();
      const auto loss = ((pred - x.slice(1, 0, 1)).pow(2) * counted).sum() / std::max(1.0, hidden);
      opt.zero_grad();
      loss.backward();
      torch::Tensor value = loss.detach().reshape({1}).to(torch::kCPU);
      c.sum_gradients(params, value);
      if (cfg.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
      opt.step();
      ++step;
      loss_sum += value.item<double>();
      seen += c.world() > 1 ? static_cast<size_t>(cfg.batch_size) : b->cases.size();
      ++n;
      char text[32];
      std::snprintf(text, sizeof text, "loss %.4f", loss_sum / n);
      progress.update(n, text);
    }
    const double train_s = seconds_since(t_epoch), mean = loss_sum / std::max(1, n);
    const auto decided =
        c.from_rank0({budget.no_room_for_another(train_s),
                      budget.fit_schedule(epoch, start_epoch, train_s, false, schedule_epochs, cfg.epochs)});
    const bool last_epoch = decided[0] != 0;
    schedule_epochs = static_cast<int>(decided[1]);
    const json meta = {{"epoch", epoch + 1},
                       {"step", step},
                       {"best_selection", 0},
                       {"schedule_epochs", schedule_epochs},
                       {"planned_epochs", cfg.epochs},
                       {"elapsed_s", budget.elapsed_s()},
                       {"seed", o.seed},
                       {"configuration", cfg.name},
                       {"in_channels", in_channels},
                       {"objective", "masked_image_modelling"},
                       {"mask_ratio", o.mask_ratio},
                       {"mask_block", block},
                       {"cases", store.size()},
                       {"world_size", c.world()}};
    if (c.main()) {
      save_checkpoint(last, net, nullptr, opt, meta, head.ptr().get());
      write_reconstruction(net, head, store, cfg, hidden_channels, o.mask_ratio, block, o.seed, dev,
                           run_dir / "reconstruction.png");
    }
    if (c.main()) {
      std::ofstream log(log_file, std::ios::app);
      log << json{{"epoch", epoch + 1},
                  {"step", step},
                  {"lr", lr},
                  {"masked_mse", mean},
                  {"samples_per_s", static_cast<double>(seen) / std::max(1e-9, train_s)},
                  {"elapsed_s", budget.elapsed_s()}}
                 .dump()
          << "\n";
      if (!log) throw Error(ErrorCode::OutputFailed, "cannot append to the log", log_file.string());
    }
    if (o.progress && c.main())
      spdlog::info("pretrain: epoch {}/{}  masked MSE {:.4f}  {:.1f} samples/s  {:.0f} s", epoch + 1, schedule_epochs,
                   mean, static_cast<double>(seen) / std::max(1e-9, train_s), budget.elapsed_s());
    if (epoch == start_epoch) r.first_loss = mean;
    r.last_loss = mean;
    r.epochs_done = epoch + 1;
    if (o.stop_after_epochs > 0 && epoch + 1 - start_epoch >= o.stop_after_epochs) break;
    if (budget.enabled() && last_epoch && epoch + 1 < std::min(cfg.epochs, schedule_epochs)) {
      r.stopped_by_budget = true;
      break;
    }
  }
  return r;
}

}  // namespace aneura
