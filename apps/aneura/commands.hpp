// Subcommands: each registers its options on the CLI11 app and returns the action to run.
// The commands that run a network (train, predict, pretrain) live in the network library libaneura_nn.so,
// beside the executable, which is loaded only when one of them runs: the other commands never
// load LibTorch, so they start in milliseconds.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace aneura {
class Collective;
}

namespace aneura::app {

using Action = std::function<int()>;

void add_version(CLI::App& app, Action& action);
void add_info(CLI::App& app, Action& action);
void add_convert(CLI::App& app, Action& action);
void add_synth(CLI::App& app, Action& action);
void add_preprocess(CLI::App& app, Action& action);
void add_plan(CLI::App& app, Action& action);      // fingerprint + plan
void add_evaluate(CLI::App& app, Action& action);  // evaluate + report
void add_demo(CLI::App& app, Action& action);
void add_launch(CLI::App& app, Action& action);  // the ranks of a data-parallel train or pretrain
void add_merge(CLI::App& app, Action& action);   // the parts of a sharded predict
// In the network library:
void add_train(CLI::App& app, Action& action);
void add_predict(CLI::App& app, Action& action);
void add_pretrain(CLI::App& app, Action& action);
// (network library) A data-parallel run when the environment names one (torchrun, SLURM or `aneura
// launch`): joins the process group, waiting up to `timeout_s`; the ranks of one machine share its
// cores (`threads` 0 becomes the usable cores / LOCAL_WORLD_SIZE); ranks other than 0 only warn
// (`progress` off). Null for one process.
std::shared_ptr<const Collective> join_ranks(int timeout_s, int& threads, bool& progress);

// The network commands' names and one-line descriptions (the main program lists them in its help).
struct NetworkCommand {
  const char* name;
  const char* description;
};
const std::vector<NetworkCommand>& network_commands();

// Parses and runs one command line (without the program name), as main does: the exit code.
int run_cli(const std::vector<std::string>& args);
// Runs a network command line in the network library (loaded on first use). A library that cannot
// be loaded is exit 1 with the reason.
int run_network_cli(const std::vector<std::string>& args);
// Parses `args` with `app` and runs the action its callbacks chose: parse errors are exit 2,
// aneura::Error its documented code, any other exception exit 1, each printed as "error: ...".
int run_app(CLI::App& app, Action& action, const std::vector<std::string>& args);

// Prints warnings the way every command does: "warning: ..." on stderr.
void print_warnings(const std::vector<std::string>& warnings);

}  // namespace aneura::app
