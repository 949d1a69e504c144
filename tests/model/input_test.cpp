// What the network sees: windows and their layout, coordinate channels, the mirror, blob features.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "core/error.hpp"
#include "core/volume.hpp"
#include "model/input.hpp"
#include "plan/plans.hpp"

namespace fs = std::filesystem;

namespace aneura {
namespace {

TEST(Windows, AConfigurationIsWindowedWhenItsPatchIsSmallerThanItsRoi) {
  Configuration c;
  c.roi_mm = {128, 128, 112};
  c.patch_size = {32, 32, 32};
  c.target_spacing_mm = {2, 2, 2};
  EXPECT_TRUE(windowed(c));
  EXPECT_EQ(window_spacing(c), (Vec3{2, 2, 2}));
  const Geometry roi = roi_grid({10, 20, 30}, c);
  EXPECT_EQ(roi.size, (std::array<int64_t, 3>{64, 64, 56}));
  const Vec3 mid = roi.index_to_world({31.5, 31.5, 27.5});  // centred
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(mid[a], 10.0 * (a + 1), 1e-9);
  EXPECT_EQ(roi.orientation_code(), "RAS");
  c.target_spacing_mm = {3.8, 3.8, 3.2};  // 32 x 3.8 = 122 mm: within 10 % of 128, so the patch is the ROI
  EXPECT_FALSE(windowed(c));
  EXPECT_EQ(window_spacing(c), (Vec3{4, 4, 3.5}));
  EXPECT_EQ(roi_grid({0, 0, 0}, c).size, (std::array<int64_t, 3>{32, 32, 32}));
}

TEST(Windows, StartsOverlapByHalfAPatchAndAreSymmetric) {
  const auto w = window_starts({64, 64, 56}, {32, 32, 32});
  ASSERT_EQ(w.size(), 27u);
  std::set<int64_t> x, z;
  for (const auto& s : w) x.insert(s[0]), z.insert(s[2]);
  EXPECT_EQ(x, (std::set<int64_t>{0, 16, 32}));
  EXPECT_EQ(z, (std::set<int64_t>{0, 12, 24}));
  // a span of 35: 3 strides of at most 16 -> 0, 11, 24, 35; the mirrored starts (35 - s) are starts too
  const auto v = window_starts({67, 32, 20}, {32, 32, 32});
  ASSERT_EQ(v.size(), 4u);
  std::set<int64_t> s;
  for (const auto& a : v) {
    s.insert(a[0]);
    EXPECT_EQ(a[1], 0);
    EXPECT_EQ(a[2], 0);
  }
  for (int64_t a : s) EXPECT_TRUE(s.count(35 - a)) << a;
  EXPECT_EQ(s, (std::set<int64_t>{0, 11, 24, 35}));
  // a quarter overlap: strides of at most 24 over a span of 36 -> 0, 18, 36
  const auto q = window_starts({68, 32, 20}, {32, 32, 32}, 0.25);
  std::set<int64_t> t;
  for (const auto& a : q) t.insert(a[0]);
  EXPECT_EQ(t, (std::set<int64_t>{0, 18, 36}));
  // no overlap on a span that is a multiple of the patch: the windows tile the ROI
  const auto tiles = window_starts({64, 48, 16}, {16, 16, 16}, 0.0);
  EXPECT_EQ(tiles.size(), 4u * 3u * 1u);
}

TEST(Windows, FocusPicksTheWindowCentredNearestEachPointAndMirrorsWithTheRoi) {
  const std::array<int64_t, 3> roi{64, 64, 56};
  const auto all = window_starts(roi, {32, 32, 32});  // x, y: 0, 16, 32 (centres 15.5, 31.5, 47.5); z: 0, 12, 24
  // (40, 5, 30): x 40 is nearest centre 47.5 -> 32 (31.5 is 8.5 away), y 5 -> 0, z 30 -> 12 (centre 27.5)
  const auto one = focus_windows(all, {32, 32, 32}, {{40, 5, 30}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], (std::array<int64_t, 3>{32, 0, 12}));
  // two points in the same window give it once; a point at the ROI's far corner the last window
  const auto two = focus_windows(all, {32, 32, 32}, {{40, 5, 30}, {41, 6, 29}, {63, 63, 55}});
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1], (std::array<int64_t, 3>{32, 32, 24}));
  // the mirrored point (x -> 63 - x) picks the mirrored window (x start -> 64 - 32 - start)
  const auto m = focus_windows(all, {32, 32, 32}, {{63 - 40, 5, 30}});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], (std::array<int64_t, 3>{0, 0, 12}));
  EXPECT_TRUE(focus_windows(all, {32, 32, 32}, {}).empty());
}

