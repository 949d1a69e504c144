// The network library's entry point (libaneura_nn.so): the commands that run a network, parsed
// and run as the main program runs the others.
#include "apps/aneura/commands.hpp"

extern "C" __attribute__((visibility("default"))) int aneura_nn_run(int argc, const char* const* argv) {
  using namespace aneura::app;
  CLI::App app{"aneura: intracranial aneurysm detection for CT angiography, MR angiography and brain MRI"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  Action action;
  add_train(app, action);
  add_predict(app, action);
  add_pretrain(app, action);
  return run_app(app, action, std::vector<std::string>(argv, argv + argc));
}
