#include "train/trainer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "core/timer.hpp"
#include "dataset/case_cache.hpp"
#include "evaluate/metrics.hpp"
#include "infer/maps.hpp"
#include "infer/model_info.hpp"
#include "infer/predictor.hpp"
#include "model/checkpoint.hpp"
#include "model/registry.hpp"
#include "plan/hardware.hpp"
#include "plan/planner.hpp"
#include "train/candidates.hpp"
#include "train/folds.hpp"
#include "train/loader.hpp"
#include "train/losses.hpp"
#include "train/time_budget.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

// Removes the ids for which `drop` holds; returns how many.
template <class Pred>
size_t drop_ids(std::vector<std::string>& ids, Pred drop) {
  const size_t before = ids.size();
  ids.erase(std::remove_if(ids.begin(), ids.end(), drop), ids.end());
  return before - ids.size();
}

// Numbers that decide a run's behaviour.
constexpr uint64_t kFoldSeed = 12345;      // WORK/folds.json: the same split for every run and seed
constexpr double kRamShare = 0.4;          // of the available RAM, for each of the training and validation case stores
constexpr size_t kWindowsPerCase = 4;      // a windowed epoch draws this many windows per training case
constexpr double kMaxPositiveWeight = 20;  // the BCE's positive weight per column: negatives / positives, in [1, this]
constexpr double kEmaWarmup = 10;          // EMA decay at step s: min(decay, (1 + s) / (kEmaWarmup + s))

// The validation selection score: the competition score when every column is defined, else the
// same weighting over the defined columns (defined_columns_score); 0 when none is.
double selection_score(const CompetitionScore& s) { return defined_columns_score(s).value_or(0.0); }

// Learning rate at `epoch` of `total`: cosine (AdamW) or nnU-Net's poly (SGD).
double schedule(const Configuration& c, int epoch, int total) {
  const double t = std::clamp(static_cast<double>(epoch) / std::max(1, total), 0.0, 1.0);
  if (c.optimizer == "adamw") return c.learning_rate * 0.5 * (1 + std::cos(M_PI * t));
  return c.learning_rate * std::pow(1 - t, 0.9);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Configuration& c, Network& net) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(net.encoder_parameters());
  groups.emplace_back(net.other_parameters());
  if (c.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(
        groups, torch::optim::AdamWOptions(c.learning_rate).weight_decay(c.weight_decay));
  return std::make_unique<torch::optim::SGD>(
      groups, torch::optim::SGDOptions(c.learning_rate).momentum(0.99).nesterov(true).weight_decay(c.weight_decay));
}

void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard ng;
  auto src = from.named_parameters(), dst = to.named_parameters();
  for (auto& p : dst) p.value().copy_(src[p.key()]);
  auto sb = from.named_buffers(), db = to.named_buffers();
  for (auto& b : db) b.value().copy_(sb[b.key()]);
}

void ema_update(torch::nn::Module& ema, torch::nn::Module& net, double decay) {
  torch::NoGradGuard ng;
  auto src = net.named_parameters(), dst = ema.named_parameters();
  for (auto& p : dst) p.value().mul_(decay).add_(src[p.key()], 1 - decay);
}

// One optimizer step's losses.
struct StepLosses {
  double total = 0, vessel = 0, aneurysm = 0, labels = 0, modality = 0;
};

// An epoch's running sums, added up at the end of each step.
struct EpochStats {
  StepLosses sum;
  int steps = 0;
  size_t samples = 0;
  double wait_s = 0, train_s = 0;
  void add(const StepLosses& l, size_t batch) {
    sum.total += l.total, sum.vessel += l.vessel, sum.aneurysm += l.aneurysm, sum.labels += l.labels;
    sum.modality += l.modality, ++steps, samples += batch;
  }
  double mean(double StepLosses::*term) const { return sum.*term / std::max(1, steps); }
};

struct Validation {
  double loss = 0, selection = 0, vessel_dice = -1;
  CompetitionScore score;
};

json validation_json(const Validation& v) {
  json auc = json::object();
  for (int c = 0; c < kNumLabels; ++c) auc[label_names()[c]] = v.score.auc[c] ? json(*v.score.auc[c]) : json(nullptr);
  return {{"val_loss", v.loss},
          {"val_score", v.score.score ? json(*v.score.score) : json(nullptr)},
          {"val_selection", v.selection},
          {"val_auc", auc},
          {"val_vessel_dice", v.vessel_dice < 0 ? json(nullptr) : json(v.vessel_dice)}};
}

// One fold of one configuration, in the phases run() names.
class Trainer {
 public:
  explicit Trainer(const TrainOptions& o) : o_(o), c_(o.collective ? *o.collective : local_collective()) {}
  TrainResult run();

 private:
  void prepare_configuration();
  void prepare_cases();
  void learn_roi_offsets_from_cases();
  void cache_training_rois();
  AugmentOptions training_augmentation() const;
  void find_candidates();
  void mine_candidates(int epoch);
  void mine_online(int epoch);
  void record_online(const Batch& b, const torch::Tensor& present);
  void set_mined_weights(int epoch, torch::Tensor sum, torch::Tensor count, const std::string& how);
  void resume_mined_weights();
  int steps_per_epoch() const;
  void prepare_model_info();
  void build_networks();
  void resume();
  EpochStats train_epoch(int epoch, double lr, bool frozen);
  StepLosses train_step(const Batch& b, torch::Tensor* present = nullptr);
  Validation validate(size_t count = 0);
  void end_epoch(int epoch, double lr, bool frozen, const EpochStats& s, double epoch_s, bool validated,
                 const Validation& v, bool improved);
  Network& judged() { return use_ema_ ? ema_net_ : net_; }
  // The 2.5D family: a batch's loss, and a validation case's probabilities (its windows' largest).
  torch::Tensor slice_batch_loss(Network& net, const Batch& b, const Collective& c);
  std::array<double, kNumLabels> slice_case_probabilities(Network& net, const TrainCase& c);