TEST(Windows, ChannelMaximaAreTheStrongestPeaksFirst) {
  auto f = torch::zeros({20, 20, 20});
  f[3][4][5] = 2.0;
  f[15][15][15] = 5.0;
  f[4][4][5] = 1.0;  // beside the first peak: not a maximum of its neighbourhood
  f[10][2][17] = 0.5;
  const auto m = channel_maxima(f, 10);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0], (std::array<int64_t, 3>{15, 15, 15}));
  EXPECT_EQ(m[1], (std::array<int64_t, 3>{3, 4, 5}));
  EXPECT_EQ(m[2], (std::array<int64_t, 3>{10, 2, 17}));
  EXPECT_EQ(channel_maxima(f, 1).size(), 1u);
  EXPECT_TRUE(channel_maxima(torch::zeros({8, 8, 8}), 5).empty());  // nothing above 0
}

TEST(Windows, ChannelMaximaOfAWideNeighbourhoodEqualThoseOfTheFull3dPool) {
  // the neighbourhood is pooled axis by axis; the maxima must be those of the w^3 pool itself
  torch::manual_seed(3);
  const auto f = torch::rand({30, 26, 22}) - 0.2;
  for (const int64_t w : {3, 5, 9}) {
    const auto full =
        torch::max_pool3d(f.unsqueeze(0).unsqueeze(0), {w, w, w}, {1, 1, 1}, {w / 2, w / 2, w / 2}).squeeze();
    const auto at = torch::nonzero((f == full) & (f > 0));
    const auto m = channel_maxima(f, 100000, w);
    ASSERT_EQ(static_cast<int64_t>(m.size()), at.size(0)) << w;
    std::set<std::array<int64_t, 3>> expected;
    for (int64_t i = 0; i < at.size(0); ++i)
      expected.insert({at[i][0].item<int64_t>(), at[i][1].item<int64_t>(), at[i][2].item<int64_t>()});
    const std::set<std::array<int64_t, 3>> found(m.begin(), m.end());
    EXPECT_EQ(found, expected) << w;
    const auto md = channel_maxima(f.to(torch::kDouble), 100000, w);  // LibTorch's pool, not float's own
    const std::set<std::array<int64_t, 3>> found_double(md.begin(), md.end());
    EXPECT_EQ(found_double, expected) << w;
    for (size_t k = 1; k < m.size(); ++k)  // strongest first
      EXPECT_GE(f[m[k - 1][0]][m[k - 1][1]][m[k - 1][2]].item<float>(), f[m[k][0]][m[k][1]][m[k][2]].item<float>());
  }
}

// A small aneurysm as the synthetic heads and real ones have it: a sphere of radius 1.2 mm on the
// wall of an artery of radius 1.5 mm, on a 0.5 mm grid, with a bend and a bifurcation elsewhere.
torch::Tensor vessel_phantom(int64_t n, const Vec3& bulge) {
  auto img = torch::zeros({n, n, n});
  auto acc = img.accessor<float, 3>();
  auto seg = [](const Vec3& p, const Vec3& a, const Vec3& b) {
    const Vec3 ab = b - a;
    const double t = std::clamp(dot(p - a, ab) / dot(ab, ab), 0.0, 1.0);
    return norm(p - (a + t * ab));
  };
  const Vec3 a{-5, 15, 15}, b{45, 15, 15}, c{20, 15, 15}, d{20, 45, 41};  // mm: a trunk and a branch, through
  for (int64_t x = 0; x < n; ++x)
    for (int64_t y = 0; y < n; ++y)
      for (int64_t z = 0; z < n; ++z) {
        const Vec3 p{0.5 * x, 0.5 * y, 0.5 * z};
        if (seg(p, a, b) <= 1.5 || seg(p, c, d) <= 1.2 || norm(p - bulge) <= 1.2) acc[x][y][z] = 3;
      }
  return img;
}

