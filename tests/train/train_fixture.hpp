// Shared by the training tests: a tiny configuration, plans holding it, and one synthetic dataset
// (tiny, every modality) preprocessed once per test suite.
#pragma once
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "infer/model_info.hpp"
#include "plan/plans.hpp"
#include "support/series_fixture.hpp"
#include "train/trainer.hpp"

namespace aneura {

// A tiny network that sees the whole ROI at once (not windowed), one fold, no EMA.
Configuration tiny_config();
void write_test_plans(const std::filesystem::path& work, const Configuration& c);
// The raw (not EMA) weights of a checkpoint: all of them, or the encoder's only.
std::vector<torch::Tensor> weights_of(const std::filesystem::path& checkpoint, const ModelInfo& info,
                                      bool encoder_only = false);

// Options of a run that must fit its cases: `work`, no augmentation, no progress, 2 threads.
TrainOptions overfit_options(const std::filesystem::path& work);
// The train_loss of every epoch in a run folder's log.jsonl.
std::vector<double> train_losses(const std::filesystem::path& run_dir);

class TrainOnSynth : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  static std::filesystem::path work();
  // A copy of the case cache without runs; `limit` > 0: only the first `limit` cases.
  static std::filesystem::path fresh_work(const std::string& tag, size_t limit = 0);
  static test::TempDir* dir_;
};

}  // namespace aneura
