// Data-parallel runs over LibTorch's c10d: which process this is (the environment torchrun or
// SLURM sets, or `aneura launch`), and the process group (a TCPStore at the master, Gloo). Each
// rank trains on its share of every global batch; gradients are summed by all-reduce (collective.hpp).
#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/parallel.hpp"
#include "train/collective.hpp"

namespace aneura {

struct DistEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string from;  // "torchrun" (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), "slurm", "" (one process)
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// torchrun's variables when RANK and WORLD_SIZE are set; else SLURM's when SLURM_PROCID is set
// (SLURM_NTASKS, SLURM_LOCALID; the master is the first host of SLURM_JOB_NODELIST or
// SLURM_NODELIST unless MASTER_ADDR is set; MASTER_PORT or 29500); else one process.
// Throws Error(Usage) for a malformed or inconsistent value, naming the variable.
DistEnv dist_env(const EnvLookup& get = env_value);

// The first host of a SLURM node list: "gpu[03-05,07],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);

// Whether this build has c10d's Gloo process group (libgloo-dev at build time).
bool distributed_available();

// The process group of `env` (world > 1): waits up to `timeout` for every rank to join; a
// collective that fails (a rank died, or did not answer within `timeout`) throws
// Error(ErrorCode::Distributed). world == 1: the local collective. Throws Error(Unsupported)
// when this build has no Gloo.
std::shared_ptr<const Collective> connect(const DistEnv& env, std::chrono::seconds timeout);

}  // namespace aneura
