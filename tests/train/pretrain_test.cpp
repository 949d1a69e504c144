// Self-supervised pre-training: the cube masks, a reconstruction that learns on every case
// (labelled or not), exact resume, and its encoder feeding `train --init-encoder`.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>

#include "core/error.hpp"
#include "support/run.hpp"
#include "train/pretrain.hpp"
#include "train/train_fixture.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {
using test::code_of;
using test::run_aneura;

TEST(CubeMask, HidesTheRatioOfCubesFromTheSeed) {
  const auto m = cube_mask({5, 16, 16, 16}, 0.6, 4, 7);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{1, 16, 16, 16}));
  EXPECT_TRUE(((m == 0) | (m == 1)).all().item<bool>());
  EXPECT_EQ(m.sum().item<double>(), 38 * 64);  // 64 cubes of 4^3 voxels, round(0.6 * 64) = 38 hidden
  // whole cubes: constant within each 4^3 cube
  const auto cubes = m.view({4, 4, 4, 4, 4, 4}).permute({0, 2, 4, 1, 3, 5}).reshape({64, 64});
  EXPECT_TRUE((cubes.amax(-1) == cubes.amin(-1)).all().item<bool>());
  EXPECT_TRUE(torch::equal(m, cube_mask({5, 16, 16, 16}, 0.6, 4, 7)));
  EXPECT_FALSE(torch::equal(m, cube_mask({5, 16, 16, 16}, 0.6, 4, 8)));
  // a size that is not a multiple of the cube: cut to the input
  EXPECT_EQ(cube_mask({1, 10, 7, 9}, 0.5, 4, 1).sizes(), (std::vector<int64_t>{1, 10, 7, 9}));
}

// Half of the cases made unlabelled still count; the masked-voxel error falls; two epochs equal one
// plus a resumed one; the encoder initialises a training run (frozen, it stays the pre-trained one).
TEST_F(TrainOnSynth, PretrainLearnsResumesAndFeedsTheEncoder) {
  const fs::path a = fresh_work("pretrain_a"), b = fresh_work("pretrain_b");
  Configuration c = tiny_config();
  c.folds = 3;
  for (const auto& w : {a, b}) {
    write_test_plans(w, c);
    int k = 0;
    for (const auto& e : fs::directory_iterator(w / "cases")) {
      if (k++ % 2) continue;
      json j;
      std::ifstream(e.path() / "case.json") >> j;
      j["labelled"] = false;
      std::ofstream(e.path() / "case.json") << j.dump();
    }
  }
  PretrainOptions o;
  o.work = a;
  o.epochs = 60;
  o.threads = 1;
  o.progress = false;
  o.time_budget_s = 0;
  const PretrainResult r = pretrain(o);
  EXPECT_EQ(r.cases, 20);
  EXPECT_EQ(r.epochs_done, 60);
  // the masked-voxel error of the last 10 epochs against the first 10 (each epoch other windows and masks)
  std::ifstream log(a / "pretrain" / "tiny" / "log.jsonl");
  std::vector<double> mse;
  for (std::string l; std::getline(log, l);) mse.push_back(json::parse(l).at("masked_mse"));
  ASSERT_EQ(mse.size(), 60u);
  const double early = std::accumulate(mse.begin(), mse.begin() + 10, 0.0) / 10;
  const double late = std::accumulate(mse.end() - 10, mse.end(), 0.0) / 10;
  EXPECT_LT(late, 0.7 * early) << early << " -> " << late;
  // the picture of what was learnt: three rows (input, reconstruction, truth) of three panels
  std::ifstream png(a / "pretrain" / "tiny" / "reconstruction.png", std::ios::binary);
  std::string head(24, '\0');
  ASSERT_TRUE(png.read(head.data(), 24));
  EXPECT_EQ(head.substr(1, 3), "PNG");
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(head[at])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>(head[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(head[at + 2])) << 8) | static_cast<uint8_t>(head[at + 3]);
  };
  EXPECT_EQ(be32(16), be32(20));  // 3 panels wide, 3 rows high: square for a cubic patch
  EXPECT_GE(be32(20), 3u * 192 - 3 * 16);
  // resume: 2 epochs = 1 + 1, bit for bit (the CLI, as users resume)
  const fs::path ra = fresh_work("pretrain_ra"), rb = fresh_work("pretrain_rb");
  write_test_plans(ra, c);
  write_test_plans(rb, c);
  const std::string common = " --epochs 2 --threads 1 --time-budget 0 --seed 3";
  ASSERT_EQ(run_aneura("pretrain " + ra.string() + common), 0);
  ASSERT_EQ(run_aneura("pretrain " + rb.string() + common + " --stop-after 1"), 0);
  ASSERT_EQ(run_aneura("pretrain " + rb.string() + common + " --resume"), 0);
  ModelInfo info;
  info.cfg = c;
  info.in_channels = 4;  // the image and the coordinates
  const auto wa = weights_of(ra / "pretrain" / "tiny" / "last.pt", info);
  const auto wb = weights_of(rb / "pretrain" / "tiny" / "last.pt", info);
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
  // the encoder initialises training; frozen for the one epoch, it is still the pre-trained one
  const fs::path ckpt = a / "pretrain" / "tiny" / "last.pt";
  ASSERT_EQ(run_aneura("train " + a.string() + " --epochs 1 --threads 1 --time-budget 0 --init-encoder " +
                       ckpt.string() + " --freeze-encoder-epochs 1"),
            0);
  const auto pre = weights_of(ckpt, info, true),
             trained = weights_of(a / "runs" / "tiny" / "fold_0" / "last.pt", info, true);
  ASSERT_EQ(pre.size(), trained.size());
  for (size_t i = 0; i < pre.size(); ++i) EXPECT_TRUE(torch::equal(pre[i], trained[i])) << i;
  EXPECT_EQ(read_model_info(a / "runs" / "tiny").init_encoder, fs::absolute(ckpt).lexically_normal().string());
  // another architecture's encoder is refused (exit 4), as are bad options and an empty cache
  Configuration wider = c;
  wider.base_channels = 8;
  write_test_plans(b, wider);
  EXPECT_EQ(run_aneura("train " + b.string() + " --epochs 1 --threads 1 --init-encoder " + ckpt.string()),
            static_cast<int>(ErrorCode::CorruptInput));
  EXPECT_EQ(run_aneura("pretrain " + b.string() + " --mask-ratio 1"), static_cast<int>(ErrorCode::Usage));
  EXPECT_EQ(run_aneura("pretrain " + b.string() + " --resume"), static_cast<int>(ErrorCode::InputNotFound));
  o.work = dir_->path / "no_cases";
  fs::create_directories(o.work / "cases");
  write_test_plans(o.work, c);
  EXPECT_EQ(code_of([&] { pretrain(o); }), ErrorCode::InputNotFound);
}

}  // namespace
}  // namespace aneura
