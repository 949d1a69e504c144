#include "plan/hardware.hpp"

#include <sys/statvfs.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/parallel.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {

namespace {

GpuProbe g_gpu_probe = nullptr;

std::string slurp(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "MemTotal:       24596476 kB" -> GB
double meminfo_gb(const std::string& text, const std::string& key) {
  const size_t at = text.find(key + ":");
  if (at == std::string::npos) return 0;
  return std::strtod(text.c_str() + at + key.size() + 1, nullptr) / (1024.0 * 1024.0);
}

}  // namespace

void set_gpu_probe(GpuProbe probe) { g_gpu_probe = probe; }

double cgroup_cpu_limit(const std::string& text) {
  std::istringstream in(text);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double q = std::strtod(quota.c_str(), nullptr);
  return q > 0 ? q / period : 0;
}

bool cpuinfo_has_bf16(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? line.size() : line.find(':') + 1));
    for (std::string w; words >> w;)
      if (w == "amx_bf16" || w == "avx512_bf16") return true;
  }
  return false;
}

HardwareProfile probe_hardware(const fs::path& work) {
  HardwareProfile h;
  h.cores = static_cast<int>(default_threads());  // affinity mask
  const double quota = cgroup_cpu_limit(slurp("/sys/fs/cgroup/cpu.max"));
  if (quota > 0) h.cores = std::max(1, std::min(h.cores, static_cast<int>(std::floor(quota))));
  const std::string mem = slurp("/proc/meminfo");
  h.ram_total_gb = meminfo_gb(mem, "MemTotal");
  h.ram_available_gb = meminfo_gb(mem, "MemAvailable");
  const std::string limit = slurp("/sys/fs/cgroup/memory.max");
  if (!limit.empty() && limit.rfind("max", 0) != 0) {
    const double gb = std::strtod(limit.c_str(), nullptr) / (1024.0 * 1024.0 * 1024.0);
    if (gb > 0) {
      h.ram_total_gb = std::min(h.ram_total_gb, gb);
      h.ram_available_gb = std::min(h.ram_available_gb, gb);
    }
  }
  h.cpu_bf16 = cpuinfo_has_bf16(slurp("/proc/cpuinfo"));
  if (g_gpu_probe) h.gpus = g_gpu_probe();
  std::error_code ec;
  fs::path p = work;
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  struct statvfs st;
  if (::statvfs((p.empty() ? fs::path(".") : p).c_str(), &st) == 0)
    h.disk_free_gb = double(st.f_bavail) * st.f_frsize / (1024.0 * 1024.0 * 1024.0);
  return h;
}

json to_json(const HardwareProfile& h) {
  json gpus = json::array();
  for (const auto& g : h.gpus) gpus.push_back({{"name", g.name}, {"total_gb", g.total_gb}, {"free_gb", g.free_gb}});
  return {{"cores", h.cores},
          {"ram_total_gb", h.ram_total_gb},
          {"ram_available_gb", h.ram_available_gb},
          {"cpu_bf16", h.cpu_bf16},
          {"gpus", gpus},
          {"disk_free_gb", h.disk_free_gb},
          {"source", h.source}};
}

HardwareProfile hardware_from_json(const json& j) {
  try {
    HardwareProfile h;
    h.cores = j.at("cores");
    h.ram_total_gb = j.at("ram_total_gb");
    h.ram_available_gb = j.value("ram_available_gb", h.ram_total_gb);
    for (const auto& g : j.value("gpus", json::array()))
      h.gpus.push_back(
          {g.value("name", std::string("gpu")), g.at("total_gb"), g.value("free_gb", g.at("total_gb").get<double>())});
    h.disk_free_gb = j.value("disk_free_gb", 0.0);
    h.cpu_bf16 = j.value("cpu_bf16", false);  // (profiles from before it: not known, so not assumed)
    h.source = j.value("source", std::string("profile"));
    if (h.cores < 1 || h.ram_total_gb <= 0)
      throw Error(ErrorCode::CorruptInput, "hardware profile needs cores >= 1 and ram_total_gb > 0");
    return h;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::CorruptInput, std::string("bad hardware profile: ") + e.what());
  }
}

}  // namespace aneura
