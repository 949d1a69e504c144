// Foreground (head) mask and cropping to its bounding box. Cropping changes only the grid's
// extent: the origin moves to the box's first voxel, spacing and direction stay, and every kept
// voxel keeps its world position.
#pragma once
#include <array>
#include <cstdint>

#include "core/volume.hpp"

namespace aneura {

struct Box {
  std::array<int64_t, 3> lo{0, 0, 0}, hi{0, 0, 0};  // voxel indices, hi exclusive
  bool empty() const { return hi[0] <= lo[0] || hi[1] <= lo[1] || hi[2] <= lo[2]; }
};

// 1 where value > threshold (e.g. -500 HU for CT: anything denser than air).
Volume<uint8_t> threshold_mask(const Volume<float>& v, double threshold);
// Threshold for MR head masks: 10 % of the way from the 1st to the 99th percentile.
template <class T>
double mr_foreground_threshold(const Volume<T>& v);

// Bounding box of mask != 0 grown by `margin_mm` on every side (clamped to the volume); the
// whole volume when the mask is empty.
Box mask_box(const Volume<uint8_t>& mask, double margin_mm);

// Bounding box of value > threshold grown by margin_mm, computed without allocating a mask.
template <class T>
Box threshold_box(const Volume<T>& v, double threshold, double margin_mm);

// The grid of the box's voxels (origin moved to its first voxel); no data is touched.
Geometry crop_geometry(const Geometry& g, const Box& b);

template <class T>
Volume<T> crop(const Volume<T>& v, const Box& b);

}  // namespace aneura