  TrainOptions o_;
  const Collective& c_;
  Plans plans_;
  Configuration cfg_;
  torch::Device dev_{torch::kCPU};
  std::unique_ptr<TimeBudget> budget_;
  // cases
  std::vector<CaseInfo> cases_;
  Folds folds_;
  std::map<std::string, std::array<int, kNumLabels>> labels_by_id_;
  std::vector<std::array<int, kNumLabels>> train_labels_;
  std::unique_ptr<CaseStore> train_store_, val_store_;
  double ram_budget_ = 0;   // bytes, for each case store
  int loader_threads_ = 0;  // the training loader's (loader_threads)
  int in_channels_ = 1;
  torch::Tensor pos_weight_;
  ModelInfo info_;
  std::map<size_t, RoiInput> val_inputs_;           // the ROI inputs of this rank's validation cases, made once
  std::map<std::string, SeriesPrediction> coarse_;  // a candidate stage: the coarse model's prediction per case
  // Mining: the candidates' sampling weights per training case id (empty: uniform), and with
  // mine_online the label head's Present summed and counted over this epoch's training windows
  // per training case and candidate ([cases, candidates] double)
  std::map<std::string, std::vector<double>> mined_;
  torch::Tensor online_sum_, online_count_;
  // run
  fs::path run_dir_, last_file_, best_file_, log_file_;
  Network net_, ema_net_;
  bool use_ema_ = false;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  int start_epoch_ = 0, schedule_epochs_ = 0;
  int64_t step_ = 0;
  double best_ = -1;
};

void Trainer::prepare_configuration() {
  const fs::path plans_file = o_.plans_file.empty() ? o_.work / "plans.json" : o_.plans_file;
  plans_ = read_plans(plans_file);
  cfg_ = plans_.get(o_.configuration);
  if (!o_.device.empty()) cfg_.device = o_.device;
  if (o_.epochs > 0) cfg_.epochs = o_.epochs;
  if (o_.time_budget_s >= 0) cfg_.time_budget_s = o_.time_budget_s;
  if (o_.workers >= 0) cfg_.loader_workers = o_.workers;
  if (cfg_.device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::Usage, "configuration '" + cfg_.name +
                                      "' wants CUDA, but this LibTorch has no CUDA device; use --device cpu "
                                      "or build against the CUDA LibTorch (README)");
  dev_ = torch::Device(cfg_.device == "cuda" ? torch::kCUDA : torch::kCPU);
  if (cfg_.batch_size < c_.world())
    throw Error(ErrorCode::Usage, "the global batch of configuration '" + cfg_.name + "' (" +
                                      std::to_string(cfg_.batch_size) + ") is smaller than the " +
                                      std::to_string(c_.world()) + " ranks: each rank needs a sample per step");
  set_cpu_threads(o_.threads > 0 ? o_.threads : static_cast<int>(default_threads()));
  schedule_epochs_ = cfg_.epochs;
}

void Trainer::prepare_cases() {
  cases_ = list_cases(o_.work);
  if (c_.main()) folds_ = load_or_make_folds(o_.work, cases_, cfg_.folds, kFoldSeed);  // writes folds.json once
  c_.barrier();
  if (!c_.main()) folds_ = load_or_make_folds(o_.work, cases_, cfg_.folds, kFoldSeed);
  if (o_.fold < 0 || o_.fold >= folds_.k)
    throw Error(ErrorCode::Usage, "fold " + std::to_string(o_.fold) + " does not exist (the plans have " +
                                      std::to_string(folds_.k) + ")");
  auto train_ids = folds_.train(o_.fold);
  auto val_ids = folds_.k > 1 ? folds_.val[o_.fold] : std::vector<std::string>{};
  if (!cfg_.modalities.empty()) {  // the configuration learns from these modalities only (the folds stay)
    std::map<std::string, std::string> modality;
    for (const auto& ci : cases_) modality[ci.id] = ci.modality;
    auto keep = [&](std::vector<std::string>& ids) {
      return drop_ids(ids, [&](const std::string& id) {
        return std::find(cfg_.modalities.begin(), cfg_.modalities.end(), modality[id]) == cfg_.modalities.end();
      });
    };
    const size_t t = keep(train_ids), v = keep(val_ids);
    std::string names;
    for (const auto& m : cfg_.modalities) names += (names.empty() ? "" : ", ") + m;
    if (c_.main())
      spdlog::info(
          "configuration {} learns from {} only: {} training and {} validation cases of other modalities "
          "left out",
          cfg_.name, names, t, v);
  }
  if (cfg_.vessel_stage) {  // a vessel model learns from the cases with a segmentation
    std::set<std::string> segmented;
    for (const auto& ci : cases_)
      if (ci.segmented) segmented.insert(ci.id);
    auto keep = [&](std::vector<std::string>& ids) {
      return drop_ids(ids, [&](const std::string& id) { return !segmented.count(id); });
    };
    const size_t t = keep(train_ids), v = keep(val_ids);
    if (c_.main())
      spdlog::info(
          "configuration {} is a vessel stage: it learns from the {} training and {} validation cases with a "
          "segmentation ({} and {} without one left out)",
          cfg_.name, train_ids.size(), val_ids.size(), t, v);
  }
  if (train_ids.empty())
    throw Error(ErrorCode::NoDicom,
                cfg_.vessel_stage         ? "empty training set: no case with a vessel segmentation"
                : cfg_.modalities.empty() ? "empty training set: no labelled case in the case cache"
                                          : "empty training set: no labelled case of the configuration's modalities",
                (o_.work / "cases").string());
  ram_budget_ = kRamShare * probe_hardware(o_.work).ram_available_gb * 1e9 / c_.world();
  train_store_ = std::make_unique<CaseStore>(o_.work, train_ids, ram_budget_);
  val_store_ = std::make_unique<CaseStore>(o_.work, val_ids, ram_budget_);
  in_channels_ = train_store_->input_channels(cfg_);
  for (const auto& ci : cases_) labels_by_id_[ci.id] = ci.labels;
  for (const auto& id : train_ids) train_labels_.push_back(labels_by_id_.at(id));
  // Positive weights of the BCE: negatives / positives per column.
  pos_weight_ = torch::ones({kNumLabels});
  for (int c = 0; c < kNumLabels; ++c) {
    double pos = 0;
    for (const auto& l : train_labels_) pos += l[c];
    const double neg = static_cast<double>(train_labels_.size()) - pos;
    pos_weight_[c] = static_cast<float>(std::clamp(pos > 0 ? neg / pos : kMaxPositiveWeight, 1.0, kMaxPositiveWeight));
  }
  pos_weight_ = pos_weight_.to(dev_);
}

