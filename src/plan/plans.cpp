#include "plan/plans.hpp"

#include <algorithm>
#include <fstream>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/labels.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

const std::set<std::string>& allowed_keys() {
  static const std::set<std::string> k = {"inherits",
                                          "device",
                                          "model",
                                          "target_spacing_mm",
                                          "roi_mm",
                                          "patch_size",
                                          "stages",
                                          "base_channels",
                                          "max_channels",
                                          "batch_size",
                                          "loader_workers",
                                          "queue_length",
                                          "optimizer",
                                          "learning_rate",
                                          "weight_decay",
                                          "epochs",
                                          "time_budget_s",
                                          "mixed_precision",
                                          "channels_last",
                                          "loss_weights",
                                          "normalization",
                                          "folds",
                                          "ema_decay",
                                          "grad_clip",
                                          "gradient_checkpointing",
                                          "positive_oversampling",
                                          "blob_features",
                                          "spatial_augmentation",
                                          "field_edge_mm",
                                          "window_overlap",
                                          "focus_windows",
                                          "candidates",
                                          "candidate_source",
                                          "mine_candidates_every",
                                          "mine_online",
                                          "modalities",
                                          "vessel_stage"};
  return k;
}

// Keys with a default in Configuration: not required after inheritance.
const std::set<std::string>& optional_keys() {
  static const std::set<std::string> k = {"folds",
                                          "ema_decay",
                                          "grad_clip",
                                          "positive_oversampling",
                                          "blob_features",
                                          "spatial_augmentation",
                                          "field_edge_mm",
                                          "window_overlap",
                                          "focus_windows",
                                          "gradient_checkpointing",
                                          "modalities",
                                          "vessel_stage",
                                          "candidates",
                                          "mine_candidates_every",
                                          "candidate_source",
                                          "mine_online"};
  return k;
}

json config_json(const Configuration& c) {
  return {{"device", c.device},
          {"model", c.model},
          {"target_spacing_mm", c.target_spacing_mm},
          {"roi_mm", c.roi_mm},
          {"patch_size", c.patch_size},
          {"stages", c.stages},
          {"base_channels", c.base_channels},
          {"max_channels", c.max_channels},
          {"batch_size", c.batch_size},
          {"loader_workers", c.loader_workers},
          {"queue_length", c.queue_length},
          {"optimizer", c.optimizer},
          {"learning_rate", c.learning_rate},
          {"weight_decay", c.weight_decay},
          {"epochs", c.epochs},
          {"time_budget_s", c.time_budget_s},
          {"mixed_precision", c.mixed_precision},
          {"channels_last", c.channels_last},
          {"loss_weights", c.loss_weights},
          {"normalization", c.normalization},
          {"folds", c.folds},
          {"ema_decay", c.ema_decay},
          {"grad_clip", c.grad_clip},
          {"gradient_checkpointing", c.gradient_checkpointing},
          {"positive_oversampling", c.positive_oversampling},
          {"blob_features", c.blob_features},
          {"spatial_augmentation", c.spatial_augmentation},
          {"field_edge_mm", c.field_edge_mm},
          {"window_overlap", c.window_overlap},
          {"focus_windows", c.focus_windows},
          {"candidates", c.candidates},
          {"candidate_source", c.candidate_source},
          {"mine_candidates_every", c.mine_candidates_every},
          {"mine_online", c.mine_online},
          {"modalities", c.modalities},
          {"vessel_stage", c.vessel_stage}};
}

json resolve(const std::map<std::string, json>& raw, const std::string& name, std::set<std::string>& seen) {
  auto it = raw.find(name);
  if (it == raw.end()) throw Error(ErrorCode::CorruptInput, "configuration '" + name + "' is not defined");
  if (!seen.insert(name).second)
    throw Error(ErrorCode::CorruptInput, "configuration '" + name + "' inherits from itself");
  if (!it->second.is_object()) throw Error(ErrorCode::CorruptInput, "configuration '" + name + "' is not an object");
  for (const auto& [k, v] : it->second.items())
    if (!allowed_keys().count(k))
      throw Error(ErrorCode::CorruptInput, "unknown key '" + k + "' in configuration '" + name + "'");
  json merged = json::object();
  if (it->second.contains("inherits")) merged = resolve(raw, it->second.at("inherits").get<std::string>(), seen);
  for (const auto& [k, v] : it->second.items())
    if (k != "inherits") merged[k] = v;
  return merged;
}

