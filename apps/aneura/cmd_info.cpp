#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/aneura/commands.hpp"
#include "io/dicom_series.hpp"

namespace aneura::app {

namespace {

struct InfoArgs {
  std::string folder;
  bool json = false, list = false;
  SeriesOptions series;
};

nlohmann::json vec(const Vec3& v) { return {v[0], v[1], v[2]}; }

nlohmann::json plan_json(const SeriesPlan& p) {
  const Geometry& g = p.geometry;
  nlohmann::json dir = nlohmann::json::array();
  for (int c = 0; c < 3; ++c) dir.push_back(vec(g.axis(c)));
  nlohmann::json affine = nlohmann::json::array();
  for (const auto& row : g.affine_ras()) affine.push_back({row[0], row[1], row[2], row[3]});
  return {
      {"folder", p.folder.string()},
      {"series_uid", p.series_uid},
      {"study_uid", p.study_uid},
      {"modality", p.modality},
      {"plane", p.plane},
      {"orientation", g.orientation_code()},
      {"multiframe", p.multiframe},
      {"mosaic", p.mosaic},
      {"transfer_syntax", p.transfer_syntax},
      {"photometric", p.photometric},
      {"size", {g.size[0], g.size[1], g.size[2]}},
      {"volumes", p.volumes},
      {"spacing_mm", vec(g.spacing)},
      {"origin_lps_mm", vec(g.origin)},
      {"direction_lps_columns", dir},
      {"affine_ras", affine},
      {"slice_thickness_tag_mm", p.slice_thickness},
      {"resampled_uneven_spacing", p.resampled},
      {"gantry_tilt_deg", p.tilt_deg},
      {"gantry_tilt_resliced", !p.tilt_shift.empty()},
      {"images", p.slice_map.size()},
      {"files_scanned", p.files_scanned},
      {"non_dicom_files", p.non_dicom_files},
      {"non_image_dicom_files", p.non_image_dicom_files},
      {"dropped", p.dropped},
      {"warnings", p.warnings},
  };
}

// One line (or JSON object) per image group of the folder, largest first.
int run_list(const InfoArgs& a) {
  const auto all = list_series(a.folder, a.series.threads);
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& s : all)
      j.push_back({{"series_uid", s.series_uid},
                   {"modality", s.modality},
                   {"description", s.description},
                   {"plane", s.plane},
                   {"orientation", s.orientation},
                   {"columns", s.columns},
                   {"rows", s.rows},
                   {"images", s.images},
                   {"echo", s.echo},
                   {"multiframe", s.multiframe},
                   {"mosaic", s.mosaic}});
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  for (const auto& s : all)
    std::cout << s.series_uid << "  " << s.columns << " x " << s.rows << " x " << s.images << "  " << s.orientation
              << " " << s.plane << "  " << s.modality << (s.echo ? "  echo " + std::to_string(s.echo) : "")
              << (s.multiframe ? "  multi-frame" : "") << (s.mosaic ? "  mosaic" : "") << "  \"" << s.description
              << "\"\n";
  return 0;
}

int run_info(const InfoArgs& a) {
  if (a.list) return run_list(a);
  const SeriesPlan plan = plan_series(a.folder, a.series);
  if (a.json) {
    std::cout << plan_json(plan).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  const Geometry& g = plan.geometry;
  std::cout << std::setprecision(6);
  std::cout << "series      " << plan.series_uid << "\n"
            << "modality    " << plan.modality << "  plane " << plan.plane << "  orientation " << g.orientation_code()
            << (plan.multiframe ? "  multi-frame" : "") << (plan.mosaic ? "  mosaic" : "") << "\n"
            << "size        " << g.size[0] << " x " << g.size[1] << " x " << g.size[2]
            << (plan.volumes > 1 ? " x " + std::to_string(plan.volumes) + " volumes" : "") << "\n"
            << "spacing mm  " << g.spacing[0] << " x " << g.spacing[1] << " x " << g.spacing[2]
            << "  (SliceThickness tag " << plan.slice_thickness << ")\n"
            << "origin LPS  " << g.origin[0] << ", " << g.origin[1] << ", " << g.origin[2] << "\n"
            << "files       " << plan.files_scanned << " scanned, " << plan.slice_map.size() << " images used, "
            << plan.non_dicom_files << " not DICOM, " << plan.non_image_dicom_files << " DICOM without pixels\n";
  for (const auto& d : plan.dropped) std::cout << "dropped     " << d << "\n";
  for (const auto& w : plan.warnings) std::cout << "warning     " << w << "\n";
  return 0;
}

}  // namespace

void add_info(CLI::App& app, Action& action) {
  auto args = std::make_shared<InfoArgs>();
  auto* cmd = app.add_subcommand("info", describe("info"));
  cmd->add_option("SERIES_DIR", args->folder, "Folder (or file) holding the DICOM series")->required();
  cmd->add_flag("--json", args->json, "Print JSON instead of text");
  cmd->add_flag("--list", args->list,
                "List every series (image group) of the folder, largest first: UID, columns x rows x images, "
                "orientation, plane, modality, echo, SeriesDescription; then choose one with --series / --echo");
  add_series_options(cmd, args->series);
  cmd->callback([&action, args] { action = [args] { return run_info(*args); }; });
}

}  // namespace aneura::app
