// Data-parallel training: the environment that names the ranks, the share of a batch, the losses
// as shares of the global batch's loss, and `aneura launch` against one process: the same weights,
// resume on another world size, a lost rank stopping the run.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "support/run.hpp"
#include "train/distributed.hpp"
#include "train/losses.hpp"
#include "train/train_fixture.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {
using test::code_of;
using test::run_aneura;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    const auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(DistEnv, ReadsTorchrunAndSlurmVariables) {
  const DistEnv none = dist_env(env_of({}));
  EXPECT_EQ(none.world, 1);
  EXPECT_EQ(none.rank, 0);
  EXPECT_EQ(none.from, "");
  const DistEnv t = dist_env(env_of(
      {{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "29612"}}));
  EXPECT_EQ(t.from, "torchrun");
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.world, 8);
  EXPECT_EQ(t.local_rank, 1);
  EXPECT_EQ(t.master_addr, "node7");
  EXPECT_EQ(t.master_port, 29612);
  // SLURM: the master is the first host of the job's node list; torchrun's variables win
  const DistEnv s = dist_env(env_of({{"SLURM_PROCID", "5"},
                                     {"SLURM_NTASKS", "8"},
                                     {"SLURM_LOCALID", "1"},
                                     {"SLURM_JOB_NODELIST", "gpu[03-05,07],cpu1"}}));
  EXPECT_EQ(s.from, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.master_addr, "gpu03");
  EXPECT_EQ(s.master_port, 29500);
  EXPECT_EQ(first_slurm_host("node12"), "node12");
  EXPECT_EQ(first_slurm_host("a-b[0007-0009]"), "a-b0007");
  EXPECT_EQ(first_slurm_host("x1,x2"), "x1");
  // malformed or inconsistent values name the variable
  for (const auto& bad :
       std::vector<std::map<std::string, std::string>>{{{"RANK", "2"}, {"WORLD_SIZE", "2"}},
                                                       {{"RANK", "one"}, {"WORLD_SIZE", "2"}},
                                                       {{"RANK", "0"}, {"WORLD_SIZE", "0"}},
                                                       {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "99999"}},
                                                       {{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}}) {
    EXPECT_EQ(code_of([&] { dist_env(env_of(bad)); }), ErrorCode::Usage) << json(bad).dump();
  }
  EXPECT_EQ(code_of([&] { first_slurm_host(""); }), ErrorCode::Usage);
}

TEST(DistEnv, RankSharesCoverABatchOnce) {
  for (size_t n : {1, 4, 7, 16})
    for (int world : {1, 2, 3, 4}) {
      if (n < static_cast<size_t>(world)) continue;
      size_t next = 0;
      for (int r = 0; r < world; ++r) {
        const auto [lo, hi] = rank_share(n, r, world);
        EXPECT_EQ(lo, next);
        EXPECT_GE(hi - lo, n / world);
        EXPECT_LE(hi - lo, n / world + 1);
        next = hi;
      }
      EXPECT_EQ(next, n);
    }
}

// Two "ranks" in one process, on threads: sum() adds both ranks' tensors (a barrier on each side).
class ThreadPair {
 public:
  class Rank : public Collective {
   public:
    Rank(ThreadPair& p, int r) : p_(p), r_(r) {}
    int rank() const override { return r_; }
    int world() const override { return 2; }
    void sum(torch::Tensor& t) const override { t.copy_(p_.exchange(r_, t) + t); }
    void max(torch::Tensor& t) const override { t.copy_(torch::maximum(p_.exchange(r_, t), t)); }
    void broadcast(torch::Tensor& t) const override {
      const auto other = p_.exchange(r_, t);
      if (r_ == 1) t.copy_(other);
    }

