#include <spdlog/spdlog.h>

#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/parallel.hpp"
#include "infer/model_info.hpp"
#include "train/distributed.hpp"
#include "train/trainer.hpp"

namespace aneura::app {

namespace {

int run_train(TrainOptions o, bool all_folds, int timeout_s) {
  o.collective = join_ranks(timeout_s, o.threads, o.progress);
  const bool report = !o.collective || o.collective->main();
  if (!all_folds) {
    const TrainResult r = train(o);
    if (report)
      std::cerr << "train: " << r.epochs_done << " epochs" << (r.stopped_by_budget ? " (time budget)" : "")
                << (r.best_selection < 0 ? std::string(", no validation set")
                                         : ", best validation selection score " + std::to_string(r.best_selection))
                << " -> " << r.run_dir.string() << "\n";
    return 0;
  }
  // All folds one after the other; the time budget, if any, is shared.
  TrainOptions first = o;
  first.fold = 0;
  const TrainResult r0 = train(first);
  if (o.collective) o.collective->barrier();  // (rank 0 wrote model.json)
  const int k = read_model_info(r0.run_dir.parent_path()).folds;
  if (report) std::cerr << "train: fold 0 done -> " << r0.run_dir.string() << "\n";
  for (int f = 1; f < k; ++f) {
    TrainOptions of = o;
    of.fold = f;
    const TrainResult r = train(of);
    if (report) std::cerr << "train: fold " << f << " done -> " << r.run_dir.string() << "\n";
  }
  return 0;
}

}  // namespace

std::shared_ptr<const Collective> join_ranks(int timeout_s, int& threads, bool& progress) {
  const DistEnv env = dist_env();
  if (env.world == 1) return nullptr;
  auto collective = connect(env, std::chrono::seconds(timeout_s));
  if (threads == 0)
    if (const auto local = env_value("LOCAL_WORLD_SIZE"); local && std::atoi(local->c_str()) > 1)
      threads = std::max(1, static_cast<int>(default_threads()) / std::atoi(local->c_str()));
  if (env.rank > 0) {
    spdlog::set_level(spdlog::level::warn);
    progress = false;
  }
  return collective;
}

void add_train(CLI::App& app, Action& action) {
  auto o = std::make_shared<TrainOptions>();
  auto all = std::make_shared<bool>(false);
  auto work = std::make_shared<std::string>();
  auto plans = std::make_shared<std::string>();
  auto init = std::make_shared<std::string>();
  auto candidates = std::make_shared<std::string>();
  auto timeout = std::make_shared<int>(300);
  auto* cmd = app.add_subcommand("train", describe("train"));
  cmd->add_option("WORK", *work, "Work folder with cases/ and plans.json")->required();
  cmd->add_option("-c,--configuration", o->configuration, "Plans configuration (default: the plans' default)");
  cmd->add_option("--plans", *plans, "Plans file (default WORK/plans.json)");
  cmd->add_option("-f,--fold", o->fold, "Fold to train (its cases are the validation set)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--all-folds", *all, "Train every fold in turn");
  cmd->add_option("--seed", o->seed, "Random seed (samples, augmentation, initial weights)");
  cmd->add_flag("--resume", o->resume, "Continue from the fold's last.pt exactly where it stopped");
  cmd->add_option("--epochs", o->epochs, "Epochs (default: plans)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--time-budget", o->time_budget_s, "Seconds for the run, 0 = none (default: plans)");
  cmd->add_option("--stop-after", o->stop_after_epochs,
                  "Stop after N epochs of this invocation (continue later with --resume)");
  cmd->add_option("--steps-per-epoch", o->steps_per_epoch,
                  "Optimizer steps per epoch (default: training cases / batch)");
  cmd->add_option("--device", o->device, "cpu or cuda (default: plans)")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--threads", o->threads, "LibTorch threads (default: usable cores)");
  cmd->add_option("--workers", o->workers, "Loader worker threads (default: plans)");
  cmd->add_option("--init-encoder", *init, "Checkpoint whose encoder initialises this network (transfer)");
  cmd->add_option(
      "--candidates-from", *candidates,
      "A candidate stage (configuration with candidates): the coarse model folder (WORK/runs/<configuration>) "
      "whose heatmap maxima on every case are its hard negatives and validation candidates");
  cmd->add_option("--freeze-encoder-epochs", o->freeze_encoder_epochs,
                  "Keep the encoder frozen for the first N epochs");
  cmd->add_option("--encoder-lr", o->encoder_lr_multiplier, "Encoder learning rate as a multiple of the decoder's");
  cmd->add_flag("!--no-augment", o->augment, "Train without augmentation");
  cmd->add_option("--dist-timeout", *timeout,
                  "Data-parallel runs: seconds to wait for every rank to join, and for any rank's answer")
      ->check(CLI::PositiveNumber);
  cmd->callback([&action, o, all, work, plans, init, candidates, timeout] {
    o->work = *work;
    o->plans_file = *plans;
    o->init_encoder = *init;
    o->candidates_from = *candidates;
    action = [o, all, timeout] { return run_train(*o, *all, *timeout); };
  });
}

}  // namespace aneura::app
