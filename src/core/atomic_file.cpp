#include "core/atomic_file.hpp"

#include <unistd.h>

#include <atomic>
#include <fstream>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace aneura {

namespace {
// ".nii.gz" style double extension, so writers that pick a format by name still see it.
std::string full_extension(const std::string& name) {
  const auto dot = name.find('.', 1);
  return dot == std::string::npos ? std::string() : name.substr(dot);
}
}  // namespace

void write_atomically(const fs::path& dest, const std::function<void(const fs::path&)>& write) {
  const fs::path dir = dest.has_parent_path() ? dest.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(ErrorCode::OutputFailed, "output folder does not exist", dir.string());
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error(ErrorCode::OutputFailed, "output folder is not writable", dir.string());
  static std::atomic<unsigned> counter{0};
  const std::string name = dest.filename().string();
  const fs::path tmp =
      dir / ("." + name + ".tmp" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + full_extension(name));
  try {
    write(tmp);
    fs::rename(tmp, dest);
  } catch (const Error&) {
    fs::remove(tmp, ec);
    throw;
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    throw Error(ErrorCode::OutputFailed, std::string("cannot write output: ") + e.what(), dest.string());
  }
}

void write_text_atomically(const fs::path& dest, const std::string& text) {
  write_atomically(dest, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.close();
    if (!out) throw Error(ErrorCode::OutputFailed, "cannot write output", dest.string());
  });
}

}  // namespace aneura