   private:
    ThreadPair& p_;
    int r_;
  };
  // Hands `t` to the other rank and returns the other's tensor (both must call).
  torch::Tensor exchange(int r, const torch::Tensor& t) {
    std::unique_lock<std::mutex> lk(m_);
    slot_[r] = t.detach().clone();
    rendezvous(lk);
    torch::Tensor other = slot_[1 - r];
    rendezvous(lk);  // (both read before either writes again)
    return other;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int arrived_ = 0, generation_ = 0;
  torch::Tensor slot_[2];

  void rendezvous(std::unique_lock<std::mutex>& lk) {
    const int g = generation_;
    if (++arrived_ == 2) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return generation_ != g; });
    }
  }
};

// The multi-task loss of a batch, and its gradient with respect to the network's outputs, equal the
// sums of two ranks' shares of it (each rank holding half the samples), with vessel labels and
// aneurysms in only one rank's half, so that each term's global counts matter.
TEST(DistributedLoss, TwoRanksSharesSumToTheGlobalBatch) {
  torch::manual_seed(3);
  const int64_t n = 4, s = 6;
  NetworkOutput out{torch::randn({n, 14, s, s, s}), torch::randn({n, 14, s, s, s}), torch::randn({n, 14}),
                    torch::randn({n, 4})};
  Targets t;
  t.vessel = torch::randint(0, 14, {n, s, s, s}, torch::kLong);
  t.aneurysm = torch::zeros({n, s, s, s}, torch::kLong);
  t.aneurysm.index_put_({1, torch::indexing::Slice(1, 3), torch::indexing::Slice(1, 3), 2}, 5);
  t.labels = (torch::rand({n, 14}) > 0.7).to(torch::kFloat);
  t.modality = torch::tensor({0, -1, 2, 3}, torch::kLong);
  t.has_vessels = torch::tensor({true, false, false, false});
  const auto pos_weight = torch::rand({14}) * 3 + 1;
  const std::map<std::string, double> w{{"vessel", 1}, {"aneurysm", 1}, {"classification", 1}, {"modality", 0.2}};
  auto leaves = [](const NetworkOutput& o) {
    return NetworkOutput{o.vessel.clone().requires_grad_(), o.aneurysm.clone().requires_grad_(),
                         o.labels.clone().requires_grad_(), o.modality.clone().requires_grad_()};
  };
  auto slice = [](const torch::Tensor& x, int64_t lo, int64_t hi) { return x.slice(0, lo, hi); };
  // one process, the whole batch
  NetworkOutput whole = leaves(out);
  const LossTerms global = multitask_loss(whole, t, pos_weight, w);
  global.total.backward();
  // two ranks, half each
  ThreadPair pair;
  std::vector<NetworkOutput> part(2);
  std::vector<LossTerms> terms(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      const int64_t lo = r * n / 2, hi = (r + 1) * n / 2;
      ThreadPair::Rank c(pair, r);
      part[r] = leaves({slice(out.vessel, lo, hi), slice(out.aneurysm, lo, hi), slice(out.labels, lo, hi),
                        slice(out.modality, lo, hi)});
      Targets tr{slice(t.vessel, lo, hi), slice(t.aneurysm, lo, hi), slice(t.labels, lo, hi), slice(t.modality, lo, hi),
                 slice(t.has_vessels, lo, hi)};
      terms[r] = multitask_loss(part[r], tr, pos_weight, w, c);
      terms[r].total.backward();
    });
  for (auto& th : ranks) th.join();
  for (auto term :
       {&LossTerms::total, &LossTerms::vessel, &LossTerms::aneurysm, &LossTerms::labels, &LossTerms::modality})
    EXPECT_NEAR((terms[0].*term + terms[1].*term).item<double>(), (global.*term).item<double>(), 1e-5);
  for (auto head :
       {&NetworkOutput::vessel, &NetworkOutput::aneurysm, &NetworkOutput::labels, &NetworkOutput::modality}) {
    const auto g = torch::cat({(part[0].*head).grad(), (part[1].*head).grad()});
    EXPECT_TRUE(torch::allclose(g, (whole.*head).grad(), 1e-4, 1e-7))
        << "max diff " << (g - (whole.*head).grad()).abs().max().item<double>();
  }
}

