#include "io/abort_guard.hpp"

#include <csignal>
#include <mutex>

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
