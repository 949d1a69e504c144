#include "core/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace aneura {

Progress::Progress(std::string label, int total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(::isatty(2) != 0),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(int done) {
  if (!enabled_ || total_ <= 0) return;
  const int decile = done * 10 / total_;
  if (!tty_ && decile == last_decile_ && done != total_) return;
  last_decile_ = decile;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = done / std::max(secs, 1e-9);
  std::fprintf(stderr, "%s%s: %d/%d series  %.2f series/s  ETA %.0f s%s", tty_ ? "\r" : "", label_.c_str(), done,
               total_, rate, (total_ - done) / std::max(rate, 1e-9), tty_ && done != total_ ? "   " : "\n");
  std::fflush(stderr);
}

}  // namespace aneura
