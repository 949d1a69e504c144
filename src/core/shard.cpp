#include "core/shard.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/parallel.hpp"

namespace aneura {

namespace {

std::optional<int> to_int(const std::string& s) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoi(s);
}

}  // namespace

std::vector<std::string> Shard::select(std::vector<std::string> names) const {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::vector<std::string> out;
  for (size_t k = 0; k < names.size(); ++k)
    if (static_cast<int>(k % static_cast<size_t>(count)) == index) out.push_back(names[k]);
  return out;
}

std::filesystem::path shard_file(const std::filesystem::path& file, const Shard& shard) {
  if (shard.all()) return file;
  return file.parent_path() / (file.stem().string() + ".shard-" + shard.name() + file.extension().string());
}

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  const auto i = slash == std::string::npos ? std::nullopt : to_int(text.substr(0, slash));
  const auto n = slash == std::string::npos ? std::nullopt : to_int(text.substr(slash + 1));
  if (!i || !n || *n < 1 || *i >= *n)
    throw Error(ErrorCode::Usage, "--shard '" + text + "' is not I/N with 0 <= I < N (e.g. 0/4 ... 3/4)");
  return {*i, *n};
}

std::optional<Shard> slurm_array_shard(const std::function<std::optional<std::string>(const std::string&)>& get) {
  const auto id = get("SLURM_ARRAY_TASK_ID"), count = get("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return std::nullopt;
  const auto min = get("SLURM_ARRAY_TASK_MIN");
  const auto i = to_int(*id), n = to_int(*count), lo = min ? to_int(*min) : std::optional<int>(0);
  if (!i || !n || !lo || *n < 1 || *i < *lo || *i - *lo >= *n)
    throw Error(ErrorCode::Usage, "SLURM_ARRAY_TASK_ID=" + *id + " is not within SLURM_ARRAY_TASK_MIN=" +
                                      (min ? *min : std::string("0")) + " + SLURM_ARRAY_TASK_COUNT=" + *count +
                                      " (a job array's tasks must be numbered consecutively)");
  return Shard{*i - *lo, *n};
}

Shard command_shard(const std::string& option) {
  if (!option.empty()) return parse_shard(option);
  const auto array = slurm_array_shard(env_value);
  return array ? *array : Shard{};
}

}  // namespace aneura
