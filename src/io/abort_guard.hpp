// GDCM's assertions as refusals. Debian builds GDCM with assertions on, and its parser asserts on
// some damaged files (libFuzzer found several the data-set walk of dicom_header.cpp lets through:
// docs/EXPERIMENTS.md). `without_abort(file, what, fn, cap)` runs fn; an abort() raised on this
// thread inside it (an assertion's) jumps back here and becomes Error(CorruptInput, what, file), so
// one damaged file costs its series, not the process. With a cap (bytes, allocation_cap.hpp), a
// single allocation larger than it inside fn (a damaged length GDCM believed) becomes the same
// refusal, saying how much was asked for. What fn had allocated is leaked (the file is
// refused once). glibc's abort() releases its lock before it raises SIGABRT, so a handler may
// leave it; an abort outside a guard, or on a thread without one, still ends the process.
#pragma once
#include <csetjmp>
#include <cstddef>
#include <new>
#include <string>

#include "core/error.hpp"
#include "io/allocation_cap.hpp"

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

// The refusal's text for an allocation over the cap.
std::string over_cap_refusal(std::size_t asked, std::size_t cap);

template <class F>
void without_abort(const std::string& file, const char* what, F&& fn, std::size_t cap = 0) {
  detail::install_abort_handler();
  detail::AbortGuard& g = detail::abort_guard();
  if (g.armed) {  // nested: the outer guard answers
    fn();
    return;
  }
  ScopedAllocationCap capped(cap);
  if (sigsetjmp(g.env, 1) != 0) {
    g.armed = false;
    throw Error(ErrorCode::CorruptInput, what, file);
  }
  g.armed = true;
  try {
    fn();
  } catch (const std::bad_alloc&) {
    g.armed = false;
    if (capped.refused() == 0) throw;
    throw Error(ErrorCode::CorruptInput, over_cap_refusal(capped.refused(), cap), file);
  } catch (...) {
    g.armed = false;
    throw;
  }
  g.armed = false;
  // GDCM may have caught the bad_alloc and reported a plain failure: still say why
  if (capped.refused() != 0) throw Error(ErrorCode::CorruptInput, over_cap_refusal(capped.refused(), cap), file);
}

}  // namespace aneura
