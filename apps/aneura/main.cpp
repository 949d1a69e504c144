// aneura: intracranial aneurysm detection from DICOM series. Only this layer decides exit codes
// and prints errors; the libraries throw aneura::Error (docs/CLI.md lists the codes). The program
// holds the commands that need no imaging library; the others run in modules loaded on use
// (modules.cpp), so `aneura version` loads neither GDCM, ITK nor LibTorch.
#include "apps/aneura/commands.hpp"

namespace aneura::app {

int run_cli(const std::vector<std::string>& args) {
  for (const auto& c : module_commands())
    if (!args.empty() && args[0] == c.name) return run_module_cli(c.library, args);
  CLI::App app{"aneura: intracranial aneurysm detection for CT angiography, MR angiography and brain MRI"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  Action action;
  add_version(app, action);
  for (const auto& c : module_commands()) app.add_subcommand(c.name, c.description);  // listed; run above
  add_launch(app, action);
  add_merge(app, action);
  return run_app(app, action, args);
}

}  // namespace aneura::app

// The modules' way back to the whole command line (demo runs the others through it).
extern "C" int aneura_run_cli(int argc, const char* const* argv) {
  return aneura::app::run_cli(std::vector<std::string>(argv, argv + argc));
}

int main(int argc, char** argv) { return aneura::app::run_cli(std::vector<std::string>(argv + 1, argv + argc)); }
