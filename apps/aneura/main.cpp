// aneura: intracranial aneurysm detection from DICOM series. Only this layer decides exit codes
// and prints errors; the libraries throw aneura::Error (docs/CLI.md lists the codes). The network
// commands run in the network library (network.cpp), so this program does not load LibTorch.
#include "apps/aneura/commands.hpp"

namespace aneura::app {

int run_cli(const std::vector<std::string>& args) {
  for (const auto& c : network_commands())
    if (!args.empty() && args[0] == c.name) return run_network_cli(args);
  CLI::App app{"aneura: intracranial aneurysm detection for CT angiography, MR angiography and brain MRI"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  Action action;
  add_version(app, action);
  add_info(app, action);
  add_convert(app, action);
  add_synth(app, action);
  add_preprocess(app, action);
  add_plan(app, action);
  for (const auto& c : network_commands()) app.add_subcommand(c.name, c.description);  // listed; run above
  add_evaluate(app, action);
  add_demo(app, action);
  add_launch(app, action);
  add_merge(app, action);
  return run_app(app, action, args);
}

}  // namespace aneura::app

int main(int argc, char** argv) { return aneura::app::run_cli(std::vector<std::string>(argv + 1, argv + argc)); }