// ROI offsets from the cases' localizer points (anchor -> the centre of their aneurysms, every
// location once), so the ROI sits where aneurysms are on this data's heads; the defaults stay for
// rules with fewer than 5 positive cases. Every fold's cases, as the location prior: the folds of
// one model share model.json, so they must share the offsets. The location prior is made from the
// same positive cases (no case is read twice).
void Trainer::learn_roi_offsets_from_cases() {
  std::vector<std::pair<RoiAnchor, std::vector<std::pair<Vec3, int>>>> anchored;
  for (const CaseStore* store : {train_store_.get(), val_store_.get()})
    for (size_t i = 0; i < store->size(); ++i) {
      if (!labels_by_id_.at(store->id(i))[kPresentColumn]) continue;
      const auto c = store->get(i);
      anchored.push_back({c->roi_anchor, c->points});
    }
  info_.roi_offsets = learn_roi_offsets(anchored);
  for (int r = 0; r < kRoiRules; ++r)
    if (info_.roi_offsets.cases[r])
      spdlog::info("ROI centre: {} rule offset P {:+.1f} S {:+.1f} mm, learned from {} positive cases",
                   roi_rule_name(static_cast<RoiRule>(r)), info_.roi_offsets.by_rule[r][1],
                   info_.roi_offsets.by_rule[r][2], info_.roi_offsets.cases[r]);
  train_store_->set_roi_offsets(info_.roi_offsets);
  val_store_->set_roi_offsets(info_.roi_offsets);
  for (const auto& [anchor, points] : anchored)
    for (const auto& [p, column] : points) info_.locations.add(p - info_.roi_offsets.centre(anchor), column);
}

// A windowed configuration's training windows are crops of ROI inputs made once (make_roi_case); a
// candidate stage's (its fine ROIs would not fit), when its cases are read per sample, crops of the
// cases around their candidates and points (make_site_case).
void Trainer::cache_training_rois() {
  if (!windowed(cfg_)) return;
  const auto t = SteadyClock::now();
  if (cfg_.candidates > 0) {
    if (train_store_->preloaded()) return;
    if (train_store_->cache_sites(cfg_, training_augmentation(), static_cast<int>(default_threads()), ram_budget_))
      spdlog::info("crops around the candidates and points of {} training cases: {:.0f} MB, {:.1f} s",
                   train_store_->size(), static_cast<double>(train_store_->site_bytes()) / 1e6, seconds_since(t));
    else if (o_.augment)
      spdlog::info("the crops around the candidates would not fit in {:.0f} MB: windows cut from cases read per sample",
                   ram_budget_ / 1e6);
    return;
  }
  if (train_store_->cache_rois(cfg_, static_cast<int>(default_threads()), ram_budget_))
    spdlog::info("ROI inputs of {} training cases made in {:.1f} s", train_store_->size(), seconds_since(t));
}

AugmentOptions Trainer::training_augmentation() const {
  AugmentOptions aug;
  aug.enabled = o_.augment;
  aug.roi_spatial_probability = cfg_.spatial_augmentation;
  return aug;
}

// A candidate stage's coarse predictions of every case (probabilities and the strongest heatmap
// maxima, without flips): its training windows' hard negatives and its validation's candidates.
// Made once into WORK/runs/<configuration>/candidates.json (rank 0), reused while the coarse model
// and the count stay the same.
void Trainer::find_candidates() {
  if (cfg_.candidates <= 0 && o_.candidates_from.empty()) return;
  if (cfg_.candidates <= 0)
    throw Error(ErrorCode::Usage,
                "--candidates-from: configuration '" + cfg_.name + "' is not a candidate stage (no candidates)");
  const bool dots = cfg_.candidate_source == "dots";
  if (dots && !o_.candidates_from.empty())
    throw Error(ErrorCode::Usage, "--candidates-from: configuration '" + cfg_.name +
                                      "' finds its own candidates (candidate_source dots)");
  if (!dots && o_.candidates_from.empty())
    throw Error(ErrorCode::Usage, "configuration '" + cfg_.name +
                                      "' is a candidate stage: give the coarse model with --candidates-from "
                                      "WORK/runs/<configuration>");
  // the source: the coarse model's folder, or "dots" with the filter's version
  const std::string from =
      dots ? std::string(kDotCandidatesVersion) : fs::absolute(o_.candidates_from).lexically_normal().string();
  const fs::path file = o_.work / "runs" / cfg_.name / "candidates.json";
  std::vector<std::string> ids;
  for (const CaseStore* store : {train_store_.get(), val_store_.get()})
    for (size_t i = 0; i < store->size(); ++i) ids.push_back(store->id(i));
  const json j = shared_candidates(file, c_, from, cfg_.candidates, ids, [&] {
    const auto t = SteadyClock::now();
    json cases = json::object();
    if (dots) {
      cases = dot_candidate_cases({train_store_.get(), val_store_.get()}, cfg_, cfg_.candidates, o_.progress);
    } else {
      PredictOptions po;
      po.flip_tta = false;
      po.points.max_points = 0;
      po.candidates = cfg_.candidates;
      Predictor coarse(from, po);
      if (const auto mine = read_preprocess_params(o_.work)) check_coarse_model(coarse.info(), *mine, from);
      Progress progress("candidates", static_cast<int>(train_store_->size() + val_store_->size()), o_.progress,
                        "cases");
      int done = 0;
      for (const CaseStore* store : {train_store_.get(), val_store_.get()})
        for (size_t i = 0; i < store->size(); ++i) {
          const auto c = store->get(i);
          const SeriesPrediction r = coarse.predict_image(c->image);
          json cands = json::array();
          for (const auto& cd : r.candidates)
            cands.push_back({cd.world_lps[0], cd.world_lps[1], cd.world_lps[2], cd.coarse});
          cases[c->id] = {{"probabilities", r.probability}, {"candidates", cands}};
          progress.update(++done);
        }
    }
    spdlog::info("candidates of {} cases from {} in {:.1f} s -> {}", cases.size(), from, seconds_since(t),
                 file.string());
    return cases;
  });
  for (const auto& [id, v] : j.at("cases").items()) {
    SeriesPrediction r;
    r.probability = v.at("probabilities").get<std::array<double, kNumLabels>>();
    for (const auto& cd : v.at("candidates"))
      r.candidates.push_back({Vec3{cd[0], cd[1], cd[2]}, cd[3].get<double>(), -1});
    coarse_[id] = std::move(r);
  }
  const auto by_id = candidates_by_id(j);
  train_store_->set_candidates(by_id);
  val_store_->set_candidates(by_id);
  if (!dots) info_.candidate_model = from;
}

