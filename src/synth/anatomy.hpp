// Synthetic head anatomy for `aneura synth`: a head (scalp, skull, CSF, brain, ventricles) and a
// Circle-of-Willis vessel tree whose segments carry the 13 RSNA territories (cowseg values), with
// saccular aneurysms on chosen territories. Everything is built in a subject frame (LPS mm,
// origin at the head centre) and placed in the scanner by a rigid pose: world = R * s + t.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "core/geometry.hpp"

namespace aneura::synth {

enum class Tissue : uint8_t { Air, Scalp, Skull, Csf, Brain, Vessel, Aneurysm };

struct Segment {
  Vec3 a, b;      // subject frame, mm
  double radius;  // mm
  int cowseg;     // 1..13 (RSNA cowseg value)
};

struct Aneurysm {
  Vec3 centre_subject;  // mm, subject frame
  Vec3 centre_world;    // mm, LPS (after pose)
  double radius;        // mm
  int column;           // train.csv location column 0..12
};

struct Subject {
  Mat3 rotation{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};  // subject -> world
  Vec3 translation{0, 0, 0};
  Vec3 head_radii{75, 92, 70};
  std::vector<Segment> vessels;
  std::vector<Aneurysm> aneurysms;

  Vec3 to_world(const Vec3& s) const;
  Vec3 to_subject(const Vec3& w) const;
};

// Draws a subject: head size and pose, vessel positions and calibre, and 0..3 aneurysms at
// locations drawn with the RSNA 2025 frequencies (positive with probability p_positive).
// `first_column` >= 0: the subject is positive and its first aneurysm is at that location column.
Subject make_subject(std::mt19937_64& rng, double p_positive, int first_column = -1);

// Voxelised vessel tree in the subject frame, for fast lookups while rendering.
class VesselGrid {
 public:
  VesselGrid(const Subject& s, double step_mm);
  // cowseg value (0 = none) and aneurysm index + 1 (0 = none) at a subject-frame point.
  uint8_t vessel_at(const Vec3& s) const { return lookup(labels_, s); }
  uint8_t aneurysm_at(const Vec3& s) const { return lookup(aneurysm_, s); }
  // Whether a vessel or aneurysm lies within about one block (kNearBlockMm) of a subject-frame
  // point: where rendering must average sub-samples (partial volume) to be faithful.
  bool near_vessel(const Vec3& s) const;
  static constexpr double kNearBlockMm = 4.0;

 private:
  uint8_t lookup(const std::vector<uint8_t>& v, const Vec3& s) const;
  Vec3 lo_;
  double step_;
  int64_t n_[3];
  std::vector<uint8_t> labels_, aneurysm_;
  int64_t nb_[3];
  std::vector<uint8_t> near_;  // blocks of kNearBlockMm: 1 when a vessel voxel is in it or a neighbour
};

// The head's layers by (approximate) depth below its surface: scalp to 4 mm, skull to 10 mm, CSF to
// 13 mm; below that the brain with its ventricles and vessels.
constexpr double kScalpDepthMm = 4, kSkullDepthMm = 10, kBrainDepthMm = 13;
// Depth (mm) of a world point below the head's surface; negative outside the head.
double head_depth_mm(const Subject& s, const Vec3& world);
// The brain's truth for brain extraction: everything below the CSF layer (parenchyma, ventricles,
// vessels), the region a brain mask should cover.
inline bool in_brain(const Subject& s, const Vec3& world) { return head_depth_mm(s, world) >= kBrainDepthMm; }

// The head's pose and size (truth.json "head": rotation subject -> world, translation, radii in mm),
// and back: enough to compute in_brain for any grid after the fact. from_json throws
// Error(CorruptInput) on a missing or mistyped key.
nlohmann::json head_to_json(const Subject& s);
Subject head_from_json(const nlohmann::json& j);

// Tissue at a world point (head layers analytic, vessels from the grid).
Tissue tissue_at(const Subject& s, const VesselGrid& g, const Vec3& world);

// Frequency of each location column 0..12 among aneurysms (counts from the RSNA 2025 data).
const std::vector<double>& location_weights();

}  // namespace aneura::synth
