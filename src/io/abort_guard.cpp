#include "io/abort_guard.hpp"

#include <csignal>
#include <mutex>
#include <string>

namespace aneura::detail {

namespace {

void on_abort(int sig) {
  AbortGuard& g = abort_guard();
  if (g.armed) {
    g.armed = false;
    siglongjmp(g.env, 1);
  }
  std::signal(sig, SIG_DFL);  // not ours: the default action (abort() raises again)
  std::raise(sig);
}

}  // namespace

AbortGuard& abort_guard() {
  static thread_local AbortGuard g;
  return g;
}

void install_abort_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa = {};
    sa.sa_handler = on_abort;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGABRT, &sa, nullptr);
  });
}

}  // namespace aneura::detail

namespace aneura {

ScopedAllocationCap::ScopedAllocationCap(std::size_t bytes) : slot_(available() ? aneura_allocation_cap() : nullptr) {
  if (!slot_) return;
  saved_ = *slot_;
  *slot_ = {bytes, 0};
}

ScopedAllocationCap::~ScopedAllocationCap() {
  if (slot_) *slot_ = saved_;
}

bool ScopedAllocationCap::available() { return aneura_allocation_cap != nullptr && aneura_allocation_cap() != nullptr; }

std::size_t ScopedAllocationCap::refused() const { return slot_ ? slot_->refused : 0; }

std::size_t gdcm_read_cap(std::size_t file_bytes, std::size_t output_bytes) {
  constexpr std::size_t kMargin = std::size_t{64} << 20;
  return 16 * file_bytes + 2 * output_bytes + kMargin;
}

std::string over_cap_refusal(std::size_t asked, std::size_t cap) {
  auto mb = [](std::size_t b) { return std::to_string((b + (1u << 19)) >> 20) + " MB"; };
  return "GDCM asked for " + mb(asked) + " in one piece while reading this file (more than the " + mb(cap) +
         " a file of its size can need: a damaged length): refused";
}

}  // namespace aneura
