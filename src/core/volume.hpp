// A 3D image: voxels in i-fastest order (x[i + nx*(j + ny*k)]) with the geometry they live on.
// `volumes` > 1 stacks several 3D volumes on the same grid (time points, echoes), volume-slowest.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/geometry.hpp"

namespace aneura {

// Allocator that leaves new elements default-initialised (no zero fill): a volume is always
// written in full after allocation, and zeroing hundreds of MB costs as much as decoding them.
template <class T>
struct NoInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = NoInitAllocator<U>;
  };
  NoInitAllocator() = default;
  template <class U>
  NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
  // Volumes of 32 MB or more come in 2 MB pages where the kernel has them (transparent huge
  // pages on request): a 200 MB CT series then takes 100 page faults instead of 51,000.
  static constexpr size_t kHuge = size_t(2) << 20;
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < (size_t(32) << 20)) return std::allocator<T>::allocate(n);
    void* p = std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge);
    if (!p) throw std::bad_alloc();
    madvise(p, bytes, MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n * sizeof(T) < (size_t(32) << 20))
      std::allocator<T>::deallocate(p, n);
    else
      std::free(p);
  }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <class T>
using VoxelVector = std::vector<T, NoInitAllocator<T>>;

template <class T>
struct Volume {
  Geometry geom;
  int64_t volumes = 1;
  VoxelVector<T> data;  // not zero-filled on construction: write every voxel

  Volume() = default;
  explicit Volume(const Geometry& g, int64_t nvol = 1)
      : geom(g), volumes(nvol), data(static_cast<size_t>(g.voxel_count() * nvol)) {}

  size_t offset(int64_t i, int64_t j, int64_t k) const {
    return static_cast<size_t>(i + geom.size[0] * (j + geom.size[1] * k));
  }
  T& at(int64_t i, int64_t j, int64_t k) { return data[offset(i, j, k)]; }
  const T& at(int64_t i, int64_t j, int64_t k) const { return data[offset(i, j, k)]; }
};

// Reverse voxel order along `axis`, updating the geometry: every voxel keeps its world position.
template <class T>
Volume<T> flip_axis(const Volume<T>& in, int axis) {
  Volume<T> out(in.geom.flipped(axis), in.volumes);
  const auto& n = in.geom.size;
  const size_t nvox = static_cast<size_t>(in.geom.voxel_count());
  for (int64_t v = 0; v < in.volumes; ++v)
    for (int64_t k = 0; k < n[2]; ++k)
      for (int64_t j = 0; j < n[1]; ++j)
        for (int64_t i = 0; i < n[0]; ++i) {
          int64_t s[3] = {i, j, k};
          s[axis] = n[axis] - 1 - s[axis];
          out.data[v * nvox + out.offset(i, j, k)] = in.data[v * nvox + in.offset(s[0], s[1], s[2])];
        }
  return out;
}

}  // namespace aneura
