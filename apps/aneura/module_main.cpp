// A module's entry point (one copy in each of libaneura_gdcm.so, libaneura_itk.so,
// libaneura_nn.so): its commands, parsed and run as the main program runs its own.
#include "apps/aneura/commands.hpp"

#include "core/error.hpp"

// Defined by the aneura program, which exports it (apps/aneura/CMakeLists.txt). Weak, so that the
// module links with --no-undefined: a missing object is a build error, not a failed dlopen.
extern "C" __attribute__((weak)) int aneura_run_cli(int argc, const char* const* argv);

namespace aneura::app {

int run_cli(const std::vector<std::string>& args) {
  if (!aneura_run_cli) throw Error(ErrorCode::Internal, "this module was loaded by a program other than aneura");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return aneura_run_cli(static_cast<int>(argv.size()), argv.data());
}

}  // namespace aneura::app

extern "C" __attribute__((visibility("default"))) int aneura_module_run(int argc, const char* const* argv) {
  using namespace aneura::app;
  CLI::App app{"aneura: intracranial aneurysm detection for CT angiography, MR angiography and brain MRI"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  Action action;
  add_module_commands(app, action);
  return run_app(app, action, std::vector<std::string>(argv, argv + argc));
}
