// Subcommands: each registers its options on the CLI11 app and returns the action to run.
// The program itself holds only the commands that need no imaging library (version, launch,
// merge). The others live in three modules beside the executable, each loaded only when one of its
// commands runs (module_commands() says which): libaneura_gdcm.so (info: GDCM), libaneura_itk.so
// (the commands that also need ITK) and libaneura_nn.so (those that also run a network: LibTorch).
// So `aneura version` loads none of them and `info` no ITK or LibTorch.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace aneura {
class Collective;
struct SeriesOptions;
}  // namespace aneura

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
// The options choosing and reading one series of a folder (info, convert).
void add_series_options(CLI::App* cmd, SeriesOptions& o);
// In the network library:
void add_train(CLI::App& app, Action& action);
void add_predict(CLI::App& app, Action& action);
void add_pretrain(CLI::App& app, Action& action);
// (network library) A data-parallel run when the environment names one (torchrun, SLURM or `aneura
// launch`): joins the process group, waiting up to `timeout_s`; the ranks of one machine share its
// cores (`threads` 0 becomes the usable cores / LOCAL_WORLD_SIZE); ranks other than 0 only warn
// (`progress` off). Null for one process.
std::shared_ptr<const Collective> join_ranks(int timeout_s, int& threads, bool& progress);

// The commands that live in a module: name, one-line description (the main program lists them in
// its help, the module registers them with it) and the module's file name.
struct ModuleCommand {
  const char* name;
  const char* description;
  const char* library;
};
const std::vector<ModuleCommand>& module_commands();
// The description of a module command by name (a name not in module_commands() is a bug: throws).
const char* describe(const std::string& name);

// (module) Registers the module's commands: defined once in each module (gdcm_main.cpp,
// itk_main.cpp, nn_main.cpp); module_main.cpp runs them.
void add_module_commands(CLI::App& app, Action& action);

// Parses and runs one command line (without the program name), as main does: the exit code. In a
// module it goes back to the program (its exported aneura_run_cli), so demo reaches every command.
int run_cli(const std::vector<std::string>& args);
// (program) Runs a command line in a module, loaded on first use from beside the executable. A
// module that cannot be loaded is exit 1 with the reason and its path.
int run_module_cli(const std::string& library, const std::vector<std::string>& args);
// Parses `args` with `app` and runs the action its callbacks chose: parse errors are exit 2,
// aneura::Error its documented code, any other exception exit 1, each printed as "error: ...".
int run_app(CLI::App& app, Action& action, const std::vector<std::string>& args);

// Prints warnings the way every command does: "warning: ..." on stderr.
void print_warnings(const std::vector<std::string>& warnings);

}  // namespace aneura::app
