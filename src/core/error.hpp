// Typed errors for library code. Libraries throw aneura::Error; only apps/ turns the code into an
// exit status and prints "error: <what> (<where>)". The numbers are documented in docs/CLI.md.
#pragma once
#include <stdexcept>
#include <string>

namespace aneura {

enum class ErrorCode : int {
  Internal = 1,         // a bug or an unexpected library failure
  Usage = 2,            // bad command-line arguments
  NoDicom = 3,          // the input holds no readable DICOM image
  CorruptInput = 4,     // a file or tag is unreadable, truncated or out of range
  AmbiguousSeries = 5,  // several series/geometries and no clear choice, or --series not found
  BadGeometry = 6,      // geometry cannot be built (all slices at one position, ...)
  OutputFailed = 7,     // an output could not be written
  Partial = 8,          // a batch finished but some items failed
  InputNotFound = 9,    // an input path does not exist or cannot be read
  Unsupported = 10,     // valid input this version does not handle (e.g. colour images)
  Distributed = 11,     // a data-parallel run lost a rank (died, or no answer within the timeout)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string what, std::string where = {})
      : std::runtime_error(what), code_(code), where_(std::move(where)) {}
  ErrorCode code() const { return code_; }
  const std::string& where() const { return where_; }
  int exit_code() const { return static_cast<int>(code_); }

 private:
  ErrorCode code_;
  std::string where_;
};

}  // namespace aneura
