// The ROI finder: the widest head section, noisy heads of several heights and fields of view,
// offsets learned from localizer points.
#include <gtest/gtest.h>
#include <itkBinaryMorphologicalOpeningImageFilter.h>
#include <itkFlatStructuringElement.h>
#include <itkImage.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "core/volume.hpp"
#include "harmonize/roi.hpp"
#include "support/run.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {

using test::code_of;

// An ellipsoid head (radii along L, P, S) centred at `centre` (LPS mm) on a RAS grid of 2 mm voxels
// whose field of view ends `top_mm` above the centre and starts 90 mm below it: brain 1.0, air the
// magnitude of N(0, 0.08) (about a fifth of the air passes the finder's threshold, as in noisy MR).
Volume<float> ellipsoid_head(const Vec3& centre, const Vec3& radii, double top_mm, uint64_t seed,
                             double s_spacing = 2) {
  Geometry g;
  g.spacing = {2, 2, s_spacing};
  g.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};  // RAS, as the cases
  g.size = {110, 120, static_cast<int64_t>((top_mm + 90) / s_spacing) + 1};
  g.origin = {centre[0] + 109, centre[1] + 119, centre[2] - 90};
  Volume<float> v(g);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.f, 0.08f);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
        double e = 0;
        for (int a = 0; a < 3; ++a) e += std::pow((w[a] - centre[a]) / radii[a], 2);
        v.at(i, j, k) = e <= 1 ? 1.f : std::fabs(noise(rng));
      }
  return v;
}

// The head mask's opening, in separable passes, against ITK's filter with the same ball on random
// masks of every shape (thin ones too, where the edge handling decides most voxels).
TEST(RoiFinder, SeparableOpeningEqualsItksOpeningByTheRadiusOneBall) {
  std::mt19937 rng(9);
  for (const std::array<int64_t, 3>& n :
       std::vector<std::array<int64_t, 3>>{{17, 13, 11}, {1, 9, 8}, {6, 1, 5}, {7, 6, 1}, {2, 2, 2}, {40, 30, 3}}) {
    for (double density : {0.3, 0.7, 0.9}) {
      Geometry g;
      g.size = n;
      Volume<uint8_t> m(g);
      std::bernoulli_distribution on(density);
      for (auto& v : m.data) v = on(rng) ? 1 : 0;
      using Mask = itk::Image<uint8_t, 3>;
      auto img = Mask::New();
      Mask::SizeType size;
      for (int a = 0; a < 3; ++a) size[a] = static_cast<itk::SizeValueType>(n[a]);
      img->SetRegions(size);
      img->Allocate();
      std::copy(m.data.begin(), m.data.end(), img->GetBufferPointer());
      using Ball = itk::FlatStructuringElement<3>;
      Ball::RadiusType r;
      r.Fill(1);
      auto open = itk::BinaryMorphologicalOpeningImageFilter<Mask, Mask, Ball>::New();
      open->SetInput(img);
      open->SetKernel(Ball::Ball(r));
      open->SetForegroundValue(1);
      open->SetBackgroundValue(0);
      open->Update();
      const Volume<uint8_t> mine = open_ball1(m);
      const uint8_t* itk_out = open->GetOutput()->GetBufferPointer();
      size_t differ = 0, kept = 0;
      for (size_t i = 0; i < mine.data.size(); ++i) differ += mine.data[i] != itk_out[i], kept += mine.data[i];
      EXPECT_EQ(differ, 0u) << n[0] << "x" << n[1] << "x" << n[2] << " density " << density;
      if (density > 0.8 && n[0] > 10) EXPECT_GT(kept, 0u);  // not trivially empty
    }
  }
}

TEST(RoiFinder, WidestHeadLevelIsTheVertexOfTheDomeEvenWhenTheTopIsCut) {
  // An ellipsoid's cross-sections: area(z) = A (1 - ((z - 20) / 70)^2), the top cut at 70 mm, a
  // neck (a constant narrow section) below -40 mm and shoulders (wider than the head) below -150 mm.
  std::vector<double> level, area;
  for (double z = -200; z <= 70; z += 2) {
    level.push_back(z);
    area.push_back(z < -150 ? 40000 : z < -40 ? 5000 : 15000 * (1 - std::pow((z - 20) / 70, 2)));
  }
  const auto w = widest_head_level(level, area);
  ASSERT_TRUE(w.has_value());
  EXPECT_NEAR(*w, 20.0, 0.5);
  // No dome: the same area at every level.
  EXPECT_FALSE(widest_head_level(level, std::vector<double>(level.size(), 100.0)).has_value());
  EXPECT_FALSE(widest_head_level({}, {}).has_value());
}

