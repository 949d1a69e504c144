// GDCM's assertions as refusals. Debian builds GDCM with assertions on, and its parser asserts on
// some damaged files (libFuzzer found several the data-set walk of dicom_header.cpp lets through:
// docs/EXPERIMENTS.md). `without_abort(file, what, fn)` runs fn; an abort() raised on this thread
// inside it (an assertion's) jumps back here and becomes Error(CorruptInput, what, file), so one
// damaged file costs its series, not the process. What fn had allocated is leaked (the file is
// refused once). glibc's abort() releases its lock before it raises SIGABRT, so a handler may
// leave it; an abort outside a guard, or on a thread without one, still ends the process.
#pragma once
#include <csetjmp>
#include <string>

#include "core/error.hpp"

namespace aneura {

// The refusal's text for an abort inside GDCM's reading.
inline constexpr const char* kGdcmAborted =
    "GDCM's parser aborted on this file (an assertion on damaged data): refused";

namespace detail {
struct AbortGuard {
  sigjmp_buf env;
  bool armed = false;
};
AbortGuard& abort_guard();     // this thread's
void install_abort_handler();  // once per process
}  // namespace detail

template <class F>
void without_abort(const std::string& file, const char* what, F&& fn) {
  detail::install_abort_handler();
  detail::AbortGuard& g = detail::abort_guard();
  if (g.armed) {  // nested: the outer guard answers
    fn();
    return;
  }
  if (sigsetjmp(g.env, 1) != 0) {
    g.armed = false;
    throw Error(ErrorCode::CorruptInput, what, file);
  }
  g.armed = true;
  try {
    fn();
  } catch (...) {
    g.armed = false;
    throw;
  }
  g.armed = false;
}

}  // namespace aneura
