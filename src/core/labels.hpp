// The RSNA 2025 label table: the 14 train.csv columns in order, their left/right twins (what a
// left-right flip turns a label into) and the vessel values of *_cowseg.nii, which use another order.
#pragma once
#include <array>
#include <optional>
#include <string>

namespace aneura {

constexpr int kNumLabels = 14;  // 13 locations + "Aneurysm Present"
constexpr int kNumLocations = 13;
constexpr int kPresentColumn = 13;

// Column names exactly as in train.csv, in column order.
const std::array<std::string, kNumLabels>& label_names();
// Column index a left-right flip maps column c to (itself for midline locations).
int label_twin(int column);
// Column index of a name as written in train.csv / train_localizers.csv, if it is one.
std::optional<int> label_index(const std::string& name);

// The modality head's classes, as the RSNA series' Modality column names them:
// CTA, MRA, MRI T2, MRI T1post.
constexpr int kNumModalities = 4;
const std::array<std::string, kNumModalities>& modality_names();
int modality_index(const std::string& name);  // -1 when unknown (e.g. unlabelled sources)

// cowseg value (1..13) <-> train.csv column (0..12). 0 is background.
int cowseg_to_column(int value);
int column_to_cowseg(int column);
// cowseg value a left-right flip turns a vessel value into (0 stays 0).
int cowseg_twin(int value);

}  // namespace aneura
