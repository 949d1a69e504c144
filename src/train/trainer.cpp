#include "train/trainer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "dataset/case_cache.hpp"
#include "evaluate/metrics.hpp"
#include "harmonize/pipeline.hpp"
#include "model/registry.hpp"
#include "plan/hardware.hpp"
#include "plan/planner.hpp"
#include "train/folds.hpp"
#include "train/loader.hpp"
#include "train/losses.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace aneura {

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The validation selection score: the competition score when every column is defined, else the
// same weighting over the defined columns (defined_columns_score); 0 when none is.
double selection_score(const CompetitionScore& s) { return defined_columns_score(s).value_or(0.0); }

// Learning rate at `epoch` of `total`: cosine (AdamW) or nnU-Net's poly (SGD).
double schedule(const Configuration& c, int epoch, int total) {
  const double t = std::clamp(static_cast<double>(epoch) / std::max(1, total), 0.0, 1.0);
  if (c.optimizer == "adamw") return c.learning_rate * 0.5 * (1 + std::cos(M_PI * t));
  return c.learning_rate * std::pow(1 - t, 0.9);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Configuration& c, MultiTaskUNet& net) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(encoder_parameters(net));
  groups.emplace_back(decoder_and_head_parameters(net));
  if (c.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(c.learning_rate).weight_decay(c.weight_decay));
  return std::make_unique<torch::optim::SGD>(
      groups, torch::optim::SGDOptions(c.learning_rate).momentum(0.99).nesterov(true).weight_decay(c.weight_decay));
}

void copy_weights(MultiTaskUNet& from, MultiTaskUNet& to) {
  torch::NoGradGuard ng;
  auto src = from->named_parameters(), dst = to->named_parameters();
  for (auto& p : dst) p.value().copy_(src[p.key()]);
  auto sb = from->named_buffers(), db = to->named_buffers();
  for (auto& b : db) b.value().copy_(sb[b.key()]);
}

void ema_update(MultiTaskUNet& ema, MultiTaskUNet& net, double decay) {
  torch::NoGradGuard ng;
  auto src = net->named_parameters(), dst = ema->named_parameters();
  for (auto& p : dst) p.value().mul_(decay).add_(src[p.key()], 1 - decay);
}

torch::serialize::InputArchive open_checkpoint(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) throw Error(ErrorCode::InputNotFound, "no checkpoint", file.string());
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(file.string());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::CorruptInput, "unreadable checkpoint (not a LibTorch archive or truncated)", file.string());
  }
  return ar;
}

void load_module(torch::serialize::InputArchive& ar, const std::string& key, MultiTaskUNet& net, const fs::path& file) {
  try {
    // LibTorch's load replaces a parameter of another shape without complaint: compare shapes.
    std::vector<std::vector<int64_t>> shapes;
    for (const auto& p : net->parameters()) shapes.push_back(p.sizes().vec());
    torch::serialize::InputArchive sub;
    ar.read(key, sub);
    net->load(sub);
    size_t i = 0;
    for (const auto& p : net->parameters())
      if (p.sizes().vec() != shapes.at(i++)) throw std::runtime_error("a parameter has another shape");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::CorruptInput,
                "checkpoint '" + key + "' does not fit this network (other plans or channels?): " + std::string(e.what()).substr(0, 200),
                file.string());
  }
}

json read_meta(torch::serialize::InputArchive& ar, const fs::path& file) {
  try {
    c10::IValue v;
    ar.read("meta", v);
    return json::parse(v.toStringRef());
  } catch (const std::exception& e) {
    throw Error(ErrorCode::CorruptInput, "checkpoint has no readable 'meta' record", file.string());
  }
}

struct Validation {
  double loss = 0, selection = 0, vessel_dice = -1;
  CompetitionScore score;
};

// 14 probabilities [14] (CPU, double) as an array.
std::array<double, kNumLabels> to_array(const torch::Tensor& p) {
  const auto d = p.to(torch::kCPU, torch::kDouble).contiguous();
  std::array<double, kNumLabels> out{};
  std::copy(d.data_ptr<double>(), d.data_ptr<double>() + kNumLabels, out.begin());
  return out;
}