// `aneura launch` with 2 ranks (Gloo on this machine) against one process with the same global
// batch: the same weights after 2 epochs with EMA, the same validation; a 2-rank run resumed by one
// process continues it.
TEST_F(TrainOnSynth, TwoRanksTrainAsOneProcess) {
  if (!distributed_available()) GTEST_SKIP() << "built without c10d's Gloo (libgloo-dev)";
  const fs::path a = fresh_work("ddp_a"), b = fresh_work("ddp_b"), c = fresh_work("ddp_c");
  Configuration cfg = tiny_config();
  cfg.folds = 3;
  cfg.ema_decay = 0.9;
  cfg.optimizer = "sgd";  // (linear in the gradient: AdamW would hide a gradient scaled by the world size)
  for (const auto& w : {a, b, c}) write_test_plans(w, cfg);
  const std::string common = " --epochs 2 --threads 1 --seed 9 --time-budget 0";
  ASSERT_EQ(run_aneura("train " + a.string() + common), 0);
  ASSERT_EQ(run_aneura("launch --nproc 2 -- train " + b.string() + common), 0);
  ASSERT_EQ(run_aneura("launch --nproc 2 -- train " + c.string() + common + " --stop-after 1"), 0);
  ASSERT_EQ(run_aneura("train " + c.string() + common + " --resume"), 0);
  const ModelInfo info = read_model_info(a / "runs" / "tiny");
  const auto wa = weights_of(a / "runs" / "tiny" / "fold_0" / "last.pt", info);
  for (const auto& other : {b, c}) {
    const auto wo = weights_of(other / "runs" / "tiny" / "fold_0" / "last.pt", info);
    ASSERT_EQ(wa.size(), wo.size());
    double worst = 0;
    for (size_t i = 0; i < wa.size(); ++i) worst = std::max(worst, (wa[i] - wo[i]).abs().max().item<double>());
    EXPECT_LT(worst, 1e-5) << other.filename();  // (float rounding: ~1e-7)
  }
  // the logs: the same training loss and validation (rank 0 alone wrote them)
  auto log = [](const fs::path& w) {
    std::vector<json> l;
    std::ifstream f(w / "runs" / "tiny" / "fold_0" / "log.jsonl");
    for (std::string line; std::getline(f, line);) l.push_back(json::parse(line));
    return l;
  };
  const auto la = log(a), lb = log(b), lc = log(c);
  ASSERT_EQ(la.size(), 2u);
  ASSERT_EQ(lb.size(), 2u);
  ASSERT_EQ(lc.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_NEAR(la[e]["train_loss"].get<double>(), lb[e]["train_loss"].get<double>(), 1e-4);
    EXPECT_NEAR(la[e]["val_loss"].get<double>(), lb[e]["val_loss"].get<double>(), 1e-4);
    EXPECT_NEAR(la[e]["val_selection"].get<double>(), lb[e]["val_selection"].get<double>(), 1e-6);
    EXPECT_NEAR(la[e]["train_loss"].get<double>(), lc[e]["train_loss"].get<double>(), 1e-4);
  }
}

