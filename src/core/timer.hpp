// Wall-clock seconds for timings and time budgets (a steady clock: never jumps with the date), and
// the process's peak memory.
#pragma once
#include <sys/resource.h>

#include <chrono>

namespace aneura {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

// The process's peak resident memory so far, MB (getrusage; all threads together).
inline double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace aneura
