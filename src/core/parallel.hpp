// parallel_for over [0, n) on `threads` std::threads (0 = hardware concurrency). The first
// exception thrown by any task is rethrown in the caller after all threads joined.
#pragma once
#include <cstddef>
#include <functional>

namespace aneura {

unsigned default_threads();
void parallel_for(size_t n, unsigned threads, const std::function<void(size_t)>& task);

}  // namespace aneura
