// Connected-component post-processing of predicted maps (seed 001): the voxels of a map above a
// threshold form components (ITK's ConnectedComponentImageFilter, face-connected); components
// under a size in mm^3 are dropped (their voxels become background), and an aneurysm point can be
// the centre of mass of its component instead of its peak voxel. Maps are [classes, X, Y, Z] on a
// grid whose tensor index (x, y, z) is the grid index, class 0 the background.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "core/geometry.hpp"
#include "infer/maps.hpp"

namespace aneura {

struct ComponentOptions {
  double threshold = 0.5;       // a voxel belongs to a component where 1 - p(background) > this
  double min_aneurysm_mm3 = 0;  // aneurysm components under this are dropped (0: none)
  bool centre_of_mass = false;  // points at their component's centre of mass, not the peak voxel
};

struct Components {
  torch::Tensor labels;            // [X, Y, Z] int32: 0 outside, 1..n
  std::vector<double> volume_mm3;  // per component (label - 1)
  std::vector<Vec3> centre;        // centre of mass (continuous grid index) weighted by the map
  std::vector<float> peak;         // the map's largest value in it
};

// The components of `value` > threshold, `value` [X, Y, Z] float.
Components connected_components(const torch::Tensor& value, double threshold, const Geometry& grid);

// Drops the components of 1 - p(background) under min_mm3 from `maps` [14, X, Y, Z] (float, CPU):
// their voxels become background (p = 1). Returns how many were dropped; nothing when min_mm3 <= 0.
int drop_small_components(torch::Tensor& maps, const Geometry& grid, double threshold, double min_mm3);

// Moves each point inside a component of 1 - p(background) to that component's centre of mass;
// a point outside every component stays at its peak.
void points_to_centres(std::vector<PredictedPoint>& points, const torch::Tensor& maps, const Geometry& grid,
                       double threshold);

}  // namespace aneura
