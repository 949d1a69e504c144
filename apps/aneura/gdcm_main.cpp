// libaneura_gdcm.so: the commands that read DICOM and need nothing else (GDCM only, no ITK).
#include "apps/aneura/commands.hpp"

void aneura::app::add_module_commands(CLI::App& app, Action& action) { add_info(app, action); }
