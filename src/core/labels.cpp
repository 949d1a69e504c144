#include "core/labels.hpp"

#include "core/error.hpp"

namespace aneura {

const std::array<std::string, kNumLabels>& label_names() {
  static const std::array<std::string, kNumLabels> names = {
      "Left Infraclinoid Internal Carotid Artery",
      "Right Infraclinoid Internal Carotid Artery",
      "Left Supraclinoid Internal Carotid Artery",
      "Right Supraclinoid Internal Carotid Artery",
      "Left Middle Cerebral Artery",
      "Right Middle Cerebral Artery",
      "Anterior Communicating Artery",
      "Left Anterior Cerebral Artery",
      "Right Anterior Cerebral Artery",
      "Left Posterior Communicating Artery",
      "Right Posterior Communicating Artery",
      "Basilar Tip",
      "Other Posterior Circulation",
      "Aneurysm Present",
  };
  return names;
}

namespace {
constexpr std::array<int, kNumLabels> kTwin = {1, 0, 3, 2, 5, 4, 6, 8, 7, 10, 9, 11, 12, 13};
// cowseg value v (index) -> train.csv column; index 0 unused.
constexpr std::array<int, 14> kCowsegToColumn = {-1, 12, 11, 10, 9, 1, 0, 3, 2, 5, 4, 8, 7, 6};
void check_column(int c) {
  if (c < 0 || c >= kNumLabels) throw Error(ErrorCode::Internal, "label column out of range: " + std::to_string(c));
}
}  // namespace

int label_twin(int column) {
  check_column(column);
  return kTwin[column];
}

std::optional<int> label_index(const std::string& name) {
  const auto& names = label_names();
  for (int c = 0; c < kNumLabels; ++c)
    if (names[c] == name) return c;
  return std::nullopt;
}

int cowseg_to_column(int value) {
  if (value < 1 || value > 13)
    throw Error(ErrorCode::CorruptInput, "cowseg value out of range 1..13: " + std::to_string(value));
  return kCowsegToColumn[value];
}

int column_to_cowseg(int column) {
  if (column < 0 || column >= kNumLocations)
    throw Error(ErrorCode::Internal, "location column out of range: " + std::to_string(column));
  for (int v = 1; v <= 13; ++v)
    if (kCowsegToColumn[v] == column) return v;
  throw Error(ErrorCode::Internal, "cowseg table incomplete");
}

int cowseg_twin(int value) {
  if (value == 0) return 0;
  return column_to_cowseg(label_twin(cowseg_to_column(value)));
}

const std::array<std::string, kNumModalities>& modality_names() {
  static const std::array<std::string, kNumModalities> m = {"CTA", "MRA", "MRI T2", "MRI T1post"};
  return m;
}

int modality_index(const std::string& name) {
  for (int i = 0; i < kNumModalities; ++i)
    if (modality_names()[i] == name) return i;
  return -1;
}

}  // namespace aneura
