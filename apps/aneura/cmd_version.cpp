#include <iostream>

#include "apps/aneura/commands.hpp"

#ifndef ANEURA_VERSION
#define ANEURA_VERSION "unknown"
#endif

namespace aneura::app {

void add_version(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("version", "Print the aneura version");
  cmd->callback([&action] {
    action = [] {
      std::cout << "aneura " << ANEURA_VERSION << "\n";
      return 0;
    };
  });
}

}  // namespace aneura::app