// One centred, unaugmented sample per validation case through `net` (loss, vessel Dice), and the
// case's probabilities over its whole ROI (competition score). Windowed: the ROI inputs are made
// once (first call) and kept in `roi_inputs`, as they are the same every epoch. `count` > 0: only
// the first `count` cases (a budgeted run times one case to plan its validations).
Validation validate(MultiTaskUNet& net, const CaseStore& store, const Configuration& cfg, const torch::Tensor& pos_weight,
                    torch::Device dev, std::vector<torch::Tensor>& roi_inputs, size_t count = 0) {
  torch::NoGradGuard ng;
  net->eval();
  Validation v;
  std::vector<std::array<int, kNumLabels>> truth;
  std::vector<std::array<double, kNumLabels>> prob;
  AugmentOptions none;
  none.enabled = false;
  double inter = 0, total = 0;
  const size_t n = count > 0 ? std::min(count, store.size()) : store.size();
  for (size_t i = 0; i < n; ++i) {
    const auto c = store.get(i);
    std::mt19937_64 rng(0);
    std::vector<Sample> s{make_sample(*c, cfg, rng, none)};
    Batch b = collate(s, {i});
    const auto out = net->forward(b.image.to(dev));
    Targets t{b.vessel.to(dev), b.aneurysm.to(dev), b.labels.to(dev), b.modality.to(dev), b.has_vessels.to(dev)};
    v.loss += multitask_loss(out, t, pos_weight, cfg.loss_weights).total.item<double>();
    // the case's probabilities: the centred sample is the whole ROI unless windowed
    if (windowed(cfg)) {
      if (roi_inputs.size() <= i) roi_inputs.push_back(roi_input(c->image, c->roi_centre, cfg, c->background).x);
      auto maps = roi_forward(net, roi_inputs[i], cfg, false).aneurysm;
      damp_field_edge(maps, field_edge_weights(c->image.geom, roi_grid(c->roi_centre, cfg), cfg.field_edge_mm));
      prob.push_back(to_array(heatmap_probabilities(maps)));
    } else {
      prob.push_back(to_array(heatmap_probabilities(torch::softmax(out.aneurysm[0].to(torch::kFloat), 0))));
    }
    truth.push_back(c->labels);
    if (c->has_vessels) {  // foreground Dice pooled over classes 1..13
      const auto pred = out.vessel.argmax(1).to(torch::kCPU);
      const auto gt = b.vessel;
      inter += 2.0 * ((pred == gt) & (gt > 0)).sum().item<double>();
      total += (pred > 0).sum().item<double>() + (gt > 0).sum().item<double>();
    }
  }
  if (n) v.loss /= static_cast<double>(n);
  if (total > 0) v.vessel_dice = inter / total;
  v.score = competition_score(truth, prob);
  v.selection = selection_score(v.score);
  net->train();
  return v;
}

json score_json(const Validation& v) {
  json auc = json::object();
  for (int c = 0; c < kNumLabels; ++c) auc[label_names()[c]] = v.score.auc[c] ? json(*v.score.auc[c]) : json(nullptr);
  return {{"val_loss", v.loss}, {"val_score", v.score.score ? json(*v.score.score) : json(nullptr)},
          {"val_selection", v.selection}, {"val_auc", auc}, {"val_vessel_dice", v.vessel_dice < 0 ? json(nullptr) : json(v.vessel_dice)}};
}

void save_checkpoint(const fs::path& file, MultiTaskUNet& net, MultiTaskUNet* ema, torch::optim::Optimizer& opt, const json& meta) {
  torch::serialize::OutputArchive ar, m, e, o;
  net->save(m);
  ar.write("model", m);
  if (ema) {
    (*ema)->save(e);
    ar.write("ema", e);
  }
  opt.save(o);
  ar.write("optimizer", o);
  ar.write("meta", c10::IValue(meta.dump()));
  write_atomically(file, [&](const fs::path& tmp) { ar.save_to(tmp.string()); });
}

}  // namespace

