// aneura demo: the README's main job on embedded synthetic data, every step an aneura command as
// a user would run it (the same parsing and exit codes):
//   synth (training set + held-out test set, other seed) -> info + convert (a series per
//   modality) -> preprocess -> fingerprint -> plan -> train (fold 0, the plans' time budget) ->
//   predict (held-out, both flips, maps) -> evaluate (score, localization, vessel Dice) -> report.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"
#include "dataset/rsna.hpp"
#include "plan/plans.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura::app {

namespace {

struct DemoArgs {
  std::string out = "out/demo";
  int train_series = 60, test_series = 40;
  double budget = -1;
  double spacing = 1.5;
};

// Runs one step; a failure stops the demo with the step's exit code (predict's 8 - a fallback
// row for an unreadable series - is reported and tolerated).
int step(const std::vector<std::string>& args, bool tolerate_fallback = false) {
  std::string line = "aneura";
  for (const auto& a : args) line += " " + a;
  std::fflush(stdout);  // the steps print to both streams: keep them in order when piped
  std::cerr << "\n== " << line << "\n";
  const int rc = run_cli(args);
  if (rc == 0 || (tolerate_fallback && rc == static_cast<int>(ErrorCode::Partial))) return 0;
  std::cerr << "demo: step failed with exit code " << rc << ": " << line << "\n";
  return rc;
}

int run_demo(const DemoArgs& a) {
  const fs::path out = a.out, data = out / "data", test = out / "test", work = out / "work";
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw Error(ErrorCode::OutputFailed, "cannot create the demo folder: " + ec.message(), out.string());
  if (int rc = step(
          {"synth", data.string(), "--n", std::to_string(a.train_series), "--size", "small", "--seed", "1", "--force"}))
    return rc;
  if (int rc = step({"synth", test.string(), "--n", std::to_string(a.test_series), "--size", "small", "--seed", "2",
                     "--cover-locations", "--force"}))
    return rc;
  // one series per modality: its header summary and a NIfTI conversion
  const RsnaDataset d = read_rsna(data);
  std::set<std::string> shown;
  for (const auto& e : d.series) {
    if (e.modality.empty() || !shown.insert(e.modality).second) continue;
    std::string name = e.modality;
    for (char& c : name)
      if (c == ' ') c = '_';
    if (int rc = step({"info", d.series_dir(e.uid).string()})) return rc;
    if (int rc = step({"convert", "-q", d.series_dir(e.uid).string(), "-o", (out / (name + ".nii.gz")).string()}))
      return rc;
  }
  // a fresh training run (the case cache is rebuilt by preprocess as needed)
  fs::remove_all(work / "runs", ec);
  fs::remove(work / "folds.json", ec);
  char spacing[32];
  std::snprintf(spacing, sizeof spacing, "%g", a.spacing);
  if (int rc = step({"preprocess", data.string(), work.string(), "--spacing", spacing, "--qa", "4"})) return rc;
  if (int rc = step({"fingerprint", work.string()})) return rc;
  if (int rc = step({"plan", work.string(), "--explain"})) return rc;
  std::vector<std::string> train{"train", work.string(), "--fold", "0"};
  if (a.budget >= 0) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", a.budget);
    train.insert(train.end(), {"--time-budget", b});
  }
  if (int rc = step(train)) return rc;
  const std::string config = read_plans(work / "plans.json").default_configuration;
  const fs::path model = work / "runs" / config, pred = out / "predictions.csv", points = out / "predictions_points";
  if (int rc =
          step({"predict", model.string(), "--data", test.string(), "-o", pred.string(), "--heatmaps", "-q"}, true))
    return rc;
  const fs::path eval = out / "evaluation.json";
  if (int rc = step({"evaluate", pred.string(), (test / "train.csv").string(), "--points", points.string(), "--data",
                     test.string(), "--json", eval.string()}))
    return rc;
  if (int rc = step({"report", work.string(), "--predictions", pred.string(), "--truth", (test / "train.csv").string(),
                     "--points", points.string(), "--data", test.string(), "-o", (out / "report").string()}))
    return rc;
  std::ifstream in(eval);
  const json j = json::parse(in);
  std::printf("\ndemo: competition score on the %d held-out series: ", j.at("series").get<int>());
  if (!j.at("score").is_null())
    std::printf("%.4f\n", j.at("score").get<double>());
  else
    std::printf("undefined (a location without positives); over the defined columns %.4f\n",
                j.at("defined_columns_score").get<double>());
  std::printf("demo: report in %s; model in %s; cases in %s; QA pictures in %s\n",
              (out / "report" / "index.html").string().c_str(), model.string().c_str(),
              (work / "cases").string().c_str(), (work / "qa").string().c_str());
  return 0;
}

}  // namespace

void add_demo(CLI::App& app, Action& action) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand("demo", describe("demo"));
  cmd->add_option("OUT", a->out, "Demo folder (data/, test/, work/, predictions.csv, evaluation.json, report/)");
  cmd->add_option("--train-series", a->train_series, "Synthetic training series")->check(CLI::Range(8, 100000));
  cmd->add_option("--test-series", a->test_series, "Synthetic held-out series")->check(CLI::Range(2, 100000));
  cmd->add_option("--budget", a->budget, "Training time budget in seconds (default: the plans')")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--spacing", a->spacing, "Case cache spacing, mm")->check(CLI::PositiveNumber);
  cmd->callback([&action, a] { action = [a] { return run_demo(*a); }; });
}

}  // namespace aneura::app
