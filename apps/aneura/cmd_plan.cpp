#include <fstream>
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "plan/planner.hpp"

namespace aneura::app {

namespace {

struct PlanArgs {
  std::string work, hardware;
  bool explain = false;
};

int run_fingerprint(const std::string& work) {
  const Fingerprint f = compute_fingerprint(work);
  write_text_atomically(std::filesystem::path(work) / "fingerprint.json", to_json(f).dump(1) + "\n");
  std::cerr << "fingerprint: " << f.all.cases << " cases (";
  bool first = true;
  for (const auto& [m, s] : f.by_modality) {
    std::cerr << (first ? "" : ", ") << m << " " << s.cases;
    first = false;
  }
  std::cerr << ") -> " << work << "/fingerprint.json\n";
  return 0;
}

int run_plan(const PlanArgs& a) {
  const std::filesystem::path work = a.work;
  const Fingerprint f = read_fingerprint(work / "fingerprint.json");
  HardwareProfile h = probe_hardware(work);
  if (!a.hardware.empty()) {
    std::ifstream in(a.hardware);
    if (!in) throw Error(ErrorCode::InputNotFound, "hardware profile not found", a.hardware);
    try {
      h = hardware_from_json(nlohmann::json::parse(in));
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::CorruptInput, std::string("hardware profile is not JSON: ") + e.what(), a.hardware);
    }
    h.source = a.hardware;
  }
  // How the cases were harmonized: the plans' normalization records it.
  const PlanResult r = make_plans(f, h, read_preprocess_params(work).value_or(HarmonizeParams{}));
  write_plans(r.plans, work / "plans.json");
  if (a.explain)
    for (const auto& line : r.explanation) std::cout << "- " << line << "\n";
  std::cerr << "plan: " << r.plans.configurations.size() << " configurations, default " << r.plans.default_configuration
            << " -> " << (work / "plans.json").string() << "\n";
  return 0;
}

}  // namespace

void add_plan(CLI::App& app, Action& action) {
  auto fp = std::make_shared<std::string>();
  auto* f = app.add_subcommand("fingerprint", describe("fingerprint"));
  f->add_option("WORK", *fp, "Work folder with cases/ (from aneura preprocess)")->required();
  f->callback([&action, fp] { action = [fp] { return run_fingerprint(*fp); }; });

  auto args = std::make_shared<PlanArgs>();
  auto* cmd = app.add_subcommand("plan", describe("plan"));
  cmd->add_option("WORK", args->work, "Work folder with fingerprint.json")->required();
  cmd->add_flag("--explain", args->explain, "Print the reasoning behind every choice");
  cmd->add_option("--hardware", args->hardware,
                  "Plan for this hardware profile (JSON: cores, ram_total_gb, gpus) instead of this machine");
  cmd->callback([&action, args] { action = [args] { return run_plan(*args); }; });
}

}  // namespace aneura::app