TEST(Windows, TheDotFilterMarksASmallAneurysmAndNotTheArteryItSitsOn) {
  const Vec3 bulge{10, 15, 15 + 1.5 + 0.6 * 1.2};  // on the trunk's wall, as synth places them
  const auto img = vessel_phantom(80, bulge);
  const auto f = dot_filter(img, {0.5, 0.5, 0.5}, 1);
  ASSERT_EQ(f.sizes(), img.sizes());
  const auto at = [&](const Vec3& mm) {  // the largest response within 1 mm
    const int64_t x = std::lround(mm[0] / 0.5), y = std::lround(mm[1] / 0.5), z = std::lround(mm[2] / 0.5);
    return f.slice(0, x - 2, x + 3).slice(1, y - 2, y + 3).slice(2, z - 2, z + 3).max().item<double>();
  };
  const double on_bulge = at(bulge), on_trunk = at({30, 15, 15}), outside = at({30, 30, 5});
  EXPECT_GT(on_bulge, 0);
  EXPECT_LT(on_trunk, 0.1 * on_bulge);  // a straight tube: its smallest eigenvalue is ~0
  EXPECT_LT(outside, 1e-6 * on_bulge);  // flat background: nothing
  EXPECT_TRUE((f >= 0).all().item<bool>());
}

// The Hessian by sampled Gaussian derivatives is exact on a quadratic (its kernels' moments), so
// on -(x^2 + 2 y^2 + 3 z^2) / 2 (mm) every scale gives sigma^2 x eigenvalues -1, -2, -3 and the filter
// sigma^2 / 3, the largest at sigma 1.8 mm; ITK's recursive Gaussian gives nearly the same. On the
// vessel phantom the two agree on where the blobs are and how strong.
TEST(Windows, TrilinearUpsamplingIsLibTorchsInterpolate) {
  torch::manual_seed(5);
  const auto f = torch::rand({7, 10, 9});
  for (const std::array<int64_t, 3> size : {std::array<int64_t, 3>{14, 20, 18}, {13, 19, 17}, {7, 21, 30}}) {
    const auto expected = torch::nn::functional::interpolate(f.unsqueeze(0).unsqueeze(0),
                                                             torch::nn::functional::InterpolateFuncOptions()
                                                                 .size(std::vector<int64_t>(size.begin(), size.end()))
                                                                 .mode(torch::kTrilinear)
                                                                 .align_corners(false))
                              .squeeze(0)
                              .squeeze(0);
    EXPECT_LT((upsample_trilinear(f, size) - expected).abs().max().item<double>(), 1e-6) << size[1];
    // into an existing volume: the larger of the two, voxel by voxel
    const auto other = torch::rand({size[0], size[1], size[2]});
    auto into = other.clone();
    upsample_trilinear(f, size, into);
    EXPECT_LT((into - torch::maximum(other, expected)).abs().max().item<double>(), 1e-6) << size[1];
  }
  auto wrong = torch::zeros({3, 3, 3});
  EXPECT_THROW(upsample_trilinear(f, {14, 20, 18}, wrong), Error);
}

TEST(Windows, TheDotFilterIsExactOnAQuadraticAndAgreesWithItks) {
  const Vec3 sp{0.5, 0.55, 0.6};
  auto quad = torch::zeros({48, 44, 40});
  auto q = quad.accessor<float, 3>();
  for (int64_t x = 0; x < 48; ++x)
    for (int64_t y = 0; y < 44; ++y)
      for (int64_t z = 0; z < 40; ++z) {
        const double a = (x - 24) * sp[0], b = (y - 22) * sp[1], c = (z - 20) * sp[2];
        q[x][y][z] = static_cast<float>(-(a * a + 2 * b * b + 3 * c * c) / 2);
      }
  const double expected = 1.8 * 1.8 / 3;
  for (const int threads : {1, 2}) {
    const auto ours = dot_filter(quad, sp, threads);
    EXPECT_NEAR(ours[24][22][20].item<double>(), expected, 2e-3 * expected) << threads;
    EXPECT_NEAR(ours.slice(0, 18, 30).slice(1, 16, 28).slice(2, 14, 26).min().item<double>(), expected,
                5e-3 * expected);  // the same everywhere inside
  }
  EXPECT_NEAR(dot_filter_itk(quad, sp, 1)[24][22][20].item<double>(), expected, 0.05 * expected);

  const Vec3 bulge{10, 15, 15 + 1.5 + 0.6 * 1.2};
  const auto img = vessel_phantom(80, bulge);
  const auto ours = dot_filter(img, {0.5, 0.5, 0.5}, 2), ref = dot_filter_itk(img, {0.5, 0.5, 0.5}, 2);
  ASSERT_EQ(ours.sizes(), ref.sizes());
  const auto at = [&](const torch::Tensor& f, const Vec3& mm) {  // the largest response within 1 mm
    const int64_t x = std::lround(mm[0] / 0.5), y = std::lround(mm[1] / 0.5), z = std::lround(mm[2] / 0.5);
    return f.slice(0, x - 2, x + 3).slice(1, y - 2, y + 3).slice(2, z - 2, z + 3).max().item<double>();
  };
  EXPECT_NEAR(at(ours, bulge), at(ref, bulge), 0.15 * at(ref, bulge));
  const auto mine = channel_maxima(ours, 4, 5), theirs = channel_maxima(ref, 4, 5);
  ASSERT_FALSE(theirs.empty());
  for (size_t k = 0; k < std::min<size_t>(3, theirs.size()); ++k) {  // ITK's strongest three are ours too
    double nearest = 1e9;
    for (const auto& m : mine)
      nearest = std::min(nearest,
                         std::hypot(static_cast<double>(m[0] - theirs[k][0]), static_cast<double>(m[1] - theirs[k][1]),
                                    static_cast<double>(m[2] - theirs[k][2])));
    EXPECT_LE(nearest, 1.5) << k;
  }
}

