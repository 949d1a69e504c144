// aneura: intracranial aneurysm detection from DICOM series. Only this layer decides exit codes
// and prints errors; the libraries throw aneura::Error (docs/CLI.md lists the codes).
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"aneura: intracranial aneurysm detection for CT angiography, MR angiography and brain MRI"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  aneura::app::Action action;
  aneura::app::add_version(app, action);
  aneura::app::add_info(app, action);
  aneura::app::add_convert(app, action);
  aneura::app::add_synth(app, action);
  aneura::app::add_preprocess(app, action);
  aneura::app::add_plan(app, action);
  aneura::app::add_train(app, action);
  aneura::app::add_predict(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "error: " << e.what() << " (command line)\n";
    return static_cast<int>(aneura::ErrorCode::Usage);
  }
  try {
    return action ? action() : 0;
  } catch (const aneura::Error& e) {
    std::cerr << "error: " << e.what();
    if (!e.where().empty()) std::cerr << " (" << e.where() << ")";
    std::cerr << "\n";
    return e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << " (internal)\n";
    return static_cast<int>(aneura::ErrorCode::Internal);
  }
}
