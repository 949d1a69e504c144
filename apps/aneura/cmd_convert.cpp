#include <chrono>
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"
#include "harmonize/orient.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"

namespace aneura::app {

namespace {

struct ConvertArgs {
  std::string folder, output;
  std::string layout = "dcm2niix";
  bool quiet = false;
  SeriesOptions series;
};

int run_convert(const ConvertArgs& a) {
  const std::string& out = a.output;
  const bool nii = out.size() > 4 && out.compare(out.size() - 4, 4, ".nii") == 0;
  const bool niigz = out.size() > 7 && out.compare(out.size() - 7, 7, ".nii.gz") == 0;
  if (!nii && !niigz) throw Error(ErrorCode::Usage, "output must end in .nii or .nii.gz", out);
  const auto t0 = std::chrono::steady_clock::now();
  using clock = std::chrono::steady_clock;
  auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };
  const SeriesPlan plan = plan_series(a.folder, a.series);
  const double t_scan = since(t0);
  // Decode in the output's row order and, where every value is an exact int16, as int16: the
  // volume is then written as it is, with no conversion or reordering copy (dcm2niix's layout of a
  // 3D acquisition: turned to its nearest canonical orientation first, as dcm2niix does).
  const bool native = a.layout == "native";
  const RowOrder rows = native ? RowOrder::TopDown : RowOrder::BottomUp;
  double t_decode = 0;
  Geometry written;
  auto decode_and_write = [&](auto volume) {
    if (!native && dcm2niix_rotates(plan)) volume = reorient(volume, dcm2niix_rotation(volume.geom));
    t_decode = since(t0) - t_scan;
    written = volume.geom;
    write_nifti(volume, out, NiftiLayout::Native);
  };
  if (volume_fits_int16(plan))
    decode_and_write(load_volume<int16_t>(plan, a.series.threads, rows));
  else
    decode_and_write(load_volume<float>(plan, a.series.threads, rows));
  const double secs = since(t0);
  print_warnings(plan.warnings);
  for (const auto& d : plan.dropped) std::cerr << "note: " << d << "\n";
  if (!a.quiet) {
    const auto& g = written;
    std::cerr << "converted " << plan.slice_map.size() << " images -> " << g.size[0] << "x" << g.size[1] << "x"
              << g.size[2] << (plan.volumes > 1 ? "x" + std::to_string(plan.volumes) : "") << " " << out << " in "
              << secs << " s (scan " << t_scan << ", decode " << t_decode << ", write " << secs - t_scan - t_decode
              << ")\n";
  }
  return 0;
}

}  // namespace

void add_convert(CLI::App& app, Action& action) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand("convert", describe("convert"));
  cmd->add_option("SERIES_DIR", args->folder, "Folder (or file) holding the DICOM series")->required();
  cmd->add_option("-o,--output", args->output, "Output NIfTI file (.nii or .nii.gz)")->required();
  cmd->add_option("--layout", args->layout, "Voxel order: dcm2niix (rows flipped, as dcm2niix) or native (DICOM order)")
      ->check(CLI::IsMember({"dcm2niix", "native"}));
  cmd->add_flag("-q,--quiet", args->quiet, "No summary line");
  add_series_options(cmd, args->series);
  cmd->callback([&action, args] { action = [args] { return run_convert(*args); }; });
}

}  // namespace aneura::app