TEST(Windows, DotCandidatesFindTheAneurysmFirstInWorldCoordinates) {
  const Vec3 bulge{10, 15, 15 + 1.5 + 0.6 * 1.2};
  const auto img = vessel_phantom(80, bulge);
  Volume<float> v;  // the phantom as a case: RAS axes, 0.5 mm, voxel (0, 0, 0) at LPS (20, 20, -20)
  v.geom.size = {80, 80, 80};
  v.geom.spacing = {0.5, 0.5, 0.5};
  v.geom.origin = {20, 20, -20};
  v.geom.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};
  v.volumes = 1;
  v.data.resize(80 * 80 * 80);
  const auto zyx = img.permute({2, 1, 0}).contiguous();  // Volume: i fastest
  std::copy(zyx.data_ptr<float>(), zyx.data_ptr<float>() + zyx.numel(), v.data.begin());
  Configuration c;
  c.target_spacing_mm = {0.5, 0.5, 0.5};
  c.roi_mm = {40, 40, 40};
  c.patch_size = {16, 16, 16};
  const Vec3 centre = v.geom.index_to_world({39.5, 39.5, 39.5});
  const auto cands = dot_candidates(v, centre, c, 8, 1);
  ASSERT_FALSE(cands.empty());
  ASSERT_LE(cands.size(), 8u);
  const Vec3 truth = v.geom.index_to_world({bulge[0] / 0.5, bulge[1] / 0.5, bulge[2] / 0.5});
  EXPECT_LT(norm(cands[0].world_lps - truth), 1.5)
      << "strongest at " << cands[0].world_lps[0] << ", " << cands[0].world_lps[1] << ", " << cands[0].world_lps[2];
  for (size_t k = 1; k < cands.size(); ++k) {
    EXPECT_GE(cands[k - 1].strength, cands[k].strength);
    EXPECT_GE(norm(cands[k].world_lps - cands[0].world_lps), 2.0 - 1e-9);  // maxima 2 mm apart
  }
}

TEST(Windows, CoordinateChannelsAreTheWorldPositionFromTheRoiCentre) {
  Geometry g;
  g.size = {4, 3, 2};
  g.spacing = {2, 2, 3};
  g.origin = {10, -6, 40};
  g.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};  // RAS
  const auto c = coordinate_channels(g, {0, 0, 40});
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{3, 4, 3, 2}));
  // voxel (3, 2, 1): LPS (10 - 6, -6 - 4, 40 + 3) = (4, -10, 43); minus the centre, / 64
  EXPECT_NEAR(c[0][3][2][1].item<double>(), 4.0 / 64, 1e-6);
  EXPECT_NEAR(c[1][3][2][1].item<double>(), -10.0 / 64, 1e-6);
  EXPECT_NEAR(c[2][3][2][1].item<double>(), 3.0 / 64, 1e-6);
  EXPECT_NEAR(c[0][0][0][0].item<double>(), 10.0 / 64, 1e-6);
}

