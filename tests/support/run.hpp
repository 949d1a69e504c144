// Helpers shared by the test suites: the real binary's exit code, and the code of a typed error.
// Header-only: ANEURA_BINARY is defined per test executable.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "core/error.hpp"

namespace aneura::test {

// Runs `aneura <args>` with its output discarded; returns the exit code (-1 when killed).
inline int run_aneura(const std::string& args) {
  const int rc = std::system((std::string(ANEURA_BINARY) + " " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The ErrorCode `f` throws; ErrorCode::Internal when it throws nothing.
inline ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Internal;
}

}  // namespace aneura::test
