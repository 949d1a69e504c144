// libaneura_itk.so: the commands that need ITK (NIfTI, resampling, filters) and no network.
#include "apps/aneura/commands.hpp"

void aneura::app::add_module_commands(CLI::App& app, Action& action) {
  add_convert(app, action);
  add_synth(app, action);
  add_preprocess(app, action);
  add_plan(app, action);
  add_evaluate(app, action);
  add_demo(app, action);
}
