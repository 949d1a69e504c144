// parallel_for over [0, n) on `threads` std::threads (0 = hardware concurrency). The first
// exception thrown by any task is rethrown in the caller after all threads joined. And what the
// process' environment says (threads, ranks, shards).
#pragma once
#include <cstddef>
#include <functional>
#include <optional>
#include <string>

namespace aneura {

unsigned default_threads();
void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)>& task);

// The value of an environment variable, nullopt when it is not set.
std::optional<std::string> env_value(const std::string& name);

}  // namespace aneura