Configuration parse_config(const std::string& name, const json& j) {
  Configuration c;
  c.name = name;
  try {
    for (const auto& k : allowed_keys())
      if (k != "inherits" && !optional_keys().count(k) && !j.contains(k))
        throw Error(ErrorCode::CorruptInput, "configuration '" + name + "' lacks '" + k + "'");
    c.device = j.at("device");
    c.model = j.at("model");
    c.target_spacing_mm = j.at("target_spacing_mm");
    c.roi_mm = j.at("roi_mm");
    c.patch_size = j.at("patch_size");
    c.stages = j.at("stages");
    c.base_channels = j.at("base_channels");
    c.max_channels = j.at("max_channels");
    c.batch_size = j.at("batch_size");
    c.loader_workers = j.at("loader_workers");
    c.queue_length = j.at("queue_length");
    c.optimizer = j.at("optimizer");
    c.learning_rate = j.at("learning_rate");
    c.weight_decay = j.at("weight_decay");
    c.epochs = j.at("epochs");
    c.time_budget_s = j.at("time_budget_s");
    c.mixed_precision = j.at("mixed_precision");
    c.channels_last = j.at("channels_last");
    c.loss_weights = j.at("loss_weights").get<std::map<std::string, double>>();
    c.normalization = j.at("normalization");
    c.folds = j.value("folds", c.folds);
    c.ema_decay = j.value("ema_decay", c.ema_decay);
    c.grad_clip = j.value("grad_clip", c.grad_clip);
    c.gradient_checkpointing = j.value("gradient_checkpointing", c.gradient_checkpointing);
    c.positive_oversampling = j.value("positive_oversampling", c.positive_oversampling);
    c.blob_features = j.value("blob_features", c.blob_features);
    c.spatial_augmentation = j.value("spatial_augmentation", c.spatial_augmentation);
    c.field_edge_mm = j.value("field_edge_mm", c.field_edge_mm);
    c.window_overlap = j.value("window_overlap", c.window_overlap);
    c.focus_windows = j.value("focus_windows", c.focus_windows);
    c.candidates = j.value("candidates", c.candidates);
    c.candidate_source = j.value("candidate_source", c.candidate_source);
    c.mine_candidates_every = j.value("mine_candidates_every", c.mine_candidates_every);
    c.mine_online = j.value("mine_online", c.mine_online);
    c.modalities = j.value("modalities", c.modalities);
    c.vessel_stage = j.value("vessel_stage", c.vessel_stage);
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, "configuration '" + name + "': " + e.what());
  }
  auto bad = [&](const std::string& what) {
    throw Error(ErrorCode::CorruptInput, "configuration '" + name + "': " + what);
  };
  if (c.device != "cpu" && c.device != "cuda") bad("device must be cpu or cuda");
  if (std::find(known_models().begin(), known_models().end(), c.model) == known_models().end())
    bad("unknown model '" + c.model + "'");
  if (c.optimizer != "sgd" && c.optimizer != "adamw") bad("optimizer must be sgd or adamw");
  const bool slices = c.model == "dualstream_2p5d";  // patch_size: S x S in-plane, a window of W slices
  for (int a = 0; a < 3; ++a) {
    if (!(c.target_spacing_mm[a] > 0) || !(c.roi_mm[a] > 0)) bad("spacing and ROI must be positive");
    if (slices && a == 2) {
      if (c.patch_size[2] < 1 || c.patch_size[2] % 2 == 0 || c.patch_size[2] > 31)
        bad("a dualstream_2p5d patch_size's third value is its window of slices: odd, 1..31");
    } else if (c.patch_size[a] < 8 || c.patch_size[a] % (1 << (slices ? c.stages : c.stages - 1)) != 0) {
      bad(slices ? "a dualstream_2p5d patch_size's in-plane size must be >= 8 and a multiple of 2^stages"
                 : "patch_size must be >= 8 and a multiple of 2^(stages-1)");
    }
  }
  if (slices && c.patch_size[0] != c.patch_size[1]) bad("a dualstream_2p5d patch_size is square in-plane");
  if (slices && (c.vessel_stage || c.blob_features || c.focus_windows > 0 || c.candidates > 0))
    bad("dualstream_2p5d classifies slices: no vessel_stage, blob_features, focus_windows or candidates");
  if (c.stages < 2 || c.stages > 7) bad("stages must be 2..7");
  if (c.folds < 1 || c.folds > 20) bad("folds must be 1..20");
  if (c.ema_decay < 0 || c.ema_decay >= 1) bad("ema_decay must be in [0, 1)");
  if (c.grad_clip < 0 || c.positive_oversampling < 1) bad("grad_clip >= 0 and positive_oversampling >= 1");
  if (!(c.spatial_augmentation >= 0 && c.spatial_augmentation <= 1)) bad("spatial_augmentation must be in [0, 1]");
  if (!(c.field_edge_mm >= 0)) bad("field_edge_mm must be >= 0");
  if (!(c.window_overlap >= 0 && c.window_overlap < 1)) bad("window_overlap must be in [0, 1)");
  if (c.focus_windows < 0) bad("focus_windows must be >= 0");
  if (c.candidates < 0 || c.candidates > 256) bad("candidates must be 0..256");
  if (c.candidate_source != "coarse" && c.candidate_source != "dots") bad("candidate_source must be coarse or dots");
  bool windowed = false;  // as model/input.hpp's windowed()
  for (int a = 0; a < 3; ++a) windowed = windowed || c.patch_size[a] * c.target_spacing_mm[a] * 1.1 < c.roi_mm[a];
  if (c.candidates > 0 && (c.vessel_stage || c.focus_windows > 0 || !windowed))
    bad("a candidate stage (candidates > 0) is a windowed aneurysm model: patch x spacing smaller than the ROI, "
        "no vessel_stage or focus_windows");
  if (c.mine_candidates_every < 0 || (c.mine_candidates_every > 0 && c.candidates == 0))
    bad("mine_candidates_every must be >= 0, and > 0 only for a candidate stage (candidates > 0)");
  if (c.mine_online && (c.candidates == 0 || c.mine_candidates_every > 0))
    bad("mine_online is for a candidate stage (candidates > 0) without mine_candidates_every");
  if (c.focus_windows > 0 && !c.blob_features) bad("focus_windows needs blob_features (the windows look at blobs)");
  for (const auto& m : c.modalities)
    if (modality_index(m) < 0) bad("unknown modality '" + m + "' in modalities (CTA, MRA, MRI T2, MRI T1post)");
  if (c.batch_size < 1 || c.loader_workers < 0 || c.queue_length < 1 || c.epochs < 1)
    bad("batch, workers, queue, epochs");
  return c;
}

}  // namespace

