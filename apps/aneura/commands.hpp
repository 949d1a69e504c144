// Subcommands: each registers its options on the CLI11 app and returns the action to run.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace aneura::app {

using Action = std::function<int()>;

void add_version(CLI::App& app, Action& action);
void add_info(CLI::App& app, Action& action);
void add_convert(CLI::App& app, Action& action);
void add_synth(CLI::App& app, Action& action);
void add_preprocess(CLI::App& app, Action& action);
void add_plan(CLI::App& app, Action& action);  // fingerprint + plan
void add_train(CLI::App& app, Action& action);
void add_predict(CLI::App& app, Action& action);  // predict + evaluate
void add_demo(CLI::App& app, Action& action);

// Parses and runs one command line (without the program name), as main does: the exit code.
int run_cli(const std::vector<std::string>& args);

// Prints warnings the way every command does: "warning: ..." on stderr.
void print_warnings(const std::vector<std::string>& warnings);

}  // namespace aneura::app
