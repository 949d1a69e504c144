// libFuzzer target of the DICOM reading path (a clang build: docs/EXPERIMENTS.md, "libFuzzer"):
// every input is written to a file and read as aneura reads a slice: read_dicom_header (the
// data-set walk that keeps damaged files away from GDCM's assertions, then GDCM's parse), and for
// an image its pixel data decoded and copied out. A refusal is an aneura::Error; anything else
// (an abort in GDCM, a sanitizer report, another exception) is a finding.
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DANEURA_LIBFUZZER=ON
//   ninja -C build-fuzz aneura_fuzz_header
//   build-fuzz/tests/aneura_fuzz_header CORPUS_DIR -max_total_time=600 -max_len=65536
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "io/dicom_decode.hpp"
#include "io/dicom_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/aneura_fuzz_header_" + std::to_string(getpid()) + ".dcm";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const aneura::HeaderResult h = aneura::read_dicom_header(path);
    if (h.kind != aneura::HeaderResult::Kind::Image || h.records.empty()) return 0;
    const aneura::DecodedPixels px = aneura::decode_pixels(path);
    const auto& rec = h.records.front();
    if (static_cast<int64_t>(rec.rows) * rec.cols > (1 << 24)) return 0;
    std::vector<float> out(static_cast<size_t>(rec.rows) * static_cast<size_t>(rec.cols));
    aneura::copy_slice(px, rec, out.data());
  } catch (const aneura::Error&) {}
  return 0;
}