const std::vector<std::string>& known_models() {
  static const std::vector<std::string> m = {"resenc_unet_multitask", "dualstream_2p5d"};
  return m;
}

const Configuration& Plans::get(const std::string& name) const {
  auto it = configurations.find(name.empty() ? default_configuration : name);
  if (it == configurations.end()) {
    std::string names;
    for (const auto& [n, c] : configurations) names += " " + n;
    throw Error(ErrorCode::Usage, "no configuration '" + name + "' in the plans; there are:" + names);
  }
  return it->second;
}

json to_json(const Plans& p) {
  json configs = json::object();
  for (const auto& [n, c] : p.raw) configs[n] = c;
  return {{"version", p.version},
          {"default_configuration", p.default_configuration},
          {"global", p.global},
          {"configurations", configs}};
}

Plans plans_from_json(const json& j) {
  Plans p;
  try {
    for (const auto& [k, v] : j.items())
      if (k != "version" && k != "default_configuration" && k != "global" && k != "configurations")
        throw Error(ErrorCode::CorruptInput, "unknown key '" + k + "' in plans");
    p.version = j.at("version");
    if (p.version != 1) throw Error(ErrorCode::CorruptInput, "unsupported plans version " + std::to_string(p.version));
    p.default_configuration = j.at("default_configuration");
    p.global = j.at("global");
    for (const auto& [n, c] : j.at("configurations").items()) p.raw[n] = c;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("plans: ") + e.what());
  }
  for (const auto& [n, c] : p.raw) {
    std::set<std::string> seen;
    p.configurations[n] = parse_config(n, resolve(p.raw, n, seen));
  }
  if (!p.configurations.count(p.default_configuration))
    throw Error(ErrorCode::CorruptInput, "default_configuration '" + p.default_configuration + "' is not defined");
  return p;
}

Plans read_plans(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw Error(ErrorCode::InputNotFound, "no plans (run aneura plan WORK first)", file.string());
  std::ifstream in(file);
  try {
    return plans_from_json(json::parse(in));
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("plans.json is not JSON: ") + e.what(), file.string());
  } catch (const Error& e) {
    throw Error(e.code(), e.what(), e.where().empty() ? file.string() : e.where());
  }
}

void write_plans(const Plans& p, const fs::path& file) { write_text_atomically(file, to_json(p).dump(2) + "\n"); }

json configuration_to_json(const Configuration& c) { return config_json(c); }

}  // namespace aneura