int Trainer::steps_per_epoch() const {
  if (o_.steps_per_epoch > 0) return o_.steps_per_epoch;
  const size_t samples = train_store_->size() * (windowed(cfg_) || slice_model(cfg_) ? kWindowsPerCase : 1);
  return std::max<int>(1, static_cast<int>((samples + cfg_.batch_size - 1) / cfg_.batch_size));
}

// model.json: what prediction needs besides the weights (src/infer/model_info.hpp).
void Trainer::prepare_model_info() {
  info_.cfg = cfg_;
  info_.plans_global = plans_.global;
  info_.in_channels = in_channels_;
  info_.folds = folds_.k;
  if (!o_.init_encoder.empty()) info_.init_encoder = fs::absolute(o_.init_encoder).lexically_normal().string();
  // Prior: the prevalence per column over every labelled case (all folds), the documented
  // prediction for a series that cannot be read.
  int labelled = 0;
  for (const auto& ci : cases_) labelled += ci.labelled;
  for (const auto& ci : cases_)
    if (ci.labelled)
      for (int c = 0; c < kNumLabels; ++c) info_.prior[c] += ci.labels[c] / static_cast<double>(labelled);
  // How the cases were made: prediction repeats it on new series.
  if (const auto p = read_preprocess_params(o_.work)) {
    info_.harmonize = *p;
    if (!cfg_.normalization.is_null() && !cfg_.normalization.empty() && cfg_.normalization != normalization_json(*p))
      spdlog::warn(
          "the plans' normalization {} is not how the cases were made ({}, {}): training reads the cases and "
          "prediction repeats their harmonization; re-run `aneura plan` to record it",
          cfg_.normalization.dump(), normalization_json(*p).dump(), (o_.work / "preprocess.json").string());
  } else {
    info_.harmonize.spacing = train_store_->get(0)->image.geom.spacing;
    spdlog::warn(
        "{} missing (cache from an older aneura): prediction will harmonize with the default parameters at {} mm",
        (o_.work / "preprocess.json").string(), info_.harmonize.spacing[0]);
  }
  const fs::path model_dir = o_.work / "runs" / cfg_.name;
  run_dir_ = model_dir / ("fold_" + std::to_string(o_.fold));
  last_file_ = run_dir_ / "last.pt";
  best_file_ = run_dir_ / "best.pt";
  log_file_ = run_dir_ / "log.jsonl";
  if (!c_.main()) return;
  std::error_code ec;
  fs::create_directories(run_dir_, ec);
  if (ec) throw Error(ErrorCode::OutputFailed, "cannot create the run folder: " + ec.message(), run_dir_.string());
  write_model_info(model_dir, info_);
}

// Model, EMA and optimizer; the encoder from another checkpoint when asked (transfer).
void Trainer::build_networks() {
  torch::manual_seed(o_.seed);
  net_ = build_network(cfg_, in_channels_);
  ema_net_ = build_network(cfg_, in_channels_);
  use_ema_ = cfg_.ema_decay > 0;
  if (!o_.init_encoder.empty() && net_.slices)
    throw Error(ErrorCode::Usage, "--init-encoder takes the 3D network's encoder; configuration '" + cfg_.name +
                                      "' is the 2.5D family (" + cfg_.model + ")");
  if (!o_.init_encoder.empty()) {
    MultiTaskUNet donor = build_model(cfg_, in_channels_);
    load_weights(o_.init_encoder, donor);
    torch::NoGradGuard ng;
    auto src = donor->encoder->named_parameters();
    for (auto& p : net_.unet->encoder->named_parameters()) p.value().copy_(src[p.key()]);
    spdlog::info("encoder initialised from {}", o_.init_encoder.string());
  }
  net_.module().to(dev_);
  ema_net_.module().to(dev_);
  if (c_.world() > 1) {  // every rank starts from rank 0's weights
    torch::NoGradGuard ng;
    for (auto& p : net_.parameters()) c_.broadcast(p);
    for (auto& b : net_.module().buffers()) c_.broadcast(b);
  }
  copy_weights(net_.module(), ema_net_.module());
  for (auto& p : ema_net_.parameters()) p.set_requires_grad(false);
  opt_ = make_optimizer(cfg_, net_);
}

void Trainer::resume() {
  if (!o_.resume) {
    std::error_code ec;
    if (c_.main()) fs::remove(log_file_, ec);
    return;
  }
  auto ar = open_checkpoint(last_file_);
  const json meta = read_checkpoint_meta(ar, last_file_);
  load_module(ar, "model", net_.module(), last_file_);
  if (use_ema_) load_module(ar, "ema", ema_net_.module(), last_file_);
  try {
    torch::serialize::InputArchive oa;
    ar.read("optimizer", oa);
    opt_->load(oa);
  } catch (const std::exception& e) {
    throw Error(ErrorCode::CorruptInput, "checkpoint optimizer state does not fit", last_file_.string());
  }
  start_epoch_ = meta.at("epoch");
  step_ = meta.at("step");
  best_ = meta.at("best_selection");
  schedule_epochs_ = meta.at("schedule_epochs");
  if (meta.at("planned_epochs").get<int>() != cfg_.epochs) {
    spdlog::warn(
        "resuming with {} epochs where the run planned {}: the schedule changes, so the result differs from an "
        "uninterrupted run",
        cfg_.epochs, meta.at("planned_epochs").get<int>());
    schedule_epochs_ = cfg_.epochs;
  }
  budget_->set_elapsed_before(meta.at("elapsed_s"));
  if (meta.at("seed").get<uint64_t>() != o_.seed)
    spdlog::warn("resuming with seed {} (the run used {})", o_.seed, meta.at("seed").get<uint64_t>());
  spdlog::info("resuming {} after epoch {}", run_dir_.string(), start_epoch_);
}

