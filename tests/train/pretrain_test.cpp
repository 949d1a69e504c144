// Self-supervised pre-training: the cube masks, a reconstruction that learns on every case
// (labelled or not), exact resume, and its encoder feeding `train --init-encoder`.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <random>

#include "core/error.hpp"
#include "io/nifti.hpp"
#include "support/run.hpp"
#include "train/data.hpp"
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

// The voxels a defacing removed (deface.nii.gz, OpenMind's anon mask) are not reconstructed: a
// case loaded for pre-training carries them as its first label map (so every window and
// augmentation carries them as it carries vessels), and they leave the loss's hidden voxels.
TEST_F(TrainOnSynth, PretrainLeavesOutTheVoxelsADefacingRemoved) {
  const fs::path w = fresh_work("pretrain_deface");
  write_test_plans(w, tiny_config());
  const std::string id = fs::directory_iterator(w / "cases")->path().filename().string();
  const fs::path dir = w / "cases" / id;
  const TrainCase plain = load_case(w, id, CaseMaps::Deface);  // no deface file: nothing removed
  EXPECT_TRUE(plain.label_maps.data.empty());
  const Volume<float> img = read_nifti(dir / "image.nii");
  Volume<uint8_t> removed(img.geom);
  for (int64_t k = 0; k < img.geom.size[2]; ++k)
    for (int64_t j = 0; j < img.geom.size[1]; ++j)
      for (int64_t i = 0; i < img.geom.size[0]; ++i) removed.at(i, j, k) = i < img.geom.size[0] / 2;
  write_nifti(removed, dir / "deface.nii.gz", NiftiLayout::Native);
  const TrainCase c = load_case(w, id, CaseMaps::Deface);
  ASSERT_EQ(c.label_maps.volumes, 2);
  EXPECT_FALSE(c.has_vessels);
  const size_t n = removed.data.size();
  for (size_t v = 0; v < n; ++v) {
    ASSERT_EQ(c.label_maps.data[v], removed.data[v]) << v;
    ASSERT_EQ(c.label_maps.data[n + v], 0.f) << v;
  }
  // training still reads its labels (none where the case has no label volume), not the deface mask
  EXPECT_EQ(load_case(w, id).label_maps.data.empty(), !fs::exists(dir / "labels.nii"));
  // a window of it: the removed voxels are there, and they do not count
  AugmentOptions none;
  none.enabled = false;
  std::mt19937_64 rng(3);
  const Sample s = make_sample(c, tiny_config(), rng, none);
  const auto gone = s.vessel > 0;
  EXPECT_GT(gone.sum().item<int64_t>(), 0);
  const auto hidden = cube_mask(s.image.sizes(), 0.6, 2, 5).unsqueeze(0);
  const auto counted = counted_voxels(hidden, s.vessel.unsqueeze(0));
  EXPECT_EQ((counted[0][0] * gone.to(torch::kFloat)).sum().item<double>(), 0);
  EXPECT_EQ(counted.sum().item<double>(), (hidden[0][0] * (~gone).to(torch::kFloat)).sum().item<double>());
  EXPECT_LT(counted.sum().item<double>(), hidden.sum().item<double>());
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
