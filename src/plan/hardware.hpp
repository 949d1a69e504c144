// What the machine offers: usable cores (CPU affinity and cgroup quota, not just the core count),
// RAM (total and available, capped by a cgroup memory limit), GPUs and their free memory
// (through LibTorch when aneura is built with CUDA; none otherwise), and free disk in WORK.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace aneura {

struct GpuInfo {
  std::string name;
  double total_gb = 0, free_gb = 0;
};

struct HardwareProfile {
  int cores = 1;  // usable
  double ram_total_gb = 0, ram_available_gb = 0;
  std::vector<GpuInfo> gpus;
  double disk_free_gb = 0;       // where the work folder is
  bool cpu_bf16 = false;         // the CPU computes bf16 natively (AMX-BF16 or AVX512-BF16)
  std::string source = "probe";  // "probe" or the profile file it came from
};

HardwareProfile probe_hardware(const std::filesystem::path& work);

nlohmann::json to_json(const HardwareProfile& h);
HardwareProfile hardware_from_json(const nlohmann::json& j);  // throws Error(CorruptInput)

// Registered by the LibTorch layer when built with CUDA; empty otherwise.
using GpuProbe = std::vector<GpuInfo> (*)();
void set_gpu_probe(GpuProbe probe);

// Whether /proc/cpuinfo's text lists amx_bf16 or avx512_bf16 among a processor's flags; exposed for tests.
bool cpuinfo_has_bf16(const std::string& cpuinfo_text);

// The cgroup CPU limit (cpu.max quota / period), 0 when unlimited; exposed for tests.
double cgroup_cpu_limit(const std::string& cpu_max_text);

}  // namespace aneura
