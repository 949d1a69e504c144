// From a series' averaged network maps to what predict reports: the 14 probabilities, the field
// of view's edge taken out of the aneurysm maps, the location prior's evidence and the most likely
// aneurysm points. Maps are on the ROI grid: [classes, X, Y, Z], tensor index (x, y, z) = grid index.
#pragma once
#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

#include "core/geometry.hpp"
#include "core/labels.hpp"
#include "infer/location_prior.hpp"

namespace aneura {

// A series' 14 probabilities from its aneurysm maps [14, X, Y, Z] (softmax; class 0 background,
// class c + 1 location column c): column c's is the largest p(c + 1) over the voxels, "Aneurysm
// Present" the largest 1 - p(background). On held-out synthetic series this ranked series better
// than the label head (docs/CLI.md, predict). Returns [14] (CPU, double).
torch::Tensor heatmap_probabilities(const torch::Tensor& aneurysm);

// For each axis k of the grid `from`: its continuous voxel index at every voxel of the grid `to`,
// [X, Y, Z] of `to` (both grids are affine: from index = t + M to index).
std::array<torch::Tensor, 3> index_on(const Geometry& from, const Geometry& to, torch::Dtype dtype = torch::kDouble);

// Per voxel of the ROI grid `roi` [X, Y, Z] (double): mm to the nearest face of the image's box
// (`image`, its voxels' extent: half a voxel beyond the edge voxels' centres); negative outside.
torch::Tensor field_distance_mm(const Geometry& image, const Geometry& roi);
// The field of view's edge: a vessel cut by the end of the imaged volume (a TOF slab's inferior
// border cuts both ICAs) ends in a bright stump the maps take for an aneurysm. Weights [X, Y, Z]
// (float): 0 outside the image's box and within margin / 2 mm of its faces, rising linearly to 1
// at `margin` mm inside; all 1 when margin <= 0.
torch::Tensor field_edge_weights(const torch::Tensor& distance_mm, double margin_mm);
torch::Tensor field_edge_weights(const Geometry& image, const Geometry& roi, double margin_mm);
// Scales the aneurysm classes of `aneurysm` [14, X, Y, Z] by `w` [X, Y, Z]; the background takes
// the rest, so a voxel's probabilities still sum to 1.
void damp_field_edge(torch::Tensor& aneurysm, const torch::Tensor& w);

// The location prior's evidence per location column: the largest (1 - p(background)) x
// p(column | offset from the ROI centre) over the voxels whose 1 - p(background) is within a tenth
// of the series' largest (at most the 4096 largest voxels, so the cost stays bounded with
// thousands of training points). Which artery an aneurysm sits on follows from where it lies
// relative to the Circle of Willis; after a short run the maps' own location classes say little.
std::array<double, kNumLocations> location_prior_evidence(const torch::Tensor& aneurysm, const Geometry& grid,
                                                          const Vec3& roi_centre, const LocationPrior& prior,
                                                          double sigma_mm);

struct PredictedPoint {
  Vec3 world_lps{0, 0, 0};
  double probability = 0;                        // 1 - p(background) at the point
  int column = 0;                                // most likely location at the point
  std::array<double, kNumLocations> location{};  // location distribution at the point (sums to 1)
  std::string sop_uid;                           // nearest DICOM instance, and the point on it in pixels
  int frame = 0;
  double x = 0, y = 0;
};

struct PointOptions {
  int max_points = 3;
  double min_probability = 0.05;  // points after the first need at least this 1 - p(background)
  double separation_mm = 10;      // points are at least this far apart
};
// Greedy maxima of 1 - p(background), inside the image (`field_mm` >= 0: the ROI may reach beyond
// the field of view, where nothing was imaged), best first, each with the maps' location
// distribution at its voxel and the most likely column of it.
std::vector<PredictedPoint> heatmap_points(const torch::Tensor& aneurysm, const torch::Tensor& field_mm,
                                           const Geometry& grid, const PointOptions& o);

}  // namespace aneura
