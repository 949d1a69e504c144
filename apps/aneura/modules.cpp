// Loading a module (libaneura_gdcm.so, libaneura_itk.so, libaneura_nn.so): from beside the
// executable (the build tree and an installation keep them together), opened once, on the first
// command that lives in it.
#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;

namespace aneura::app {

namespace {

using RunFunction = int (*)(int, const char* const*);

fs::path module_path(const std::string& library) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return (ec ? fs::path(".") : exe.parent_path()) / library;
}

}  // namespace

int run_module_cli(const std::string& library, const std::vector<std::string>& args) {
  static std::map<std::string, RunFunction> loaded;
  RunFunction& run = loaded[library];
  if (!run) {
    const fs::path lib = module_path(library);
    // Lazy binding saves ~10 ms of ITK relocations; the modules are linked with --no-undefined, so
    // each of their symbols was found at build time.
    void* handle = dlopen(lib.c_str(), RTLD_LAZY | RTLD_LOCAL);
    const char* why = handle ? nullptr : dlerror();
    if (handle) run = reinterpret_cast<RunFunction>(dlsym(handle, "aneura_module_run"));
    if (!run) {
      std::cerr << "error: cannot load the module of the '" << (args.empty() ? "" : args[0])
                << "' command: " << (why ? why : "no aneura_module_run in it") << " (" << lib.string() << ")\n";
      return static_cast<int>(ErrorCode::Internal);
    }
  }
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return run(static_cast<int>(argv.size()), argv.data());
}

}  // namespace aneura::app
