// aneura pretrain (in the network library): masked image modelling on every case of the cache.
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "train/distributed.hpp"
#include "train/pretrain.hpp"

namespace aneura::app {

void add_pretrain(CLI::App& app, Action& action) {
  auto o = std::make_shared<PretrainOptions>();
  auto work = std::make_shared<std::string>();
  auto plans = std::make_shared<std::string>();
  auto timeout = std::make_shared<int>(300);
  auto* cmd = app.add_subcommand("pretrain", describe("pretrain"));
  cmd->add_option("WORK", *work, "Work folder with cases/ (labelled or not) and plans.json")->required();
  cmd->add_option("-c,--configuration", o->configuration,
                  "Plans configuration whose network is pre-trained (default: the plans' default)");
  cmd->add_option("--plans", *plans, "Plans file (default WORK/plans.json)");
  cmd->add_option("--seed", o->seed, "Random seed (samples, masks, initial weights)");
  cmd->add_flag("--resume", o->resume, "Continue from WORK/pretrain/<configuration>/last.pt");
  cmd->add_option("--epochs", o->epochs, "Epochs (default: plans)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--time-budget", o->time_budget_s, "Seconds for the run, 0 = none (default: plans)");
  cmd->add_option("--stop-after", o->stop_after_epochs, "Stop after N epochs of this invocation (then --resume)");
  cmd->add_option("--steps-per-epoch", o->steps_per_epoch, "Optimizer steps per epoch (default: cases / batch)");
  cmd->add_option("--mask-ratio", o->mask_ratio, "Share of the cubes hidden (0.6)");
  cmd->add_option("--mask-block", o->mask_block, "Cube edge in voxels (default: an eighth of the patch, at least 2)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", o->device, "cpu or cuda (default: plans)")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--threads", o->threads, "LibTorch threads (default: usable cores)");
  cmd->add_option("--workers", o->workers, "Loader worker threads (default: plans)");
  cmd->add_option("--dist-timeout", *timeout, "Data-parallel runs: seconds to wait for the ranks (as train)")
      ->check(CLI::PositiveNumber);
  cmd->callback([&action, o, work, plans, timeout] {
    o->work = *work;
    o->plans_file = *plans;
    action = [o, timeout] {
      o->collective = join_ranks(*timeout, o->threads, o->progress);
      const PretrainResult r = pretrain(*o);
      if (o->collective && !o->collective->main()) return 0;
      std::cerr << "pretrain: " << r.epochs_done << " epochs on " << r.cases << " cases"
                << (r.stopped_by_budget ? " (time budget)" : "") << ", masked MSE " << r.first_loss << " -> "
                << r.last_loss << "; encoder for train --init-encoder: " << (r.run_dir / "last.pt").string() << "\n";
      return 0;
    };
  });
}

}  // namespace aneura::app