TEST(RoiFinder, CentresTheRoiBelowTheWidestSectionOfNoisyHeadsWhateverTheirHeightAndFieldOfView) {
  // The vertex rules put these 12 and 12 mm off the CoW level (8 mm below the centre): 78 mm below
  // the vertex of a head 60 mm high, and 60 mm below a field of view that cuts the top at 40 mm.
  const Vec3 centre{5, -10, 30};
  for (const auto& [radii, top] : std::vector<std::pair<Vec3, double>>{{{70, 85, 60}, 70.0}, {{72, 88, 70}, 40.0}}) {
    const auto head = ellipsoid_head(centre, radii, top, 7);
    const RoiAnchor a = find_roi_anchor(head);
    EXPECT_EQ(a.rule, RoiRule::Widest);
    EXPECT_NEAR(a.point[2], centre[2], 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    const Vec3 c = find_roi_centre(head);  // the default offset: 8 mm below the widest section
    EXPECT_NEAR(c[0], centre[0], 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    EXPECT_NEAR(c[1], centre[1], 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    EXPECT_NEAR(c[2], centre[2] - 8, 1.5) << "head " << radii[2] << " mm high, field of view to +" << top;
    // 0.5 mm along S: the finder samples every 4th level (~2 mm) and finds the same place
    const RoiAnchor fine = find_roi_anchor(ellipsoid_head(centre, radii, top, 7, 0.5));
    EXPECT_EQ(fine.rule, RoiRule::Widest);
    for (int ax = 0; ax < 3; ++ax)
      EXPECT_NEAR(fine.point[ax], a.point[ax], 1.0) << "axis " << ax << ", head " << radii[2] << " mm high";
    RoiOffsets o;
    o.by_rule[static_cast<int>(RoiRule::Widest)] = {7, 4,
                                                    -30};  // L is ignored: a mirrored head keeps the mirrored centre
    const Vec3 l = find_roi_centre(head, o);
    EXPECT_NEAR(l[0], c[0], 1e-9);
    EXPECT_NEAR(l[1], c[1] + 4, 1e-9);
    EXPECT_NEAR(l[2], c[2] + 8 - 30, 1e-9);
  }
}

TEST(RoiFinder, OffsetsAreLearnedFromTheMedianOfEveryLocationOnceAndOnlyWithEnoughCases) {
  // 6 heads anchored at their widest section whose aneurysms lie ~30 mm below and 5 mm anterior of
  // it (a real head's widest section is higher above the CoW than a synthetic one's). The ACom
  // (column 6) is much more common and 18 mm below: a median over points would follow it, the
  // median over locations does not. 4 vertex-anchored heads are too few to learn from.
  std::vector<std::pair<RoiAnchor, std::vector<std::pair<Vec3, int>>>> cases;
  for (int h = 0; h < 6; ++h) {
    RoiAnchor a{{3.0 * h, -20.0 + h, 40.0 + 2 * h}, RoiRule::Widest};
    std::vector<std::pair<Vec3, int>> pts;
    for (int col : {0, 2, 4, 8, 11})
      pts.push_back({a.point + Vec3{10.0 - col, -5.0 + 0.1 * h, -30.0 + 0.2 * (h - 2.5)}, col});
    for (int k = 0; k < 8; ++k) pts.push_back({a.point + Vec3{0, -5, -18}, 6});
    cases.push_back({a, pts});
  }
  cases.push_back({{{0, 0, 0}, RoiRule::Widest}, {}});  // a negative case counts for nothing
  for (int h = 0; h < 4; ++h) cases.push_back({{{0, 0, 100}, RoiRule::Vertex}, {{{0, 0, 30}, 6}}});
  const RoiOffsets o = learn_roi_offsets(cases);
  const Vec3 w = o.by_rule[static_cast<int>(RoiRule::Widest)];
  EXPECT_EQ(w[0], 0.0);
  EXPECT_NEAR(w[1], -5.0 + 0.25, 1e-9);  // per column the median of h = 0..5: -5 + 0.1 x 2.5; ACom's -5
  EXPECT_NEAR(w[2], -30.0, 1e-9);        // columns 0, 2, 4, 8, 11 at -30 (medians), ACom at -18: median -30
  EXPECT_EQ(o.cases[static_cast<int>(RoiRule::Widest)], 6);
  EXPECT_EQ(o.by_rule[static_cast<int>(RoiRule::Vertex)], RoiOffsets{}.by_rule[static_cast<int>(RoiRule::Vertex)]);
  EXPECT_EQ(o.cases[static_cast<int>(RoiRule::Vertex)], 0);
  // model.json round trip; an absurd offset is refused; a missing rule keeps its default
  const RoiOffsets back = RoiOffsets::from_json(o.to_json());
  EXPECT_EQ(back.by_rule, o.by_rule);
  EXPECT_EQ(back.cases, o.cases);
  auto bad = o.to_json();
  bad["widest"]["offset_lps_mm"][2] = 1e6;
  EXPECT_EQ(code_of([&] { RoiOffsets::from_json(bad); }), ErrorCode::CorruptInput);
  bad.erase("widest");
  EXPECT_EQ(RoiOffsets::from_json(bad).by_rule[static_cast<int>(RoiRule::Widest)],
            RoiOffsets{}.by_rule[static_cast<int>(RoiRule::Widest)]);
}

}  // namespace
}  // namespace aneura
