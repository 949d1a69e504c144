// Progress of long work on stderr: "<label>: 12/60 series  3.1 series/s  ETA 15 s  <detail>".
// On a terminal the line is redrawn in place; in a log (not a TTY) a line is printed at every
// 10 % step, so logs stay short, or nothing at all in Mode::TerminalOnly (work that logs its own
// summary, e.g. a training epoch), whose line is also cleared from the terminal when it is done.
#pragma once
#include <chrono>
#include <string>

namespace aneura {

class Progress {
 public:
  enum class Mode { Always, TerminalOnly };
  Progress(std::string label, int total, bool enabled = true, std::string unit = "series", Mode mode = Mode::Always);
  // Call with the number of finished items (thread-compatible: serialize calls).
  void update(int done, const std::string& detail = "");

 private:
  std::string label_, unit_;
  int total_;
  bool enabled_, tty_, transient_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace aneura