// How validation and mining predict: without flips, the location prior or points.
PredictOptions judging_options() {
  PredictOptions po;
  po.flip_tta = false;
  po.location_sigma_mm = 0;
  po.points.max_points = 0;
  return po;
}

// The floor of a mined candidate's sampling weight: one the network judges 0 is still drawn a
// tenth as often as one it judges an aneurysm.
constexpr double kMinedFloor = 0.1;

// A candidate stage with mine_candidates_every: the network, as validation judges, judges every
// training case's candidates (each rank its share, summed); from the next epoch on they are drawn
// in proportion to kMinedFloor + that judgement, so the maxima it still takes for aneurysms come
// back more often (hard-negative mining, a second round behind the coarse model's). The judgement:
// the map's largest value in the window (`fine`), or a dot stage's label head (`head`, what it
// predicts Present from). Rank 0 keeps the weights in fold_k/mined.json for --resume.
void Trainer::mine_candidates(int epoch) {
  const auto t = SteadyClock::now();
  torch::NoGradGuard ng;
  Network& net = judged();
  net.module().eval();
  Predictor predictor(info_, std::vector<MultiTaskUNet>{net.unet}, judging_options());
  const size_t n = train_store_->size();
  const int64_t k_max = cfg_.candidates;
  torch::Tensor judgement = torch::zeros({static_cast<int64_t>(n), k_max}, torch::kDouble);
  torch::Tensor judged = torch::zeros_like(judgement);
  auto acc = judgement.accessor<double, 2>();
  auto cnt = judged.accessor<double, 2>();
  const bool head = cfg_.candidate_source == "dots";
  const auto [lo, hi] = rank_share(n, c_.rank(), c_.world());
  for (size_t i = lo; i < hi; ++i) {
    auto it = coarse_.find(train_store_->id(i));
    if (it == coarse_.end()) continue;
    SeriesPrediction r = it->second;
    predictor.judge_candidates(train_store_->get(i)->image, r);
    for (size_t k = 0; k < r.candidates.size() && static_cast<int64_t>(k) < k_max; ++k) {
      const auto ik = static_cast<int64_t>(i), kk = static_cast<int64_t>(k);
      acc[ik][kk] = std::max(0.0, head ? r.candidates[k].head : r.candidates[k].fine);
      cnt[ik][kk] = 1;
    }
  }
  net.module().train();
  set_mined_weights(epoch, judgement, judged, fmt::format("judged in {:.1f} s", seconds_since(t)));
}

// A candidate stage with mine_online: each training window cut around a candidate (Sample::candidate)
// adds the label head's Present for it, as the training step computed it, to that candidate's sum.
void Trainer::record_online(const Batch& b, const torch::Tensor& present) {
  if (!present.defined()) return;
  auto sum = online_sum_.accessor<double, 2>();
  auto count = online_count_.accessor<double, 2>();
  const auto p = present.accessor<double, 1>();
  for (size_t j = 0; j < b.candidates.size() && j < b.cases.size(); ++j) {
    const int64_t k = b.candidates[j], i = static_cast<int64_t>(b.cases[j]);
    if (k < 0 || k >= online_sum_.size(1) || i >= online_sum_.size(0)) continue;
    sum[i][k] += p[static_cast<int64_t>(j)];
    count[i][k] += 1;
  }
}

// After an epoch of mine_online: a candidate the epoch's windows were cut around is drawn by
// kMinedFloor + the head's mean Present over them (no pass of its own: hard-negative mining from the
// training windows), one not drawn in this epoch keeps its weight, and one never drawn keeps
// kMinedFloor + 1 (as if judged an aneurysm), so every candidate is seen before the hard ones take over.
void Trainer::mine_online(int epoch) {
  set_mined_weights(epoch, online_sum_, online_count_, "drawn in this epoch's windows");
}

// The weights from judgement sums and counts per training case and candidate (summed over the
// ranks here): kMinedFloor + sum / count where counted, else the weight so far (kMinedFloor + 1 at
// first). Rank 0 keeps them in fold_k/mined.json.
void Trainer::set_mined_weights(int epoch, torch::Tensor sum, torch::Tensor count, const std::string& how) {
  c_.sum(sum);
  c_.sum(count);
  const auto s = sum.accessor<double, 2>();
  const auto n = count.accessor<double, 2>();
  json cases = json::object();
  size_t high = 0, counted = 0, total = 0;
  for (size_t i = 0; i < train_store_->size(); ++i) {
    auto it = coarse_.find(train_store_->id(i));
    if (it == coarse_.end()) continue;
    const auto size = std::min<size_t>(it->second.candidates.size(), static_cast<size_t>(cfg_.candidates));
    auto& w = mined_[it->first];
    w.resize(size, kMinedFloor + 1);
    for (size_t k = 0; k < size; ++k) {
      const auto ik = static_cast<int64_t>(i), kk = static_cast<int64_t>(k);
      if (n[ik][kk] > 0) {
        const double j = s[ik][kk] / n[ik][kk];
        w[k] = kMinedFloor + j;
        high += j > 0.5;
        ++counted;
      }
      ++total;
    }
    cases[it->first] = w;
  }
  train_store_->set_candidate_weights(mined_);
  if (c_.main())
    write_text_atomically(run_dir_ / "mined.json",
                          json{{"after_epoch", epoch + 1}, {"floor", kMinedFloor}, {"cases", cases}}.dump() + "\n");
  spdlog::info("mined the candidates of {} training cases: {} of {} {}, {} of them above 0.5", cases.size(), counted,
               total, how, high);
}