RoiOutput roi_forward(MultiTaskUNet& net, const torch::Tensor& x, const Configuration& cfg, bool mirror, bool vessels, int batch) {
  torch::NoGradGuard ng;
  const torch::Device dev = net->parameters().front().device();
  const auto in = mirror ? mirror_input(x) : x;
  const std::array<int64_t, 3> roi{x.size(1), x.size(2), x.size(3)};
  const auto starts = windowed(cfg) ? window_starts(roi, cfg.patch_size, cfg.window_overlap) : std::vector<std::array<int64_t, 3>>{{0, 0, 0}};
  const std::array<int64_t, 3> p = windowed(cfg) ? std::array<int64_t, 3>{cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]} : roi;
  RoiOutput r;
  r.aneurysm = torch::zeros({kNumLabels, roi[0], roi[1], roi[2]});
  if (vessels) r.vessel = torch::zeros({14, roi[0], roi[1], roi[2]});
  auto cover = torch::zeros({roi[0], roi[1], roi[2]});
  torch::Tensor labels, modality;
  for (size_t b0 = 0; b0 < starts.size(); b0 += static_cast<size_t>(std::max(1, batch))) {
    const size_t b1 = std::min(starts.size(), b0 + static_cast<size_t>(std::max(1, batch)));
    std::vector<torch::Tensor> w;
    for (size_t i = b0; i < b1; ++i)
      w.push_back(in.slice(1, starts[i][0], starts[i][0] + p[0]).slice(2, starts[i][1], starts[i][1] + p[1]).slice(3, starts[i][2], starts[i][2] + p[2]));
    auto xb = torch::stack(w).to(dev);
    if (cfg.channels_last && dev.is_cuda()) xb = xb.contiguous(at::MemoryFormat::ChannelsLast3d);
    NetworkOutput out;
    {
      CudaAutocast ac(cfg.mixed_precision && dev.is_cuda());
      out = net->forward(xb);
    }
    const auto l = torch::sigmoid(out.labels.to(torch::kCPU, torch::kDouble)).amax(0);
    labels = labels.defined() ? torch::maximum(labels, l) : l;
    const auto m = torch::softmax(out.modality.to(torch::kCPU, torch::kDouble), 1).sum(0);
    modality = modality.defined() ? modality + m : m;
    const auto a = torch::softmax(out.aneurysm.to(torch::kFloat), 1).to(torch::kCPU);
    const auto v = vessels ? torch::softmax(out.vessel.to(torch::kFloat), 1).to(torch::kCPU) : torch::Tensor();
    for (size_t i = b0; i < b1; ++i) {
      auto at = [&](const torch::Tensor& t) {
        return t.slice(-3, starts[i][0], starts[i][0] + p[0]).slice(-2, starts[i][1], starts[i][1] + p[1]).slice(-1, starts[i][2], starts[i][2] + p[2]);
      };
      at(r.aneurysm).add_(a[static_cast<int64_t>(i - b0)]);
      if (vessels) at(r.vessel).add_(v[static_cast<int64_t>(i - b0)]);
      at(cover).add_(1);
    }
  }
  r.aneurysm /= cover;
  if (vessels) r.vessel /= cover;
  r.head_labels = labels.contiguous();
  r.modality = (modality / static_cast<double>(starts.size())).contiguous();
  if (mirror) {  // back to the unmirrored ROI: column c of the mirrored output is twin(c) here
    r.head_labels = r.head_labels.index_select(0, label_twin_lut()).contiguous();
    r.aneurysm = r.aneurysm.index_select(0, aneurysm_value_twin_lut()).flip({1}).contiguous();
    if (vessels) r.vessel = r.vessel.index_select(0, cowseg_twin_lut()).flip({1}).contiguous();
  }
  return r;
}

torch::Tensor heatmap_probabilities(const torch::Tensor& aneurysm) {
  const auto a = aneurysm.to(torch::kCPU, torch::kDouble).flatten(1);  // [14, V]
  const int64_t k = a.size(0);
  return torch::cat({a.slice(0, 1, k).amax(1), (1 - a[0]).amax().unsqueeze(0)}).contiguous();
}

torch::Tensor field_distance_mm(const Geometry& image, const Geometry& roi) {
  const auto& n = roi.size;
  // image index = t + M roi index (both grids are affine)
  const Vec3 t = image.world_to_index(roi.index_to_world({0, 0, 0}));
  std::array<Vec3, 3> m;
  for (int c = 0; c < 3; ++c) {
    Vec3 e{0, 0, 0};
    e[c] = 1;
    m[static_cast<size_t>(c)] = image.world_to_index(roi.index_to_world(e)) - t;
  }
  std::array<torch::Tensor, 3> axis;
  for (int c = 0; c < 3; ++c) {
    std::vector<int64_t> shape{1, 1, 1};
    shape[static_cast<size_t>(c)] = n[c];
    axis[static_cast<size_t>(c)] = torch::arange(n[c], torch::kDouble).reshape(shape);
  }
  torch::Tensor dist;
  for (int k = 0; k < 3; ++k) {
    const auto idx = axis[0] * m[0][k] + axis[1] * m[1][k] + axis[2] * m[2][k] + t[k];
    const auto d = torch::minimum(idx + 0.5, image.size[k] - 0.5 - idx) * image.spacing[k];
    dist = dist.defined() ? torch::minimum(dist, d) : d;
  }
  return dist.expand({n[0], n[1], n[2]}).contiguous();
}

torch::Tensor field_edge_weights(const torch::Tensor& distance_mm, double margin_mm) {
  if (margin_mm <= 0) return torch::ones(distance_mm.sizes());
  return ((distance_mm - margin_mm / 2) / (margin_mm / 2)).clamp(0, 1).to(torch::kFloat).contiguous();
}

torch::Tensor field_edge_weights(const Geometry& image, const Geometry& roi, double margin_mm) {
  return field_edge_weights(field_distance_mm(image, roi), margin_mm);
}