// Pre-training on 2 ranks: the same masked-voxel error per epoch as one process (the ranks' shares
// of each batch, their masks from the global positions); AdamW amplifies rounding in the weights,
// so those are compared loosely.
TEST_F(TrainOnSynth, TwoRanksPretrainAsOneProcess) {
  if (!distributed_available()) GTEST_SKIP() << "built without c10d's Gloo (libgloo-dev)";
  const fs::path a = fresh_work("ddp_pre_a"), b = fresh_work("ddp_pre_b");
  Configuration cfg = tiny_config();
  for (const auto& w : {a, b}) write_test_plans(w, cfg);
  const std::string common = " --epochs 3 --threads 1 --seed 4 --time-budget 0";
  ASSERT_EQ(run_aneura("pretrain " + a.string() + common), 0);
  ASSERT_EQ(run_aneura("launch --nproc 2 -- pretrain " + b.string() + common), 0);
  auto mse = [](const fs::path& w) {
    std::vector<double> v;
    std::ifstream f(w / "pretrain" / "tiny" / "log.jsonl");
    for (std::string line; std::getline(f, line);) v.push_back(json::parse(line).at("masked_mse"));
    return v;
  };
  const auto ma = mse(a), mb = mse(b);
  ASSERT_EQ(ma.size(), 3u);
  ASSERT_EQ(mb.size(), 3u);
  for (size_t e = 0; e < 3; ++e) EXPECT_NEAR(ma[e], mb[e], 1e-3 * ma[e]) << "epoch " << e + 1;
  ModelInfo info;
  info.cfg = cfg;
  info.in_channels = 4;
  const auto wa = weights_of(a / "pretrain" / "tiny" / "last.pt", info);
  const auto wb = weights_of(b / "pretrain" / "tiny" / "last.pt", info);
  double worst = 0;
  for (size_t i = 0; i < wa.size(); ++i) worst = std::max(worst, (wa[i] - wb[i]).abs().max().item<double>());
  EXPECT_LT(worst, 5e-3);
}

// Data-parallel errors: a rank alone waits for the others no longer than --dist-timeout, a rank
// killed mid-run stops the launcher and the survivors, a batch smaller than the ranks is refused.
TEST_F(TrainOnSynth, LostRanksStopTheRunWithAClearError) {
  if (!distributed_available()) GTEST_SKIP() << "built without c10d's Gloo (libgloo-dev)";
  const fs::path w = fresh_work("ddp_errors", 8);
  Configuration cfg = tiny_config();
  cfg.folds = 2;
  write_test_plans(w, cfg);
  const fs::path err = w / "stderr.txt";
  auto stderr_text = [&] {
    std::ifstream f(err);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  // rank 0 of 2, and no rank 1
  auto t0 = std::chrono::steady_clock::now();
  int rc = std::system(("RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29731 " + std::string(ANEURA_BINARY) +
                        " train " + w.string() + " --threads 1 --dist-timeout 3 2> " + err.string())
                           .c_str());
  EXPECT_EQ(WEXITSTATUS(rc), static_cast<int>(ErrorCode::Distributed)) << stderr_text();
  EXPECT_NE(stderr_text().find("could not join"), std::string::npos) << stderr_text();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60);
  // rank 1 killed while training: the launcher stops rank 0 and exits non-zero; what rank 0
  // wrote is whole
  t0 = std::chrono::steady_clock::now();
  rc = std::system(("cd " + w.string() + " && (" + std::string(ANEURA_BINARY) +
                    " launch --nproc 2 --kill-after 5 -- train " + w.string() +
                    " --threads 1 --epochs 100000 --time-budget 0 --dist-timeout 30 2> " + err.string() +
                    " & L=$!; sleep 4; pkill -KILL -n -P $L; wait $L)")
                       .c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) != 0) << stderr_text();
  EXPECT_NE(stderr_text().find("rank 1 was killed"), std::string::npos) << stderr_text();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60);
  const fs::path last = w / "runs" / "tiny" / "fold_0" / "last.pt";
  if (fs::exists(last)) {
    const ModelInfo info = read_model_info(w / "runs" / "tiny");
    EXPECT_NO_THROW(weights_of(last, info));
  }
  // more ranks than samples in a batch (4)
  EXPECT_EQ(run_aneura("launch --nproc 5 -- train " + w.string() + " --threads 1 --epochs 1"),
            static_cast<int>(ErrorCode::Usage));
  // launch runs train only, and checks its own options
  EXPECT_EQ(run_aneura("launch --nproc 2 -- predict " + w.string()), static_cast<int>(ErrorCode::Usage));
  EXPECT_EQ(run_aneura("launch --nproc 2 --nnodes 2 -- train " + w.string()), static_cast<int>(ErrorCode::Usage));
  EXPECT_EQ(run_aneura("launch --nproc 2 --master nohost -- train " + w.string()), static_cast<int>(ErrorCode::Usage));
}

}  // namespace
}  // namespace aneura
