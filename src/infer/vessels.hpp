// The vessel stage of a two-stage prediction: a first model's vessel head (background + the 13
// cowseg territories) over its ROI says where the arteries are; the second (aneurysm) model then
//   - runs only the windows that reach within a margin of a vessel, and its aneurysm maps count
//     only there (aneurysms sit on arteries: compute and false positives elsewhere are spared),
//   - takes each location column's evidence from the territory under the detection.
// When the first model finds (almost) no vessel, the second runs as without it and says so.
#pragma once
#include <torch/torch.h>

#include <array>
#include <string>

#include "core/geometry.hpp"
#include "core/labels.hpp"

namespace aneura {

struct VesselStageOptions {
  double threshold = 0.5;        // a voxel is vessel where 1 - p(background) >= this
  double margin_mm = 8;          // windows and maps reach this far from a vessel voxel
  double min_ml = 0.5;           // less vessel than this: not found (the aneurysm stage looks everywhere)
  double min_component_mm3 = 0;  // vessel components under this are dropped first (0: none)
  // Location columns: (1 - w) x the aneurysm model's own evidence + w x the territory evidence
  double territory_weight = 0.5;
};

struct VesselMap {
  Geometry grid;                  // the vessel model's ROI grid (RAS axes)
  torch::Tensor p;                // [14, X, Y, Z] float: p(background), p(cowseg value 1..13)
  double volume_ml = 0;           // voxels at or above the threshold
  bool found = false;             // volume_ml >= min_ml
  Vec3 lo{0, 0, 0}, hi{0, 0, 0};  // world LPS bounds of the vessel voxels (when found)
  std::string note;               // why not found, for the series' record
  int dropped_components = 0;     // under min_component_mm3
};

// The vessel map from a vessel model's averaged territory softmax [14, X, Y, Z] on `grid`.
VesselMap make_vessel_map(torch::Tensor territories, const Geometry& grid, const VesselStageOptions& o);

// `map`'s vessel voxels (p >= threshold) dilated by margin_mm (on the vessel model's grid: whole
// voxels of it), on the grid `roi` (any spacing): [X, Y, Z] bool. Outside the vessel model's grid
// nothing is vessel.
torch::Tensor vessel_neighbourhood(const VesselMap& map, const Geometry& roi, const VesselStageOptions& o);

// The territory probabilities of `map` on `roi`, each territory dilated by margin_mm and
// normalized over the 13 territories: [13, X, Y, Z] float, location column order (column c is
// cowseg value column_to_cowseg(c)); all zero where no territory is within the margin.
torch::Tensor territory_distribution(const VesselMap& map, const Geometry& roi, const VesselStageOptions& o);

// The most likely cowseg value (0..13) of `map` at each voxel of `roi`: [X, Y, Z] long.
torch::Tensor vessel_labels_on(const VesselMap& map, const Geometry& roi);

// Per location column: the largest (1 - p(background)) x territory share over the voxels of the
// aneurysm maps [14, X, Y, Z] on the grid of `territories` (territory_distribution).
std::array<double, kNumLocations> territory_evidence(const torch::Tensor& aneurysm, const torch::Tensor& territories);

}  // namespace aneura
