#include "io/siemens_csa.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace aneura {

namespace {

uint32_t le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;  // CSA is little endian; aneura targets little-endian hosts
}

// Finds the private element (gggg,xxEE) whose creator (gggg,00xx) is `creator`.
const gdcm::ByteValue* private_value(const gdcm::DataSet& ds, uint16_t group, const char* creator, uint16_t elem) {
  for (uint16_t block = 0x10; block <= 0xff; ++block) {
    const gdcm::Tag ct(group, block);
    if (!ds.FindDataElement(ct)) continue;
    const gdcm::ByteValue* bv = ds.GetDataElement(ct).GetByteValue();
    if (!bv) continue;
    std::string s(bv->GetPointer(), bv->GetLength());
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
    if (s != creator) continue;
    const gdcm::Tag t(group, static_cast<uint16_t>((block << 8) | elem));
    if (!ds.FindDataElement(t)) return nullptr;
    return ds.GetDataElement(t).GetByteValue();
  }
  return nullptr;
}

// Walks the SV10 tag list, calling fn(name, items) for each tag.
template <class Fn>
void walk_sv10(const char* p, size_t n, Fn fn) {
  if (n < 16 || std::memcmp(p, "SV10", 4) != 0) return;
  const uint32_t ntags = le32(p + 8);
  size_t off = 16;
  for (uint32_t t = 0; t < ntags && t < 1024; ++t) {
    if (off + 84 > n) return;
    std::string name(p + off, strnlen(p + off, 64));
    const uint32_t nitems = le32(p + off + 76);
    off += 84;
    std::vector<std::string> items;
    for (uint32_t i = 0; i < nitems && i < 4096; ++i) {
      if (off + 16 > n) return;
      const uint32_t len = le32(p + off + 4);
      off += 16;
      if (off + len > n) return;
      items.emplace_back(p + off, strnlen(p + off, len));
      off += (len + 3) & ~3u;
    }
    fn(name, items);
  }
}

}  // namespace

SiemensCsa read_siemens_csa(const gdcm::DataSet& ds) {
  SiemensCsa out;
  if (const auto* bv = private_value(ds, 0x0019, "SIEMENS MR HEADER", 0x0a); bv && bv->GetLength() >= 2) {
    uint16_t v;
    std::memcpy(&v, bv->GetPointer(), 2);  // GDCM stores binary values in host order
    out.images_in_mosaic = v;
  }
  if (const auto* bv = private_value(ds, 0x0029, "SIEMENS CSA HEADER", 0x10)) {
    walk_sv10(bv->GetPointer(), bv->GetLength(), [&](const std::string& name, const std::vector<std::string>& items) {
      if (name == "NumberOfImagesInMosaic" && !items.empty() && out.images_in_mosaic == 0)
        out.images_in_mosaic = std::atoi(items[0].c_str());
      if (name == "SliceNormalVector" && items.size() >= 3) {
        for (int c = 0; c < 3; ++c) out.slice_normal[c] = std::atof(items[c].c_str());
        out.has_slice_normal = norm(out.slice_normal) > 0.5;
      }
    });
  }
  return out;
}

}  // namespace aneura
