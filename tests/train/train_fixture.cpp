#include "train/train_fixture.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "dataset/case_cache.hpp"
#include "dataset/rsna.hpp"
#include "model/checkpoint.hpp"
#include "model/registry.hpp"
#include "synth/dataset.hpp"
#include "train/folds.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

Configuration tiny_config() {
  Configuration c;
  c.name = "tiny";
  c.patch_size = {16, 16, 16};
  c.roi_mm = {128, 128, 112};
  c.target_spacing_mm = {8, 8, 7};  // the whole ROI in one patch (not windowed)
  c.stages = 3;
  c.base_channels = 4;
  c.max_channels = 16;
  c.batch_size = 4;
  c.loader_workers = 1;
  c.queue_length = 2;
  c.optimizer = "adamw";
  c.learning_rate = 1e-2;
  c.weight_decay = 0;
  c.epochs = 2;
  c.folds = 1;
  c.ema_decay = 0;
  c.normalization = json::object();
  return c;
}

void write_test_plans(const fs::path& work, const Configuration& c) {
  Plans p;
  p.default_configuration = c.name;
  p.global = json::object();
  p.raw[c.name] = configuration_to_json(c);
  write_plans(p, work / "plans.json");
}

std::vector<torch::Tensor> weights_of(const fs::path& checkpoint, const ModelInfo& info, bool encoder_only) {
  MultiTaskUNet net = build_model(info.cfg, info.in_channels);
  load_weights(checkpoint, net, false);
  std::vector<torch::Tensor> out;
  for (const auto& p : encoder_only ? encoder_parameters(net) : net->parameters()) out.push_back(p.detach().clone());
  return out;
}

TrainOptions overfit_options(const fs::path& work) {
  TrainOptions o;
  o.work = work;
  o.augment = false;
  o.progress = false;
  o.threads = 2;
  return o;
}

std::vector<double> train_losses(const fs::path& run_dir) {
  std::ifstream log(run_dir / "log.jsonl");
  std::vector<double> loss;
  for (std::string line; std::getline(log, line);) loss.push_back(json::parse(line).at("train_loss"));
  return loss;
}

test::TempDir* TrainOnSynth::dir_ = nullptr;

void TrainOnSynth::SetUpTestSuite() {
  dir_ = new test::TempDir("train");
  synth::SynthOptions so;
  so.out = dir_->path / "data";
  so.n = 20;
  so.size = synth::Size::Tiny;
  so.seed = 5;
  so.positive_fraction = 0.5;
  synth::write_dataset(so);
  CaseOptions o;
  o.harmonize.spacing = {2.5, 2.5, 2.5};
  preprocess_dataset(read_rsna(so.out), work(), o, 2);
}

void TrainOnSynth::TearDownTestSuite() { delete dir_; }

fs::path TrainOnSynth::work() { return dir_->path / "work"; }

fs::path TrainOnSynth::fresh_work(const std::string& tag, size_t limit) {
  const fs::path w = dir_->path / tag;
  fs::remove_all(w);
  fs::create_directories(w / "cases");
  const auto cases = list_cases(work());
  for (size_t i = 0; i < cases.size() && (limit == 0 || i < limit); ++i)
    fs::copy(work() / "cases" / cases[i].id, w / "cases" / cases[i].id, fs::copy_options::recursive);
  return w;
}

}  // namespace aneura
