// `aneura evaluate`: predictions.csv against train.csv with the competition metric, and
// localization of the predicted points against the localizers.
#pragma once
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/geometry.hpp"
#include "core/volume.hpp"
#include "evaluate/metrics.hpp"

namespace aneura {

using ProbabilityTable = std::map<std::string, std::array<double, kNumLabels>>;  // by SeriesInstanceUID
using TruthTable = std::map<std::string, std::array<int, kNumLabels>>;

// predictions.csv: SeriesInstanceUID + the 14 columns (any order, names exact). Errors (CorruptInput)
// name the file and line: missing columns, duplicate series, a value that is not a number in [0, 1]
// (NaN included).
ProbabilityTable read_predictions(const std::filesystem::path& file);
// train.csv's labels (SeriesInstanceUID + the 14 columns; other columns ignored).
TruthTable read_truth(const std::filesystem::path& file);

// train.csv's Modality column by SeriesInstanceUID (CTA, MRA, MRI T2, MRI T1post); empty when the
// file has no such column.
std::map<std::string, std::string> read_modalities(const std::filesystem::path& file);

// The metric within one group of series (e.g. one modality): its "Aneurysm Present" AUC and the
// competition weighting over the columns defined within the group.
struct GroupScore {
  std::string group;
  int series = 0, positives = 0;  // positives: "Aneurysm Present"
  std::optional<double> present_auc, defined_columns_score;
};
// One row per group name in `group_of` (series without a group are left out), in name order.
std::vector<GroupScore> scores_by_group(const ProbabilityTable& pred, const TruthTable& truth,
                                        const std::map<std::string, std::string>& group_of);

struct Localization {
  double radius_mm = 5;
  int true_points = 0, hits = 0;                 // true localizer points with a predicted point within radius
  int predicted_points = 0, predicted_hits = 0;  // predicted points within radius of a true point
  int series = 0;
};

// Vessel segmentation against a cowseg truth (values 0..13), per series: Dice of the vessels
// (any territory vs background) and the mean Dice over the territories present in the truth or
// the prediction. Only the truth voxels inside the prediction's grid count (the prediction covers
// the ROI); the prediction is read at each truth voxel centre (nearest voxel).
struct VesselDice {
  double foreground = 0, territories = 0;
  int64_t voxels = 0;  // truth voxels inside the prediction's grid
};
VesselDice vessel_dice(const Volume<float>& truth, const Volume<float>& prediction);

// "Aneurysm Present" AUC of the positive series whose largest aneurysm's radius is in [lo_mm,
// hi_mm) against every negative series: how detection depends on size, where the truth knows the
// sizes (the synthetic datasets' truth.json; train.csv does not). auc is nullopt without a positive
// in the band or without negatives.
struct SizeBand {
  double lo_mm = 0, hi_mm = 0;
  int positives = 0, negatives = 0;
  std::optional<double> auc;
};
// Bands [0, 2), [2, 3), [3, inf) mm by default. Positive series without a radius are left out.
std::vector<SizeBand> present_auc_by_radius(const ProbabilityTable& pred, const TruthTable& truth,
                                            const std::map<std::string, double>& largest_radius_mm,
                                            const std::vector<double>& edges_mm = {0, 2, 3});
// The largest aneurysm radius (mm) per positive series from a synthetic dataset's truth.json
// (`aneura synth`); errors (CorruptInput) name the file.
std::map<std::string, double> read_synthetic_radii(const std::filesystem::path& truth_json);

struct Evaluation {
  CompetitionScore score;
  size_t series = 0;
  std::array<int, kNumLabels> positives{};
  std::optional<Localization> localization;
  std::map<std::string, VesselDice> vessels;  // series with a segmentation and a predicted vessel map
  std::vector<SizeBand> size_bands;           // empty unless the truth knows the aneurysms' sizes
  std::vector<GroupScore> by_modality;        // empty unless the truth file has a Modality column
};

// Every truth series needs a prediction and every prediction a truth row: otherwise
// Error(CorruptInput) listing (up to 5 of) the missing / extra UIDs.
Evaluation evaluate(const ProbabilityTable& pred, const TruthTable& truth);

// Localization: true points and predicted points in world LPS mm per series.
Localization localize(const std::map<std::string, std::vector<Vec3>>& truth,
                      const std::map<std::string, std::vector<Vec3>>& predicted, double radius_mm);

// The mean over the series of e.vessels (voxels summed); nullopt when there is none.
std::optional<VesselDice> mean_vessel_dice(const Evaluation& e);

nlohmann::json to_json(const Evaluation& e);

}  // namespace aneura
