// libaneura_nn.so: the commands that run a network (they load LibTorch).
#include "apps/aneura/commands.hpp"

void aneura::app::add_module_commands(CLI::App& app, Action& action) {
  add_train(app, action);
  add_predict(app, action);
  add_pretrain(app, action);
}
