#include "core/labels.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace aneura {
namespace {

TEST(Labels, ColumnOrderAsTrainCsv) {
  EXPECT_EQ(label_names()[0], "Left Infraclinoid Internal Carotid Artery");
  EXPECT_EQ(label_names()[6], "Anterior Communicating Artery");
  EXPECT_EQ(label_names()[12], "Other Posterior Circulation");
  EXPECT_EQ(label_names()[13], "Aneurysm Present");
  EXPECT_EQ(label_index("Basilar Tip"), 11);
  EXPECT_FALSE(label_index("Basilar").has_value());
}

TEST(Labels, TwinsMatchTheRsnaTable) {
  const int expected[kNumLabels] = {1, 0, 3, 2, 5, 4, 6, 8, 7, 10, 9, 11, 12, 13};
  for (int c = 0; c < kNumLabels; ++c) {
    EXPECT_EQ(label_twin(c), expected[c]) << label_names()[c];
    EXPECT_EQ(label_twin(label_twin(c)), c);
    const bool left = label_names()[c].rfind("Left ", 0) == 0;
    if (left) EXPECT_EQ(label_names()[label_twin(c)], "Right " + label_names()[c].substr(5));
  }
}

TEST(Labels, CowsegValuesMapToColumns) {
  EXPECT_EQ(label_names()[cowseg_to_column(1)], "Other Posterior Circulation");
  EXPECT_EQ(label_names()[cowseg_to_column(2)], "Basilar Tip");
  EXPECT_EQ(label_names()[cowseg_to_column(3)], "Right Posterior Communicating Artery");
  EXPECT_EQ(label_names()[cowseg_to_column(6)], "Left Infraclinoid Internal Carotid Artery");
  EXPECT_EQ(label_names()[cowseg_to_column(9)], "Right Middle Cerebral Artery");
  EXPECT_EQ(label_names()[cowseg_to_column(12)], "Left Anterior Cerebral Artery");
  EXPECT_EQ(label_names()[cowseg_to_column(13)], "Anterior Communicating Artery");
  for (int v = 1; v <= 13; ++v) {
    EXPECT_EQ(column_to_cowseg(cowseg_to_column(v)), v);
    EXPECT_EQ(cowseg_twin(cowseg_twin(v)), v);
  }
  EXPECT_EQ(cowseg_twin(0), 0);
  EXPECT_EQ(cowseg_twin(3), 4);
  EXPECT_EQ(cowseg_twin(13), 13);
  EXPECT_THROW(cowseg_to_column(14), Error);
}

}  // namespace
}  // namespace aneura