void damp_field_edge(torch::Tensor& aneurysm, const torch::Tensor& w) {
  const int64_t k = aneurysm.size(0);
  auto fg = aneurysm.slice(0, 1, k) * w.to(aneurysm.scalar_type()).unsqueeze(0);
  aneurysm = torch::cat({(1 - fg.sum(0)).clamp_min(0).unsqueeze(0), fg}).contiguous();
}

std::array<double, kNumLabels> predict_case(MultiTaskUNet& net, const TrainCase& c, const Configuration& cfg, bool head) {
  const bool was_training = net->is_training();
  net->eval();
  const RoiInput in = roi_input(c.image, c.roi_centre, cfg, c.background);
  RoiOutput r = roi_forward(net, in.x, cfg, false);
  damp_field_edge(r.aneurysm, field_edge_weights(c.image.geom, in.grid, cfg.field_edge_mm));
  const auto out = to_array(head ? r.head_labels : heatmap_probabilities(r.aneurysm));
  if (was_training) net->train();
  return out;
}

void load_weights(const fs::path& checkpoint, MultiTaskUNet& net, bool ema) {
  auto ar = open_checkpoint(checkpoint);
  std::vector<std::string> keys = ar.keys();
  const bool has_ema = std::find(keys.begin(), keys.end(), "ema") != keys.end();
  load_module(ar, ema && has_ema ? "ema" : "model", net, checkpoint);
}

ModelInfo read_model_info(const fs::path& model_dir) {
  const fs::path file = model_dir / "model.json";
  std::ifstream in(file);
  if (!in) throw Error(ErrorCode::InputNotFound, "no model.json (train a model first)", file.string());
  try {
    const json j = json::parse(in);
    ModelInfo m;
    m.cfg = plans_from_json(j.at("plans")).get(j.at("configuration"));
    m.in_channels = j.at("in_channels");
    m.folds = j.at("folds");
    m.harmonize = harmonize_params_from_json(j.at("harmonize"));
    if (j.contains("prior")) m.prior = j.at("prior").get<std::array<double, kNumLabels>>();
    if (j.contains("location_points")) m.locations = LocationPrior::from_json(j.at("location_points"));
    if (j.contains("roi_offsets")) m.roi_offsets = RoiOffsets::from_json(j.at("roi_offsets"));  // else the defaults (older models)
    return m;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad model.json: ") + e.what(), file.string());
  } catch (const Error& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad model.json: ") + e.what(), file.string());
  }
}

