#include <iostream>

#include "apps/aneura/commands.hpp"
#include "infer/model_info.hpp"
#include "train/trainer.hpp"

namespace aneura::app {

namespace {

int run_train(TrainOptions o, bool all_folds) {
  if (!all_folds) {
    const TrainResult r = train(o);
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
  const int k = read_model_info(r0.run_dir.parent_path()).folds;
  std::cerr << "train: fold 0 done -> " << r0.run_dir.string() << "\n";
  for (int f = 1; f < k; ++f) {
    TrainOptions of = o;
    of.fold = f;
    const TrainResult r = train(of);
    std::cerr << "train: fold " << f << " done -> " << r.run_dir.string() << "\n";
  }
  return 0;
}

}  // namespace

void add_train(CLI::App& app, Action& action) {
  auto o = std::make_shared<TrainOptions>();
  auto all = std::make_shared<bool>(false);
  auto work = std::make_shared<std::string>();
  auto plans = std::make_shared<std::string>();
  auto init = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("train", network_commands()[0].description);
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
  cmd->add_option("--freeze-encoder-epochs", o->freeze_encoder_epochs,
                  "Keep the encoder frozen for the first N epochs");
  cmd->add_option("--encoder-lr", o->encoder_lr_multiplier, "Encoder learning rate as a multiple of the decoder's");
  cmd->add_flag("!--no-augment", o->augment, "Train without augmentation");
  cmd->callback([&action, o, all, work, plans, init] {
    o->work = *work;
    o->plans_file = *plans;
    o->init_encoder = *init;
    action = [o, all] { return run_train(*o, *all); };
  });
}

}  // namespace aneura::app
