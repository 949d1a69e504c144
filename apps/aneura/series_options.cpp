// The options that choose and read one series of a folder (info, convert).
#include "apps/aneura/commands.hpp"
#include "io/dicom_series.hpp"

namespace aneura::app {

void add_series_options(CLI::App* cmd, SeriesOptions& o) {
  cmd->add_option("--series", o.series_uid, "SeriesInstanceUID to use (default: the largest group)");
  cmd->add_option("--echo", o.echo, "EchoNumber to use (0: the lowest)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", o.threads, "Worker threads (0: all usable cores)");
  cmd->add_flag("--strict-spacing", o.strict_spacing, "Uneven slice spacing is an error instead of a resample");
  cmd->add_flag("--skip-corrupt", o.skip_corrupt, "Drop corrupt DICOM files with a warning instead of failing");
}

}  // namespace aneura::app