TrainResult train(const TrainOptions& o) {
  const auto t_start = Clock::now();
  const fs::path plans_file = o.plans_file.empty() ? o.work / "plans.json" : o.plans_file;
  const Plans plans = read_plans(plans_file);
  Configuration cfg = plans.get(o.configuration);
  if (!o.device.empty()) cfg.device = o.device;
  if (o.epochs > 0) cfg.epochs = o.epochs;
  if (o.time_budget_s >= 0) cfg.time_budget_s = o.time_budget_s;
  if (o.workers >= 0) cfg.loader_workers = o.workers;
  if (cfg.device == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::Usage, "configuration '" + cfg.name + "' wants CUDA, but this LibTorch has no CUDA device; use --device cpu "
                "or build against the CUDA LibTorch (README)");
  const torch::Device dev(cfg.device == "cuda" ? torch::kCUDA : torch::kCPU);
  set_cpu_threads(o.threads > 0 ? o.threads : static_cast<int>(default_threads()));

  // Cases and folds
  const auto cases = list_cases(o.work);
  const Folds folds = load_or_make_folds(o.work, cases, cfg.folds, 12345);
  if (o.fold < 0 || o.fold >= folds.k)
    throw Error(ErrorCode::Usage, "fold " + std::to_string(o.fold) + " does not exist (the plans have " + std::to_string(folds.k) + ")");
  const auto train_ids = folds.train(o.fold);
  const auto val_ids = folds.k > 1 ? folds.val[o.fold] : std::vector<std::string>{};
  if (train_ids.empty())
    throw Error(ErrorCode::NoDicom, "empty training set: no labelled case in the case cache", (o.work / "cases").string());
  const auto hw = probe_hardware(o.work);
  const double ram_budget = 0.4 * hw.ram_available_gb * 1e9;
  CaseStore train_store(o.work, train_ids, ram_budget);
  CaseStore val_store(o.work, val_ids, ram_budget);
  const int in_channels = input_channels(cfg, static_cast<int>(train_store.get(0)->image.volumes));
  std::map<std::string, std::array<int, kNumLabels>> labels_by_id;
  for (const auto& ci : cases) labels_by_id[ci.id] = ci.labels;
  std::vector<std::array<int, kNumLabels>> train_labels;
  for (const auto& id : train_ids) train_labels.push_back(labels_by_id.at(id));
  if (train_store.preloaded())  // (read per sample, a case of other channels fails when batched)
    for (size_t i = 0; i < train_store.size(); ++i) {
      const auto c = train_store.get(i);
      if (input_channels(cfg, static_cast<int>(c->image.volumes)) != in_channels)
        throw Error(ErrorCode::CorruptInput, "cases have different channel counts (" + std::to_string(train_store.get(0)->image.volumes) + " vs " +
                    std::to_string(c->image.volumes) + "); preprocess them with the same options", c->id);
    }

  // ROI offsets from the cases' localizer points (anchor -> the centre of their aneurysms, every
  // location once), so the ROI sits where aneurysms are on this data's heads; the defaults stay for
  // rules with fewer than 5 positive cases. Every fold's cases, as the location prior below: the
  // folds of one model share model.json, so they must share the offsets.
  std::vector<std::pair<RoiAnchor, std::vector<std::pair<Vec3, int>>>> anchored;
  for (const CaseStore* store : std::initializer_list<const CaseStore*>{&train_store, &val_store})
    for (size_t i = 0; i < store->size(); ++i) {
      if (!labels_by_id.at(store->id(i))[kNumLabels - 1]) continue;
      const auto c = store->get(i);
      anchored.push_back({c->roi_anchor, c->points});
    }
  const RoiOffsets roi_offsets = learn_roi_offsets(anchored);
  for (int r = 0; r < kRoiRules; ++r)
    if (roi_offsets.cases[r])
      spdlog::info("ROI centre: {} rule offset P {:+.1f} S {:+.1f} mm, learned from {} positive cases", roi_rule_name(static_cast<RoiRule>(r)),
                   roi_offsets.by_rule[r][1], roi_offsets.by_rule[r][2], roi_offsets.cases[r]);
  train_store.set_roi_offsets(roi_offsets);
  val_store.set_roi_offsets(roi_offsets);

  if (windowed(cfg)) {  // training windows are crops of ROIs made once (make_roi_case)
    const auto t_roi = Clock::now();
    if (train_store.cache_rois(cfg, static_cast<int>(default_threads()), ram_budget))
      spdlog::info("ROI inputs of {} training cases made in {:.1f} s", train_store.size(), seconds_since(t_roi));
  }

  // Positive weights of the BCE: negatives / positives per column, in [1, 20].
  auto pos_weight = torch::ones({kNumLabels});
  for (int c = 0; c < kNumLabels; ++c) {
    double pos = 0;
    for (const auto& l : train_labels) pos += l[c];
    const double neg = static_cast<double>(train_labels.size()) - pos;
    pos_weight[c] = static_cast<float>(std::clamp(pos > 0 ? neg / pos : 20.0, 1.0, 20.0));
  }
  pos_weight = pos_weight.to(dev);

  // Run folders
  const fs::path model_dir = o.work / "runs" / cfg.name;
  const fs::path run_dir = model_dir / ("fold_" + std::to_string(o.fold));
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw Error(ErrorCode::OutputFailed, "cannot create the run folder: " + ec.message(), run_dir.string());
  // Prior: the prevalence per column over every labelled case (all folds), the documented
  // prediction for a series that cannot be read.
  std::array<double, kNumLabels> prior{};
  int labelled = 0;
  for (const auto& ci : cases) labelled += ci.labelled;
  for (const auto& ci : cases)
    if (ci.labelled)
      for (int c = 0; c < kNumLabels; ++c) prior[c] += ci.labels[c] / static_cast<double>(labelled);
  // Location prior: every case's localizer points (all folds, as the prior) relative to its ROI
  // centre, from the positive cases gathered for the ROI offsets above (no case is read again).
  LocationPrior locations;
  for (const auto& [anchor, points] : anchored)
    for (const auto& [p, column] : points) locations.add(p - roi_offsets.centre(anchor), column);
  // How the cases were made: prediction repeats it on new series.
  HarmonizeParams made;
  if (const auto p = read_preprocess_params(o.work)) {
    made = *p;
    if (!cfg.normalization.is_null() && !cfg.normalization.empty() && cfg.normalization != normalization_json(made))
      spdlog::warn("the plans' normalization {} is not how the cases were made ({}, {}): training reads the cases and "
                   "prediction repeats their harmonization; re-run `aneura plan` to record it",
                   cfg.normalization.dump(), normalization_json(made).dump(), (o.work / "preprocess.json").string());
  } else {
    made.spacing = train_store.get(0)->image.geom.spacing;
    spdlog::warn("{} missing (cache from an older aneura): prediction will harmonize with the default parameters at {} mm",
                 (o.work / "preprocess.json").string(), made.spacing[0]);
  }
  const json harmonize = harmonize_params_to_json(made);
  {
    Plans one;
    one.default_configuration = cfg.name;
    one.global = plans.global;
    one.raw[cfg.name] = configuration_to_json(cfg);
    write_text_atomically(model_dir / "model.json",
                          json{{"configuration", cfg.name}, {"in_channels", in_channels}, {"folds", folds.k},
                               {"modalities", modality_names()}, {"labels", label_names()}, {"harmonize", harmonize},
                               {"prior", prior}, {"location_points", locations.to_json()}, {"roi_offsets", roi_offsets.to_json()},
                               {"plans", to_json(one)}}
                                  .dump(1) + "\n");
  }

  // Model, EMA, optimizer
  torch::manual_seed(o.seed);
  MultiTaskUNet net = build_model(cfg, in_channels);
  MultiTaskUNet ema_net = build_model(cfg, in_channels);
  const bool use_ema = cfg.ema_decay > 0;
  if (!o.init_encoder.empty()) {
    MultiTaskUNet donor = build_model(cfg, in_channels);
    load_weights(o.init_encoder, donor);
    torch::NoGradGuard ng;
    auto src = donor->encoder->named_parameters();
    for (auto& p : net->encoder->named_parameters()) p.value().copy_(src[p.key()]);
    spdlog::info("encoder initialised from {}", o.init_encoder.string());
  }
  net->to(dev);
  ema_net->to(dev);
  copy_weights(net, ema_net);
  for (auto& p : ema_net->parameters()) p.set_requires_grad(false);
  auto opt = make_optimizer(cfg, net);

  int start_epoch = 0, schedule_epochs = cfg.epochs;
  int64_t step = 0;
  double best = -1, elapsed_before = 0;
  const fs::path last_file = run_dir / "last.pt", best_file = run_dir / "best.pt", log_file = run_dir / "log.jsonl";
  if (o.resume) {
    auto ar = open_checkpoint(last_file);
    const json meta = read_meta(ar, last_file);
    load_module(ar, "model", net, last_file);
    if (use_ema) load_module(ar, "ema", ema_net, last_file);
    try {
      torch::serialize::InputArchive oa;
      ar.read("optimizer", oa);
      opt->load(oa);
    } catch (const std::exception& e) {
      throw Error(ErrorCode::CorruptInput, "checkpoint optimizer state does not fit", last_file.string());
    }
    start_epoch = meta.at("epoch");
    step = meta.at("step");
    best = meta.at("best_selection");
    schedule_epochs = meta.at("schedule_epochs");
    if (meta.at("planned_epochs").get<int>() != cfg.epochs) {
      spdlog::warn("resuming with {} epochs where the run planned {}: the schedule changes, so the result differs from an "
                   "uninterrupted run", cfg.epochs, meta.at("planned_epochs").get<int>());
      schedule_epochs = cfg.epochs;
    }
    elapsed_before = meta.at("elapsed_s");
    if (meta.at("seed").get<uint64_t>() != o.seed) spdlog::warn("resuming with seed {} (the run used {})", o.seed, meta.at("seed").get<uint64_t>());
    spdlog::info("resuming {} after epoch {}", run_dir.string(), start_epoch);
  } else {
    fs::remove(log_file, ec);
  }

  const auto weights = sampling_weights(train_labels, cfg.positive_oversampling);
  // An epoch draws one sample per training case, or 4 windows per case when windowed.
  const size_t per_epoch = train_store.size() * (windowed(cfg) ? 4 : 1);
  const int steps = o.steps_per_epoch > 0 ? o.steps_per_epoch
                                          : std::max<int>(1, static_cast<int>((per_epoch + cfg.batch_size - 1) / cfg.batch_size));
  AugmentOptions aug;
  aug.enabled = o.augment;
  aug.roi_spatial_probability = cfg.spatial_augmentation;
  spdlog::info("training {} fold {}/{}: {} training and {} validation cases ({}), {} input channel(s), {} steps of {} per epoch, "
               "up to {} epochs{}, {} on {} thread(s)",
               cfg.name, o.fold, folds.k, train_store.size(), val_store.size(), train_store.preloaded() ? "in memory" : "read per sample",
               in_channels, steps, cfg.batch_size, cfg.epochs,
               cfg.time_budget_s > 0 ? " within " + std::to_string(static_cast<int>(cfg.time_budget_s)) + " s" : std::string(),
               cfg.device, torch::get_num_threads());

  std::vector<torch::Tensor> val_roi_inputs;  // windowed validation: each case's ROI input, made once
  int val_every = 1;                          // epochs between validations (budgeted runs: set after the first)
  double val_s_estimate = 0;                  // seconds of the last validation (budgeted runs: first estimated)
  const bool budgeted = cfg.time_budget_s > 0;
  constexpr int kRefitEpochs = 5;  // budgeted runs: epochs after which the schedule is (re)fitted
  double refit_train_s = 0;        // training seconds of epochs 2 .. kRefitEpochs
  if (budgeted && val_store.size() > 0) {
    // A budgeted run does not validate after its first epoch (a windowed validation is a sliding-
    // window pass over every case's ROI, often many epochs' worth of training): the first
    // validation's cost is estimated from one case, whose ROI input is kept.
    const auto t_one = Clock::now();
    validate(use_ema ? ema_net : net, val_store, cfg, pos_weight, dev, val_roi_inputs, 1);
    val_s_estimate = seconds_since(t_one) * static_cast<double>(val_store.size());
  }
  TrainResult r;
  r.run_dir = run_dir;
  r.best_selection = best;
  net->train();
  const bool tty = isatty(fileno(stderr));
  const bool autocast = cfg.mixed_precision && dev.is_cuda();
  for (int epoch = start_epoch; epoch < cfg.epochs && epoch < schedule_epochs; ++epoch) {
    const auto t_epoch = Clock::now();
    const bool frozen = epoch < o.freeze_encoder_epochs;
    for (auto& p : encoder_parameters(net)) p.set_requires_grad(!frozen);
    const double lr = schedule(cfg, epoch, schedule_epochs);
    opt->param_groups()[0].options().set_lr(lr * o.encoder_lr_multiplier);
    opt->param_groups()[1].options().set_lr(lr);

    BatchLoader loader(train_store, cfg, aug, epoch_draws(weights, static_cast<size_t>(steps) * cfg.batch_size, o.seed, epoch),
                       cfg.batch_size, o.seed, epoch, cfg.loader_workers, cfg.queue_length);
    double sum_total = 0, sum_v = 0, sum_a = 0, sum_l = 0, sum_m = 0, wait_s = 0;
    int n = 0;
    size_t samples = 0;
    for (;;) {
      const auto t_wait = Clock::now();
      auto b = loader.next();
      wait_s += seconds_since(t_wait);
      if (!b) break;
      auto x = b->image.to(dev);
      if (cfg.channels_last && dev.is_cuda()) x = x.contiguous(at::MemoryFormat::ChannelsLast3d);
      Targets t{b->vessel.to(dev), b->aneurysm.to(dev), b->labels.to(dev), b->modality.to(dev), b->has_vessels.to(dev)};
      opt->zero_grad();
      NetworkOutput out;
      {
        CudaAutocast ac(autocast);
        out = net->forward(x);
      }
      if (autocast)
        out = {out.vessel.to(torch::kFloat), out.aneurysm.to(torch::kFloat), out.labels.to(torch::kFloat), out.modality.to(torch::kFloat)};
      const LossTerms l = multitask_loss(out, t, pos_weight, cfg.loss_weights);
      l.total.backward();
      if (cfg.grad_clip > 0) {
        std::vector<torch::Tensor> ps;
        for (auto& p : net->parameters())
          if (p.grad().defined()) ps.push_back(p);
        torch::nn::utils::clip_grad_norm_(ps, cfg.grad_clip);
      }
      opt->step();
      ++step;
      if (use_ema) ema_update(ema_net, net, std::min(cfg.ema_decay, (1.0 + step) / (10.0 + step)));
      sum_total += l.total.item<double>();
      sum_v += l.vessel.item<double>();
      sum_a += l.aneurysm.item<double>();
      sum_l += l.labels.item<double>();
      sum_m += l.modality.item<double>();
      ++n;
      samples += b->cases.size();
      if (o.progress && tty)
        std::fprintf(stderr, "\rtrain: epoch %d/%d  step %d/%zu  loss %.4f   ", epoch + 1, schedule_epochs, n, loader.batches(),
                     sum_total / n);
    }
    const double train_s = seconds_since(t_epoch);
    // Validation: every epoch, except in a budgeted run, where it runs every `val_every` epochs
    // (set after the first) so that it takes at most ~20 % of the training time; always on the
    // epoch the run ends with (so its last weights are judged).
    const int done = epoch + 1 - start_epoch;
    const bool last = epoch + 1 >= std::min(cfg.epochs, schedule_epochs) ||
                      (budgeted && elapsed_before + seconds_since(t_start) + train_s + val_s_estimate > cfg.time_budget_s);
    const bool validating =
        val_store.size() > 0 && (last || (budgeted ? epoch > start_epoch && done % val_every == 0 : true));
    MultiTaskUNet& judged = use_ema ? ema_net : net;
    const auto t_val = Clock::now();
    const Validation v = validating ? validate(judged, val_store, cfg, pos_weight, dev, val_roi_inputs) : Validation{};
    const double val_s = seconds_since(t_val);
    if (validating) val_s_estimate = val_s;
    const bool improved = val_store.size() == 0 || (validating && v.selection > best);
    if (improved) best = val_store.size() ? v.selection : best;
    const double elapsed = elapsed_before + seconds_since(t_start);
    const double epoch_s = seconds_since(t_epoch);
    // After the first epoch of a budgeted run, the validation interval is set and the schedule is
    // fitted to the epochs the budget holds, so the learning rate still decays to its end. A fresh
    // run refits it after each of the next epochs up to kRefitEpochs from the mean training time
    // of the epochs after the first (which warms up and is often slower: fitted on it alone, a
    // demo run left a fifth of its budget unused).
    if (epoch == start_epoch && budgeted && val_store.size() > 0)
      val_every = std::max(1, static_cast<int>(std::ceil(val_s_estimate / (0.2 * std::max(1e-3, train_s)))));
    if (budgeted && start_epoch == 0 && epoch < kRefitEpochs) {
      if (epoch > 0) refit_train_s += train_s;
      const double train_mean = epoch == 0 ? train_s : refit_train_s / epoch;
      const double per_epoch = train_mean + (val_store.size() > 0 ? val_s_estimate / val_every : 0.0);
      const double remaining = cfg.time_budget_s - elapsed - (val_store.size() > 0 && !(validating && last) ? val_s_estimate : 0.0);
      const int fit = std::clamp(epoch + 1 + static_cast<int>(std::max(0.0, remaining) / per_epoch), epoch + 1, cfg.epochs);
      if (fit != schedule_epochs) {
        schedule_epochs = fit;
        spdlog::info("time budget {} s: the schedule is {} to {} epochs ({:.1f} s of training per epoch, validation every {} "
                     "epoch(s) and after the last, {:.1f} s each)", cfg.time_budget_s, epoch == 0 ? "fitted" : "refitted", fit, train_mean,
                     val_every, val_s_estimate);
      }
    }
    json rec = {{"epoch", epoch + 1}, {"step", step}, {"lr", lr}, {"encoder_frozen", frozen},
                {"train_loss", sum_total / std::max(1, n)}, {"train_vessel", sum_v / std::max(1, n)},
                {"train_aneurysm", sum_a / std::max(1, n)}, {"train_labels", sum_l / std::max(1, n)},
                {"train_modality", sum_m / std::max(1, n)}, {"samples_per_s", samples / std::max(1e-9, train_s)},
                {"loader_wait_s", wait_s}, {"epoch_s", epoch_s}, {"elapsed_s", elapsed}, {"best", improved && val_store.size() > 0}};
    if (validating) rec.update(score_json(v));
    const json meta = {{"epoch", epoch + 1}, {"step", step}, {"best_selection", best}, {"schedule_epochs", schedule_epochs},
                       {"planned_epochs", cfg.epochs}, {"elapsed_s", elapsed}, {"seed", o.seed}, {"configuration", cfg.name}, {"fold", o.fold},
                       {"in_channels", in_channels}};
    save_checkpoint(last_file, net, use_ema ? &ema_net : nullptr, *opt, meta);
    if (improved) save_checkpoint(best_file, net, use_ema ? &ema_net : nullptr, *opt, meta);
    {
      std::ofstream log(log_file, std::ios::app);
      log << rec.dump() << "\n";
      if (!log) throw Error(ErrorCode::OutputFailed, "cannot append to the training log", log_file.string());
    }
    if (o.progress) {
      if (tty) std::fprintf(stderr, "\r");
      const std::string val = validating ? "val selection " + std::to_string(v.selection).substr(0, 5) +
                                               (v.score.score ? " score " + std::to_string(*v.score.score).substr(0, 5) : std::string())
                              : val_store.size() ? "(validated every " + std::to_string(val_every) + " epochs)"
                                                 : std::string("no validation");
      std::fprintf(stderr, "train: epoch %d/%d  loss %.4f  %s  %.1f samples/s  %.0f s\n", epoch + 1, schedule_epochs, sum_total / std::max(1, n),
                   val.c_str(), samples / std::max(1e-9, train_s), elapsed);
    }
    r.epochs_done = epoch + 1;
    r.train_loss_last = sum_total / std::max(1, n);
    if (o.stop_after_epochs > 0 && epoch + 1 - start_epoch >= o.stop_after_epochs) break;
    if (budgeted && last && epoch + 1 < std::min(cfg.epochs, schedule_epochs)) {  // the next epoch would not fit
      spdlog::info("time budget {} s reached after epoch {}", cfg.time_budget_s, epoch + 1);
      r.stopped_by_budget = true;
      break;
    }
  }
  r.best_selection = best;
  return r;
}

}  // namespace aneura
