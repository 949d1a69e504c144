// Progress of long batch work on stderr: "<label>: 12/60 series  3.1 series/s  ETA 15 s".
// On a terminal the line is redrawn in place; in a log (not a TTY) a line is printed at every
// 10 % step, so logs stay short.
#pragma once
#include <chrono>
#include <string>

namespace aneura {

class Progress {
 public:
  Progress(std::string label, int total, bool enabled = true);
  void update(int done);  // call with the number of finished items (thread-compatible: serialize calls)

 private:
  std::string label_;
  int total_;
  bool enabled_, tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace aneura
