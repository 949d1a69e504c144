// The ROI finder: where the Circle of Willis lies in a harmonized head image, without labels (so
// prediction runs it too), and the offsets from its landmark to the ROI centre that training
// learns from localizer points. ITK only (no LibTorch): preprocess stores each case's anchor in
// case.json, so training does not repeat the head mask for every sample it reads from disk.
#pragma once
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "core/geometry.hpp"
#include "core/labels.hpp"
#include "core/volume.hpp"

namespace aneura {

// Binary opening (erosion, then dilation) by the radius-1 ball (the 3 x 3 x 3 block without its
// corners): the same mask as ITK's BinaryMorphologicalOpeningImageFilter with
// FlatStructuringElement<3>::Ball(1) (tested equal), in separable passes, ~10x faster. Values are
// 0 or 1; the geometry is kept.
Volume<uint8_t> open_ball1(const Volume<uint8_t>& mask);

// Which rule of the ROI finder placed a head's S level (find_roi_anchor).
enum class RoiRule { Slab = 0, Widest = 1, Vertex = 2, FieldTop = 3 };
constexpr int kRoiRules = 4;
const char* roi_rule_name(RoiRule r);  // "slab", "widest", "vertex", "field_top"
// The landmark the ROI is placed from: the middle of the head's L and P extent, and along S the
// rule's level (the slab's centre, the widest cross-section, the vertex, the top of the field).
struct RoiAnchor {
  Vec3 point{0, 0, 0};  // world LPS mm
  RoiRule rule = RoiRule::Slab;
};

// The ROI centre is the anchor plus its rule's offset (LPS mm; never along L, so a mirrored head
// keeps the mirrored centre). The defaults put the synthetic heads' Circle of Willis at the centre
// (ellipsoids with the CoW 8 mm below their widest section); on real heads the widest axial section
// lies higher above the CoW, so training learns the offsets from its cases' localizer points
// (learn_roi_offsets) and model.json keeps them for prediction.
struct RoiOffsets {
  std::array<Vec3, kRoiRules> by_rule{Vec3{0, 0, 0}, Vec3{0, 0, -8.0}, Vec3{0, 0, -78.0}, Vec3{0, 0, -60.0}};
  std::array<int, kRoiRules> cases{};  // training cases each was learned from (0: the default)
  Vec3 centre(const RoiAnchor& a) const;
  nlohmann::json to_json() const;
  static RoiOffsets from_json(const nlohmann::json& j);  // rules missing in j keep the defaults
};

// ROI finder (no labels needed, so it runs at prediction time): the Circle of Willis sits on the
// head's left-right and anterior-posterior centre line: the middle of the head's extent, the
// levels whose cross-section is at least 10 % of the largest (the head mask is opened, and the
// clusters of MR air noise that survive are too small to count, where they stretched a bounding
// box). Along S the anchor is the slab centre for slabs shorter than 110 mm (MRA slabs are centred
// on the CoW), else the head's widest cross-section (widest_head_level); when no dome is found, the
// vertex when the head's top is inside the field of view, else the top of the field of view. With
// the default offsets (8 mm below the widest section, 78 mm below the vertex, 60 mm below the
// field's top) the synthetic heads' centre lies within ~1 mm (sd) of the truth's CoW level for CTA,
// T2 and T1post, where the vertex rules alone scattered by 8-13 mm (bench/roi_centre.py). Works on
// the harmonized case image (any modality, any source orientation: the case is RAS, possibly
// oblique).
RoiAnchor find_roi_anchor(const Volume<float>& image);
Vec3 find_roi_centre(const Volume<float>& image, const RoiOffsets& offsets = {});
// Offsets learned from training cases (anchor, localizer points): per rule with at least
// `min_cases` cases with points, P and S are the median over the location columns of each
// column's median point minus anchor (every location counts once, however common), L stays 0;
// rules with fewer cases keep `defaults`.
RoiOffsets learn_roi_offsets(const std::vector<std::pair<RoiAnchor, std::vector<std::pair<Vec3, int>>>>& cases,
                             const RoiOffsets& defaults = {}, int min_cases = 5);
// The S level (mm) of a head's widest cross-section from its area per level (mm^2 at `level_mm`):
// the vertex of the parabola fitted to the dome (the levels from 15 mm below the widest one up to
// the top of the head, where a level's area is at least 10 % of the widest and the widest is
// sought within 110 mm of the top). nullopt when there is no dome (fewer than 4 levels, no downward
// curvature, or a vertex more than 110 mm below or 30 mm above the top).
std::optional<double> widest_head_level(const std::vector<double>& level_mm, const std::vector<double>& area);

// Bump when find_roi_anchor changes: a case.json anchor of another version is recomputed, so
// training and prediction always place the ROI with the same finder.
constexpr int kRoiFinderVersion = 2;
// case.json's "roi_anchor": {"version", "rule", "point_lps_mm"}; from_json gives nullopt for another
// version and throws Error(CorruptInput) for a malformed record.
nlohmann::json roi_anchor_to_json(const RoiAnchor& a);
std::optional<RoiAnchor> roi_anchor_from_json(const nlohmann::json& j);

}  // namespace aneura