// --resume of a mining run: the weights mined up to the checkpoint's epoch (none: uniform again).
void Trainer::resume_mined_weights() {
  const fs::path file = run_dir_ / "mined.json";
  if (!o_.resume || (cfg_.mine_candidates_every <= 0 && !cfg_.mine_online) || !fs::exists(file)) return;
  try {
    std::ifstream in(file);
    const json j = json::parse(in);
    if (j.at("after_epoch").get<int>() > start_epoch_) {
      spdlog::warn(
          "{} was mined after epoch {}, past the checkpoint's {}: candidates drawn uniformly until the "
          "next mining",
          file.string(), j.at("after_epoch").get<int>(), start_epoch_);
      return;
    }
    mined_ = j.at("cases").get<std::map<std::string, std::vector<double>>>();
    train_store_->set_candidate_weights(mined_);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad mined weights: ") + e.what(), file.string());
  }
}

torch::Tensor Trainer::slice_batch_loss(Network& net, const Batch& b, const Collective& c) {
  const int64_t w = cfg_.patch_size[2];
  const auto x = b.image.to(dev_);
  const auto logits = net.slices->forward(x.slice(1, 0, w), x.slice(1, w, 2 * w), b.coords.to(dev_));
  return label_loss(logits, b.labels.to(dev_), pos_weight_, c);
}

std::array<double, kNumLabels> Trainer::slice_case_probabilities(Network& net, const TrainCase& c) {
  std::vector<DualStream2p5d> nets{net.slices};
  return image_slice_probabilities(nets, c.image, cfg_, false);
}

