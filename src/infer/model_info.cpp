#include "infer/model_info.hpp"

#include <fstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

ModelInfo read_model_info(const fs::path& model_dir) {
  const fs::path file = model_dir / "model.json";
  std::ifstream in(file);
  if (!in) throw Error(ErrorCode::InputNotFound, "no model.json (train a model first)", file.string());
  try {
    const json j = json::parse(in);
    ModelInfo m;
    const Plans plans = plans_from_json(j.at("plans"));
    m.cfg = plans.get(j.at("configuration"));
    m.plans_global = plans.global;
    m.in_channels = j.at("in_channels");
    m.folds = j.at("folds");
    m.harmonize = harmonize_params_from_json(j.at("harmonize"));
    if (j.contains("prior")) m.prior = j.at("prior").get<std::array<double, kNumLabels>>();
    if (j.contains("location_points")) m.locations = LocationPrior::from_json(j.at("location_points"));
    if (j.contains("roi_offsets")) m.roi_offsets = RoiOffsets::from_json(j.at("roi_offsets"));  // else the defaults
    if (j.contains("init_encoder") && j.at("init_encoder").is_string()) m.init_encoder = j.at("init_encoder");
    if (j.contains("candidate_model") && j.at("candidate_model").is_string())
      m.candidate_model = j.at("candidate_model");
    return m;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad model.json: ") + e.what(), file.string());
  } catch (const Error& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad model.json: ") + e.what(), file.string());
  }
}

void write_model_info(const fs::path& model_dir, const ModelInfo& m) {
  Plans one;
  one.default_configuration = m.cfg.name;
  one.global = m.plans_global;
  one.raw[m.cfg.name] = configuration_to_json(m.cfg);
  const json j = {
      {"configuration", m.cfg.name},
      {"in_channels", m.in_channels},
      {"folds", m.folds},
      {"modalities", modality_names()},
      {"labels", label_names()},
      {"harmonize", harmonize_params_to_json(m.harmonize)},
      {"prior", m.prior},
      {"location_points", m.locations.to_json()},
      {"roi_offsets", m.roi_offsets.to_json()},
      {"init_encoder", m.init_encoder.empty() ? json(nullptr) : json(m.init_encoder)},  // null: from scratch
      {"candidate_model", m.candidate_model.empty() ? json(nullptr) : json(m.candidate_model)},
      {"plans", to_json(one)}};
  write_text_atomically(model_dir / "model.json", j.dump(1) + "\n");
}

}  // namespace aneura
