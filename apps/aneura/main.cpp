// aneura: intracranial aneurysm detection from DICOM series. Only this layer decides exit codes
// and prints errors; the libraries throw aneura::Error (docs/CLI.md lists the codes).
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"

namespace aneura::app {

int run_cli(const std::vector<std::string>& args) {
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
  add_train(app, action);
  add_predict(app, action);
  add_demo(app, action);
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

int main(int argc, char** argv) { return aneura::app::run_cli(std::vector<std::string>(argv + 1, argv + argc)); }