// `present`: where given, the label head's Present (sigmoid) per sample of the batch, as computed
// before the update (undefined for the 2.5D family).
StepLosses Trainer::train_step(const Batch& b, torch::Tensor* present) {
  if (net_.slices) {  // the 2.5D family: the classification term alone
    opt_->zero_grad();
    const auto loss = slice_batch_loss(net_, b, c_);
    loss.backward();
    torch::Tensor terms = torch::stack({loss, loss}).detach().to(torch::kCPU);
    c_.sum_gradients(net_.parameters(), terms);
    if (cfg_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(net_.parameters(), cfg_.grad_clip);
    opt_->step();
    ++step_;
    if (use_ema_)
      ema_update(ema_net_.module(), net_.module(), std::min(cfg_.ema_decay, (1.0 + step_) / (kEmaWarmup + step_)));
    const auto v = terms.to(torch::kDouble);
    StepLosses l;
    l.total = l.labels = v[0].item<double>();
    return l;
  }
  auto x = b.image.to(dev_);
  if (cfg_.channels_last && dev_.is_cuda()) x = x.contiguous(at::MemoryFormat::ChannelsLast3d);
  Targets t{b.vessel.to(dev_), b.aneurysm.to(dev_), b.labels.to(dev_), b.modality.to(dev_), b.has_vessels.to(dev_)};
  const bool autocast = cfg_.mixed_precision;
  opt_->zero_grad();
  NetworkOutput out;
  {
    Autocast ac(dev_, autocast);
    out = net_.unet->forward(x);
  }
  if (autocast)
    out = {out.vessel.to(torch::kFloat), out.aneurysm.to(torch::kFloat), out.labels.to(torch::kFloat),
           out.modality.to(torch::kFloat)};
  const LossTerms l = multitask_loss(out, t, pos_weight_, cfg_.loss_weights, c_);
  if (present) *present = torch::sigmoid(out.labels.select(1, kPresentColumn).detach()).to(torch::kCPU, torch::kDouble);
  l.total.backward();
  // this rank's shares of the global loss: their sums are its terms and its gradient (one collective)
  torch::Tensor terms = torch::stack({l.total, l.vessel, l.aneurysm, l.labels, l.modality}).detach().to(torch::kCPU);
  c_.sum_gradients(net_.parameters(), terms);
  if (cfg_.grad_clip > 0) {
    std::vector<torch::Tensor> ps;
    for (auto& p : net_.parameters())
      if (p.grad().defined()) ps.push_back(p);
    torch::nn::utils::clip_grad_norm_(ps, cfg_.grad_clip);
  }
  opt_->step();
  ++step_;
  if (use_ema_)
    ema_update(ema_net_.module(), net_.module(), std::min(cfg_.ema_decay, (1.0 + step_) / (kEmaWarmup + step_)));
  const auto v = terms.to(torch::kDouble);
  return {v[0].item<double>(), v[1].item<double>(), v[2].item<double>(), v[3].item<double>(), v[4].item<double>()};
}

EpochStats Trainer::train_epoch(int epoch, double lr, bool frozen) {
  const auto t0 = SteadyClock::now();
  for (auto& p : net_.encoder_parameters()) p.set_requires_grad(!frozen);
  opt_->param_groups()[0].options().set_lr(lr * o_.encoder_lr_multiplier);
  opt_->param_groups()[1].options().set_lr(lr);
  const int steps = steps_per_epoch();
  const AugmentOptions aug = training_augmentation();
  const auto weights = sampling_weights(train_labels_, cfg_.positive_oversampling);
  BatchLoader loader(*train_store_, cfg_, aug,
                     epoch_draws(weights, static_cast<size_t>(steps) * cfg_.batch_size, o_.seed, epoch),
                     cfg_.batch_size, o_.seed, epoch, loader_threads_, cfg_.queue_length, c_.rank(), c_.world());
  Progress progress("train: epoch " + std::to_string(epoch + 1) + "/" + std::to_string(schedule_epochs_),
                    static_cast<int>(loader.batches()), o_.progress && c_.main(), "steps",
                    Progress::Mode::TerminalOnly);
  EpochStats s;
  net_.module().train();
  const bool online = cfg_.mine_online;
  if (online) {
    online_sum_ = torch::zeros({static_cast<int64_t>(train_store_->size()), cfg_.candidates}, torch::kDouble);
    online_count_ = torch::zeros_like(online_sum_);
  }
  for (;;) {
    const auto t_wait = SteadyClock::now();
    auto b = loader.next();
    s.wait_s += seconds_since(t_wait);
    if (!b) break;
    torch::Tensor present;
    s.add(train_step(*b, online ? &present : nullptr),
          c_.world() > 1 ? static_cast<size_t>(cfg_.batch_size) : b->cases.size());
    if (online) record_online(*b, present);
    char loss[32];
    std::snprintf(loss, sizeof loss, "loss %.4f", s.mean(&StepLosses::total));
    progress.update(s.steps, loss);
  }
  s.train_s = seconds_since(t0);
  return s;
}

// One centred, unaugmented sample per validation case through the judged network (loss, vessel
// Dice), and the case's 14 probabilities as prediction computes them: a Predictor over the network
// in memory, without flips or the location prior, on the case's ROI input (made once per run).
// Each rank judges its share of the cases; the sums and probabilities are summed over the ranks.
// `count` > 0: only the first `count` cases, on this rank alone (a budgeted run times one case to
// plan its validations).
Validation Trainer::validate(size_t count) {
  torch::NoGradGuard ng;
  Network& net = judged();
  net.module().eval();
  std::optional<Predictor> predictor;
  if (net.unet) predictor.emplace(info_, std::vector<MultiTaskUNet>{net.unet}, judging_options());
  Validation v;
  AugmentOptions none;
  none.enabled = false;
  const size_t n = count > 0 ? std::min(count, val_store_->size()) : val_store_->size();
  const auto [lo, hi] = count > 0 ? std::pair<size_t, size_t>{0, n} : rank_share(n, c_.rank(), c_.world());
  // per case: 14 probabilities and 14 labels; then the loss and the Dice sums (summed over the ranks)
  torch::Tensor sums = torch::zeros({static_cast<int64_t>(n * 2 * kNumLabels + 3)}, torch::kDouble);
  auto acc = sums.accessor<double, 1>();
  double& loss = acc[static_cast<int64_t>(n * 2 * kNumLabels)];
  double& inter = acc[static_cast<int64_t>(n * 2 * kNumLabels + 1)];
  double& total = acc[static_cast<int64_t>(n * 2 * kNumLabels + 2)];
  for (size_t i = lo; i < hi; ++i) {
    const auto c = val_store_->get(i);
    std::mt19937_64 rng(0);
    std::vector<Sample> s{make_sample(*c, cfg_, rng, none)};
    Batch b = collate(s, {i});
    if (net.slices) {  // the 2.5D family: a point's (or the middle) window's loss, the case's windows' largest
      loss += slice_batch_loss(net, b, local_collective()).item<double>();
      const auto p = slice_case_probabilities(net, *c);
      for (int k = 0; k < kNumLabels; ++k) {
        acc[static_cast<int64_t>(i * 2 * kNumLabels + k)] = p[k];
        acc[static_cast<int64_t>(i * 2 * kNumLabels + kNumLabels + k)] = c->labels[k];
      }
      continue;
    }
    const auto out = net.unet->forward(b.image.to(dev_));
    Targets t{b.vessel.to(dev_), b.aneurysm.to(dev_), b.labels.to(dev_), b.modality.to(dev_), b.has_vessels.to(dev_)};
    loss += multitask_loss(out, t, pos_weight_, cfg_.loss_weights).total.item<double>();
    std::array<double, kNumLabels> p{};
    if (cfg_.candidates > 0) {  // the coarse model's prediction, Present mixed with this stage's judgements
      SeriesPrediction r = coarse_.at(c->id);
      predictor->judge_candidates(c->image, r);
      p = r.probability;
    } else {
      if (!val_inputs_.count(i)) val_inputs_.emplace(i, roi_input(c->image, c->roi_centre, cfg_, c->background));
      p = predictor->predict_roi(c->image, c->roi_centre, val_inputs_.at(i)).probability;
    }
    for (int k = 0; k < kNumLabels; ++k) {
      acc[static_cast<int64_t>(i * 2 * kNumLabels + k)] = p[k];
      acc[static_cast<int64_t>(i * 2 * kNumLabels + kNumLabels + k)] = c->labels[k];
    }
    if (c->has_vessels) {  // foreground Dice pooled over classes 1..13
      const auto pred = out.vessel.argmax(1).to(torch::kCPU);
      const auto gt = b.vessel;
      inter += 2.0 * ((pred == gt) & (gt > 0)).sum().item<double>();
      total += (pred > 0).sum().item<double>() + (gt > 0).sum().item<double>();
    }
  }
  if (count == 0) c_.sum(sums);
  std::vector<std::array<int, kNumLabels>> truth(n);
  std::vector<std::array<double, kNumLabels>> prob(n);
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < kNumLabels; ++k) {
      prob[i][k] = acc[static_cast<int64_t>(i * 2 * kNumLabels + k)];
      truth[i][k] = static_cast<int>(acc[static_cast<int64_t>(i * 2 * kNumLabels + kNumLabels + k)]);
    }
  if (n) v.loss = loss / static_cast<double>(n);
  if (total > 0) v.vessel_dice = inter / total;
  v.score = competition_score(truth, prob);
  v.selection = selection_score(v.score);
  if (cfg_.vessel_stage) v.selection = std::max(0.0, v.vessel_dice);  // a vessel model is judged by its vessels
  net.module().train();
  return v;
}

