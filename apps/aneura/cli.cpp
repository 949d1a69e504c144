// What the main program and the network library share: running a parsed command line, warnings,
// and the network commands' descriptions.
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"

namespace aneura::app {

const std::vector<NetworkCommand>& network_commands() {
  static const std::vector<NetworkCommand> c = {
      {"train", "Train the multi-task network on the case cache (one fold, or all with --all-folds)"},
      {"predict", "14 probabilities and aneurysm points per DICOM series, with every fold x flip TTA"},
      {"pretrain", "Self-supervised pre-training (masked image modelling) on every case, labelled or not"}};
  return c;
}

void print_warnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::cerr << "warning: " << w << "\n";
}

int run_app(CLI::App& app, Action& action, const std::vector<std::string>& args) {
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "error: " << e.what() << " (command line)\n";
    return static_cast<int>(ErrorCode::Usage);
  }
  try {
    return action ? action() : 0;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what();
    if (!e.where().empty()) std::cerr << " (" << e.where() << ")";
    std::cerr << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << " (internal)\n";
    return static_cast<int>(ErrorCode::Internal);
  }
}

}  // namespace aneura::app
