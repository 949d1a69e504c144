// A per-thread cap on single allocations while GDCM reads one file. GDCM's recovery modes (the
// explicit/implicit guess after a damaged element) allocate whatever length a damaged element
// declares: a 10 KB file made `aneura info` allocate and zero 3-4 GB before refusing it
// (docs/EXPERIMENTS.md). While a ScopedAllocationCap is set on a thread, an allocation through
// operator new larger than the cap throws std::bad_alloc there; without_abort (abort_guard.hpp)
// turns that into a refusal of the file.
//
// The cap lives beside the replaced operator new (allocation_cap.cpp), which only programs link:
// the aneura executable (it exports aneura_allocation_cap to its network module, so a read inside
// libaneura_nn.so sets the same cap that GDCM's allocations see) and the tests. Elsewhere (the
// benchmarks, the libFuzzer target, sanitizer builds) the weak reference is null and nothing is capped.
#pragma once
#include <cstddef>

extern "C" {
struct AneuraAllocationCap {
  std::size_t cap;      // bytes; 0 = none
  std::size_t refused;  // the largest request refused while a cap was set
};
// This thread's cap, or null where operator new is not replaced.
__attribute__((weak, visibility("default"))) AneuraAllocationCap* aneura_allocation_cap();
}

namespace aneura {

class ScopedAllocationCap {
 public:
  explicit ScopedAllocationCap(std::size_t bytes);
  ~ScopedAllocationCap();
  ScopedAllocationCap(const ScopedAllocationCap&) = delete;
  ScopedAllocationCap& operator=(const ScopedAllocationCap&) = delete;
  // Whether allocations are capped in this program.
  static bool available();
  // The largest request refused since this cap was set (0: none).
  std::size_t refused() const;

 private:
  AneuraAllocationCap* slot_;
  AneuraAllocationCap saved_{0, 0};
};

// The cap for GDCM's reading of a file of `file_bytes`: no element can be longer than the file,
// but a deflated data set inflates and a decoder allocates its output, so `output_bytes` (the
// decoded pixels) and a generous margin are added.
std::size_t gdcm_read_cap(std::size_t file_bytes, std::size_t output_bytes = 0);

}  // namespace aneura