// The epoch's log line, checkpoints (last.pt always, best.pt when the selection score improved)
// and summary on the console.
void Trainer::end_epoch(int epoch, double lr, bool frozen, const EpochStats& s, double epoch_s, bool validated,
                        const Validation& v, bool improved) {
  if (!c_.main()) return;
  const double elapsed = budget_->elapsed_s();
  const bool has_val = val_store_->size() > 0;
  json rec = {{"epoch", epoch + 1},
              {"step", step_},
              {"lr", lr},
              {"encoder_frozen", frozen},
              {"train_loss", s.mean(&StepLosses::total)},
              {"train_vessel", s.mean(&StepLosses::vessel)},
              {"train_aneurysm", s.mean(&StepLosses::aneurysm)},
              {"train_labels", s.mean(&StepLosses::labels)},
              {"train_modality", s.mean(&StepLosses::modality)},
              {"samples_per_s", s.samples / std::max(1e-9, s.train_s)},
              {"loader_wait_s", s.wait_s},
              {"epoch_s", epoch_s},
              {"elapsed_s", elapsed},
              {"best", improved && has_val}};
  if (validated) rec.update(validation_json(v));
  const json meta = {{"epoch", epoch + 1},
                     {"step", step_},
                     {"best_selection", best_},
                     {"schedule_epochs", schedule_epochs_},
                     {"planned_epochs", cfg_.epochs},
                     {"elapsed_s", elapsed},
                     {"seed", o_.seed},
                     {"configuration", cfg_.name},
                     {"fold", o_.fold},
                     {"in_channels", in_channels_},
                     {"world_size", c_.world()}};
  torch::nn::Module* ema = use_ema_ ? &ema_net_.module() : nullptr;
  save_checkpoint(last_file_, net_.module(), ema, *opt_, meta);
  if (improved) save_checkpoint(best_file_, net_.module(), ema, *opt_, meta);
  {
    std::ofstream log(log_file_, std::ios::app);
    log << rec.dump() << "\n";
    if (!log) throw Error(ErrorCode::OutputFailed, "cannot append to the training log", log_file_.string());
  }
  if (!o_.progress) return;
  std::string val = "no validation";
  if (validated) {
    val = fmt::format("val selection {:.3f}", v.selection);
    if (v.score.score) val += fmt::format(" score {:.3f}", *v.score.score);
  } else if (has_val) {
    val = fmt::format("(validated every {} epochs)", budget_->validate_every());
  }
  spdlog::info("train: epoch {}/{}  loss {:.4f}  {}  {:.1f} samples/s  {:.0f} s", epoch + 1, schedule_epochs_,
               s.mean(&StepLosses::total), val, s.samples / std::max(1e-9, s.train_s), elapsed);
}

TrainResult Trainer::run() {
  // Prepare the run (the time budget counts the set-up)
  const auto t_start = SteadyClock::now();
  prepare_configuration();
  prepare_cases();
  const bool has_val = val_store_->size() > 0;
  budget_ = std::make_unique<TimeBudget>(cfg_.time_budget_s, has_val, t_start);
  learn_roi_offsets_from_cases();
  find_candidates();
  cache_training_rois();
  loader_threads_ = loader_threads(cfg_, *train_store_, o_.workers);
  prepare_model_info();
  build_networks();
  resume();
  resume_mined_weights();
  c_.overlap_gradients(net_.parameters());  // several ranks: the sums start during the backward pass
  spdlog::info(
      "training {} fold {}/{}: {} training and {} validation cases ({}), {} input channel(s), {} steps of {} per "
      "epoch, up to {} epochs{}, {} on {} thread(s){}",
      cfg_.name, o_.fold, folds_.k, train_store_->size(), val_store_->size(),
      train_store_->preloaded() ? "in memory"
      : train_store_->site(0)   ? "as crops around their candidates"
                                : "read per sample",
      in_channels_, steps_per_epoch(), cfg_.batch_size, cfg_.epochs,
      budget_->enabled() ? fmt::format(" within {:.0f} s", budget_->budget_s()) : std::string(), cfg_.device,
      torch::get_num_threads(), c_.world() > 1 ? fmt::format(" per rank, {} ranks", c_.world()) : std::string());
  // A validation's cost, from one case on rank 0 (whose ROI input is kept), times its share of the cases.
  if (budget_->enabled() && has_val && c_.main()) {
    const auto t = SteadyClock::now();
    validate(1);
    const auto [lo, hi] = rank_share(val_store_->size(), 0, c_.world());
    budget_->set_validation_s(seconds_since(t) * static_cast<double>(hi - lo));
  }
  TrainResult r;
  r.run_dir = run_dir_;
  for (int epoch = start_epoch_; epoch < cfg_.epochs && epoch < schedule_epochs_; ++epoch) {
    // One epoch
    const auto t_epoch = SteadyClock::now();
    const bool frozen = epoch < o_.freeze_encoder_epochs;
    const double lr = schedule(cfg_, epoch, schedule_epochs_);
    const EpochStats s = train_epoch(epoch, lr, frozen);
    // Validation: on the run's last epoch, else every epoch (budgeted: every few)
    bool last = epoch + 1 >= std::min(cfg_.epochs, schedule_epochs_) || budget_->no_room_for_another(s.train_s);
    bool validating = has_val && (last || budget_->periodic_validation(epoch, start_epoch_));
    if (c_.world() > 1) {  // rank 0's clock decides
      const auto d = c_.from_rank0({last, validating});
      last = d[0], validating = d[1];
    }
    Validation v;
    if (validating) {
      const auto t_val = SteadyClock::now();
      v = validate();
      budget_->set_validation_s(seconds_since(t_val));
    }
    if (c_.main() && has_val && !validating && budget_->retime_validation(epoch, start_epoch_)) {
      const auto t_case = SteadyClock::now();
      validate(1);
      const auto [lo, hi] = rank_share(val_store_->size(), 0, c_.world());
      budget_->retimed_validation_s(seconds_since(t_case) * static_cast<double>(hi - lo), s.train_s);
    }
    if (cfg_.mine_candidates_every > 0 && (epoch + 1) % cfg_.mine_candidates_every == 0 && !last)
      mine_candidates(epoch);
    if (cfg_.mine_online && !last) mine_online(epoch);
    const bool improved = !has_val || (validating && v.selection > best_);
    if (improved && has_val) best_ = v.selection;
    schedule_epochs_ = static_cast<int>(c_.from_rank0(
        {budget_->fit_schedule(epoch, start_epoch_, s.train_s, validating && last, schedule_epochs_, cfg_.epochs)})[0]);
    // Checkpoint and log
    end_epoch(epoch, lr, frozen, s, seconds_since(t_epoch), validating, v, improved);
    r.epochs_done = epoch + 1;
    r.train_loss_last = s.mean(&StepLosses::total);
    if (o_.stop_after_epochs > 0 && epoch + 1 - start_epoch_ >= o_.stop_after_epochs) break;
    if (budget_->enabled() && last && epoch + 1 < std::min(cfg_.epochs, schedule_epochs_)) {  // the next would not fit
      spdlog::info("time budget {} s reached after epoch {}", budget_->budget_s(), epoch + 1);
      r.stopped_by_budget = true;
      break;
    }
  }
  r.best_selection = best_;
  return r;
}

}  // namespace

TrainResult train(const TrainOptions& o) { return Trainer(o).run(); }

}  // namespace aneura
