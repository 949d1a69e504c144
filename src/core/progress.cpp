#include "core/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace aneura {

Progress::Progress(std::string label, int total, bool enabled, std::string unit, Mode mode)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      tty_(::isatty(2) != 0),
      transient_(mode == Mode::TerminalOnly),
      start_(std::chrono::steady_clock::now()) {
  enabled_ = enabled && (tty_ || mode == Mode::Always);
}

void Progress::update(int done, const std::string& detail) {
  if (!enabled_ || total_ <= 0) return;
  const int decile = done * 10 / total_;
  if (!tty_ && decile == last_decile_ && done != total_) return;
  last_decile_ = decile;
  if (tty_ && transient_ && done >= total_) {  // done: the line is cleared for the caller's summary
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    return;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = done / std::max(secs, 1e-9);
  std::fprintf(stderr, "%s%s: %d/%d %s  %.2f %s/s  ETA %.0f s%s%s%s", tty_ ? "\r" : "", label_.c_str(), done, total_,
               unit_.c_str(), rate, unit_.c_str(), (total_ - done) / std::max(rate, 1e-9), detail.empty() ? "" : "  ",
               detail.c_str(), tty_ && done != total_ ? "   " : "\n");
  std::fflush(stderr);
}

}  // namespace aneura
