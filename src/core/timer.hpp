// Wall-clock seconds for timings and time budgets (a steady clock: never jumps with the date).
#pragma once
#include <chrono>

namespace aneura {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

}  // namespace aneura
