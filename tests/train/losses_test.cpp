// The losses against hand computations.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "model/network.hpp"
#include "train/losses.hpp"

namespace fs = std::filesystem;

namespace aneura {
namespace {

TEST(Losses, SoftDiceByHand) {
  // one sample, two classes, four voxels; target = [0, 1, 1, 0]
  auto probs = torch::tensor({0.9f, 0.2f, 0.4f, 0.7f, 0.1f, 0.8f, 0.6f, 0.3f}).reshape({1, 2, 4});
  auto target = torch::tensor({0, 1, 1, 0}, torch::kLong).reshape({1, 4});
  // class 1: intersection 0.8 + 0.6 = 1.4; sum p = 1.8; sum y = 2 -> dice = 2.8 / 3.8
  const double expected = 1 - (2.8 + 1e-5) / (3.8 + 1e-5);
  EXPECT_NEAR(soft_dice_loss(probs, target).item<double>(), expected, 1e-6);
}

TEST(Losses, SegmentationIsCrossEntropyPlusDice) {
  auto logits = torch::tensor({2.0f, 0.0f, 0.0f, 1.0f}).reshape({1, 2, 2});  // voxel 0: (2, 0); voxel 1: (0, 1)
  auto target = torch::tensor({0, 1}, torch::kLong).reshape({1, 2});
  const double p00 = std::exp(2.0) / (std::exp(2.0) + 1), p11 = std::exp(1.0) / (std::exp(1.0) + 1);
  const double ce = -(std::log(p00) + std::log(p11)) / 2;
  const double p10 = 1 - p00;  // class-1 probability at voxel 0
  const double dice = (2 * p11 + 1e-5) / (p10 + p11 + 1 + 1e-5);
  EXPECT_NEAR(segmentation_loss(logits, target).item<double>(), ce + 1 - dice, 1e-5);
}

TEST(Losses, AneurysmIsWeightedCrossEntropyPlusDiceOverSamplesWithAnAneurysm) {
  // 2 samples x 2 voxels, 14 classes, logits 0 except sample 0 voxel 1 class 3 = log 13 (p = 0.5)
  auto logits = torch::zeros({2, 14, 2});
  logits[0][3][1] = std::log(13.0);
  auto target = torch::zeros({2, 2}, torch::kLong);
  target[0][1] = 3;  // sample 1 holds no aneurysm voxel
  const double w = 10;
  // CE weighted mean: 3 background voxels (p = 1/14; weight 1) and one class-3 voxel (p = 0.5; weight w)
  const double ce = (3 * std::log(14.0) + w * std::log(2.0)) / (3 + w);
  // Dice over sample 0 only: p(fg) = 13/14 at voxel 0, 1 - 1/26 at voxel 1; target fg at voxel 1
  const double pf0 = 13.0 / 14, pf1 = 1 - 1.0 / 26;
  const double dice = (2 * pf1 + 1e-5) / (pf0 + pf1 + 1 + 1e-5);
  EXPECT_NEAR(aneurysm_loss(logits, target, w).item<double>(), ce + 1 - dice, 1e-5);
  // no aneurysm voxel in the batch: the CE alone (every voxel background, p = 1/14)
  EXPECT_NEAR(aneurysm_loss(torch::zeros({1, 14, 3}), torch::zeros({1, 3}, torch::kLong), w).item<double>(),
              std::log(14.0), 1e-5);
}

NetworkOutput fake_output(int n) {
  NetworkOutput o;
  o.vessel = torch::zeros({n, 14, 2, 2, 2});
  o.aneurysm = torch::zeros({n, 14, 2, 2, 2});
  o.labels = torch::zeros({n, 14});
  o.modality = torch::zeros({n, 4});
  return o;
}

TEST(Losses, BceWithPositiveWeightsByHand) {
  NetworkOutput o = fake_output(1);
  o.labels[0][0] = 1.0;  // sigmoid(1) = 0.7311
  Targets t{torch::zeros({1, 2, 2, 2}, torch::kLong), torch::zeros({1, 2, 2, 2}, torch::kLong), torch::zeros({1, 14}),
            torch::tensor({-1}, torch::kLong), torch::tensor({false})};
  t.labels[0][0] = 1;
  t.labels[0][13] = 1;
  auto pw = torch::ones({14});
  pw[0] = 3;
  const std::map<std::string, double> w{{"classification", 1}};
  const LossTerms l = multitask_loss(o, t, pw, w);
  // column 0: 3 * -log(sigmoid(1)); column 13: -log(0.5); 12 others: -log(0.5); mean over 14
  const double expected = (3 * -std::log(1 / (1 + std::exp(-1.0))) + 13 * std::log(2.0)) / 14;
  EXPECT_NEAR(l.labels.item<double>(), expected, 1e-6);
  EXPECT_NEAR(l.total.item<double>(), expected, 1e-6);  // only the classification weight is set
  // no vessel labels and an unknown modality: those terms are 0, not NaN
  EXPECT_EQ(l.vessel.item<double>(), 0);
  EXPECT_EQ(l.modality.item<double>(), 0);
}

TEST(Losses, ModalityIgnoresUnknownAndVesselOnlyLabelledSamples) {
  NetworkOutput o = fake_output(2);
  o.modality[0][2] = 2.0;
  Targets t{torch::zeros({2, 2, 2, 2}, torch::kLong), torch::zeros({2, 2, 2, 2}, torch::kLong), torch::zeros({2, 14}),
            torch::tensor({2, -1}, torch::kLong), torch::tensor({false, true})};
  o.vessel[0][5] = 50;  // sample 0 has no vessel labels: its (wrong) prediction must not count
  const LossTerms l = multitask_loss(o, t, torch::ones({14}), {{"modality", 1}, {"vessel", 1}});
  const double ce = -std::log(std::exp(2.0) / (std::exp(2.0) + 3));
  EXPECT_NEAR(l.modality.item<double>(), ce, 1e-6);
  // sample 1: uniform logits over 14 classes, all background: CE = log 14; Dice of absent classes
  const double p = 1.0 / 14;
  const double dice_absent = 1e-5 / (8 * p + 1e-5);  // per foreground class: no target voxels
  EXPECT_NEAR(l.vessel.item<double>(), std::log(14.0) + 1 - dice_absent, 1e-5);
}

TEST(Losses, HeatmapEvidenceIsTheLogitOfTheLargestProbability) {
  auto logits = torch::zeros({1, 14, 1, 1, 2});
  logits[0][3][0][0][1] = std::log(13.0 * 3);  // voxel 1: class 3 has p = 39 / (39 + 13) = 0.75
  const auto e = heatmap_evidence(logits);
  EXPECT_NEAR(e[0][2].item<double>(), std::log(0.75 / 0.25), 1e-5);                   // location column 2 = class 3
  EXPECT_NEAR(e[0][13].item<double>(), std::log((1 - 1.0 / 52) / (1.0 / 52)), 1e-4);  // any = 1 - p(bg) at voxel 1
  EXPECT_NEAR(e[0][0].item<double>(), std::log((1.0 / 14) / (13.0 / 14)), 1e-5);      // voxel 0: uniform
}

}  // namespace
}  // namespace aneura
