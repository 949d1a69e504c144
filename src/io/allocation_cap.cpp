// The replaced global operator new behind allocation_cap.hpp. Linked into programs only (see the
// header); not in sanitizer builds, whose runtime replaces operator new itself.
#include <cstdlib>
#include <new>

#include "io/allocation_cap.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define ANEURA_NO_ALLOCATION_CAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ANEURA_NO_ALLOCATION_CAP 1
#endif
#endif

#ifndef ANEURA_NO_ALLOCATION_CAP

namespace {
// constant-initialised: no TLS wrapper, safe in operator new from the first allocation on
thread_local AneuraAllocationCap tls_cap = {0, 0};
}  // namespace

extern "C" AneuraAllocationCap* aneura_allocation_cap() { return &tls_cap; }

// The standard's default behaviour (malloc, the new-handler loop), plus the cap. operator new[]
// and the nothrow forms of libstdc++ call this one; operator delete (free) stays libstdc++'s.
void* operator new(std::size_t n) {
  if (tls_cap.cap != 0 && n > tls_cap.cap) {
    if (n > tls_cap.refused) tls_cap.refused = n;
    throw std::bad_alloc();
  }
  if (n == 0) n = 1;
  for (;;) {
    if (void* p = std::malloc(n)) return p;
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}

#endif
