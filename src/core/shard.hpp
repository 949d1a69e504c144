// A deterministic share of a batch of items for one of several independent processes (a SLURM job
// array, or machines started by hand): item k of the items sorted by name belongs to shard
// k mod count. Shards write disjoint outputs; a later unsharded run sees all of them.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace aneura {

struct Shard {
  int index = 0, count = 1;  // 0 <= index < count
  bool all() const { return count == 1; }
  std::string name() const { return std::to_string(index) + "-of-" + std::to_string(count); }
  // The names (in any order) that belong to this shard.
  std::vector<std::string> select(std::vector<std::string> names) const;
};

// A shard's own file beside `file`: name.shard-I-of-N.ext (`file` itself for the whole batch).
std::filesystem::path shard_file(const std::filesystem::path& file, const Shard& shard);

// "I/N" (0 <= I < N). Throws Error(Usage) otherwise.
Shard parse_shard(const std::string& text);

// A SLURM job array's shard: SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT;
// nullopt outside an array. Throws Error(Usage) for inconsistent values.
std::optional<Shard> slurm_array_shard(const std::function<std::optional<std::string>(const std::string&)>& get);

// A command's shard: its --shard option when given, else the SLURM job array's, else the whole batch.
Shard command_shard(const std::string& option);

}  // namespace aneura
