// Optional per-case exports in the shapes a common RSNA 2025 baseline trains on (32-slice volumes, 2.5D slice windows),
// written beside the case:
//   volume_32x384x384.nii  the first channel resampled to 384 x 384 in-plane x 32 slices (linear),
//                          covering the same extent as the case grid
//   slices_224.nii         the first channel at 224 x 224 in-plane, every slice kept, plus
//   windows_2p5d.json      the centre slices of all 5-slice windows (k-2 .. k+2) and those
//                          holding an aneurysm point
//   png/<k>.png            8-bit axial slices (p1..p99 of the case scaled to 0..255)
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/volume.hpp"

namespace aneura {

struct CaseExports {
  bool volume_32 = false, slices_224 = false, png = false;
  bool any() const { return volume_32 || slices_224 || png; }
};

// The grid of `g`'s extent (outer voxel edges) divided into `size` voxels, same direction.
Geometry fit_grid(const Geometry& g, const std::array<int64_t, 3>& size);

// `image`: the harmonized case (first volume used); `points`: case.json points (voxel field).
// Returns what was written, for case.json.
nlohmann::json write_exports(const Volume<float>& image, const nlohmann::json& points, const std::filesystem::path& dir,
                             const CaseExports& ex);

}  // namespace aneura
