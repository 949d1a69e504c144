// What the main program and its modules share: running a parsed command line, warnings, and the
// module commands' table.
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"

namespace aneura::app {

const std::vector<ModuleCommand>& module_commands() {
  static const char* gdcm = "libaneura_gdcm.so";
  static const char* itk = "libaneura_itk.so";
  static const char* nn = "libaneura_nn.so";
  static const std::vector<ModuleCommand> c = {
      {"info", "Describe the series in a DICOM folder (geometry, modality, dropped files)", gdcm},
      {"convert", "Convert a DICOM series to NIfTI (.nii or .nii.gz)", itk},
      {"synth", "Generate a synthetic dataset in the RSNA 2025 layout with known truth", itk},
      {"preprocess", "Harmonize every series of a dataset into the case cache WORK/cases", itk},
      {"fingerprint", "Summarise the case cache into WORK/fingerprint.json", itk},
      {"plan", "Choose spacing, ROI/patch, network size, batch, workers and queue into WORK/plans.json", itk},
      {"train", "Train the multi-task network on the case cache (one fold, or all with --all-folds)", nn},
      {"predict", "14 probabilities and aneurysm points per DICOM series, with every fold x flip TTA", nn},
      {"pretrain", "Self-supervised pre-training (masked image modelling) on every case, labelled or not", nn},
      {"evaluate", "Competition score (weighted AUC), per-column AUC and localization of predictions", itk},
      {"report", "HTML report: scores, ROC curves, training curves, MIPs with heatmap and points", itk},
      {"demo", "The whole system on synthetic data: synth, preprocess, plan, train, predict, evaluate, report", itk}};
  return c;
}

const char* describe(const std::string& name) {
  for (const auto& c : module_commands())
    if (name == c.name) return c.description;
  throw std::logic_error("no module command named " + name);
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
