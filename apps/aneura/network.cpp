// Loading the network library: libaneura_nn.so beside the executable (the build tree and an
// installation keep them together), opened once, on the first network command.
#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;

namespace aneura::app {

namespace {

using RunFunction = int (*)(int, const char* const*);

fs::path network_library_path() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return (ec ? fs::path(".") : exe.parent_path()) / "libaneura_nn.so";
}

}  // namespace

int run_network_cli(const std::vector<std::string>& args) {
  static RunFunction run = nullptr;
  if (!run) {
    const fs::path lib = network_library_path();
    void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    const char* why = handle ? nullptr : dlerror();
    if (handle) run = reinterpret_cast<RunFunction>(dlsym(handle, "aneura_nn_run"));
    if (!run) {
      std::cerr << "error: cannot load the network commands' library: " << (why ? why : "no aneura_nn_run in it")
                << " (" << lib.string() << ")\n";
      return static_cast<int>(ErrorCode::Internal);
    }
  }
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return run(static_cast<int>(argv.size()), argv.data());
}

}  // namespace aneura::app