TEST(Windows, MirroredInputIsThatOfTheMirroredHead) {
  // a head symmetric about the ROI centre: its ROI input mirrored is itself
  Geometry g;
  g.size = {6, 2, 2};
  g.direction = {{{-1, 0, 0}, {0, -1, 0}, {0, 0, 1}}};
  g.origin = g.index_to_world({0, 0, 0}) - g.index_to_world({2.5, 0.5, 0.5});  // centre at 0
  const auto image = torch::tensor({1.f, 5.f, 2.f, 2.f, 5.f, 1.f}).reshape({1, 6, 1, 1}).expand({1, 6, 2, 2});
  const auto x = torch::cat({image, coordinate_channels(g, {0, 0, 0})});
  EXPECT_TRUE(torch::allclose(mirror_input(x), x));
  EXPECT_TRUE(torch::equal(mirror_input(mirror_input(x.unsqueeze(0))), x.unsqueeze(0)));  // batched, twice
}

TEST(Windows, BlobFeaturesMarkASphereAndNotATube) {
  // 1 mm grid: a bright sphere (radius 3 mm) and a bright tube (radius 1.5 mm) on a dark background
  const int64_t n = 40;
  auto img = torch::zeros({n, n, n});
  auto acc = img.accessor<float, 3>();
  for (int64_t x = 0; x < n; ++x)
    for (int64_t y = 0; y < n; ++y)
      for (int64_t z = 0; z < n; ++z) {
        const double ds = std::sqrt(double((x - 10) * (x - 10) + (y - 20) * (y - 20) + (z - 20) * (z - 20)));
        const double dt = std::sqrt(double((y - 20) * (y - 20) + (z - 20) * (z - 20)));
        if (ds <= 3) acc[x][y][z] = 2;
        if (x >= 24 && dt <= 1.5) acc[x][y][z] = 2;
      }
  const auto b = blob_channels(img, {1, 1, 1});
  ASSERT_EQ(b.sizes(), (std::vector<int64_t>{2, n, n, n}));
  const double sphere = b[0][10][20][20].item<double>(), tube = b[0][32][20][20].item<double>(),
               flat = b[0][20][5][5].item<double>();
  EXPECT_GT(sphere, 0.3);
  EXPECT_LT(tube, 0.2 * sphere);
  EXPECT_LT(flat, 1e-3);
  // the dark measure marks the same sphere in the negated image, and not the bright one
  const auto d = blob_channels(-img, {1, 1, 1});
  EXPECT_NEAR(d[1][10][20][20].item<double>(), sphere, 1e-4);
  EXPECT_LT(b[1][10][20][20].item<double>(), 1e-3);
  Configuration c;
  c.blob_features = true;
  EXPECT_EQ(input_channels(c, 1), 1 + kBlobChannels + kCoordinateChannels);
}

// One eigen analysis per voxel for both channels gives ITK's filter's two outputs (noise, blobs,
// tubes and plates of both signs, anisotropic voxels, 1 and 2 threads).
TEST(Windows, BlobFeaturesEqualItksObjectnessFilter) {
  torch::manual_seed(3);
  auto img = torch::randn({36, 30, 24});
  auto acc = img.accessor<float, 3>();
  for (int64_t x = 0; x < 36; ++x)
    for (int64_t y = 0; y < 30; ++y)
      for (int64_t z = 0; z < 24; ++z) {
        if (std::hypot(x - 9.0, y - 10.0, z - 12.0) < 4) acc[x][y][z] += 4;   // bright blob
        if (std::hypot(x - 26.0, y - 18.0, z - 10.0) < 3) acc[x][y][z] -= 4;  // dark blob
        if (std::hypot(y - 22.0, z - 16.0) < 2) acc[x][y][z] += 3;            // tube
        if (std::abs(z - 4) < 2) acc[x][y][z] -= 2;                           // plate
      }
  for (const int threads : {1, 2}) {
    const auto ours = blob_channels(img, {0.8, 0.9, 1.6}, threads);
    const auto ref = blob_channels_itk(img, {0.8, 0.9, 1.6}, threads);
    ASSERT_EQ(ours.sizes(), ref.sizes());
    EXPECT_GT(ref.max().item<float>(), 0.5f);
    EXPECT_GT((ref > 0).sum().item<int64_t>(), 1000);  // both channels hold many non-zero voxels
    EXPECT_LT((ours - ref).abs().max().item<float>(), 1e-5f * ref.max().item<float>()) << threads;
  }
}

}  // namespace
}  // namespace aneura
