// Ingestion against hand-computed geometry: fixtures are written with known positions, order,
// encoding and pixel values, then read back with read_series().
#include "io/dicom_series.hpp"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <atomic>
#include <set>
#include <thread>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/error.hpp"
#include "io/abort_guard.hpp"
#include "io/allocation_cap.hpp"
#include "io/dicom_decode.hpp"
#include "io/dicom_header.hpp"
#include "io/dicom_writer.hpp"
#include "support/series_fixture.hpp"

namespace fs = std::filesystem;

namespace aneura {
namespace {

using test::FixtureSpec;
using test::TempDir;

// Expects every voxel of `s` to hold the fixture value of the physical slice at its position.
void expect_fixture_voxels(const DicomSeries& s, const FixtureSpec& spec) {
  const Geometry& g = s.image.geom;
  for (int64_t k = 0; k < g.size[2]; ++k) {
    // physical slice index of output slice k from its world position
    const Vec3 w = g.index_to_world({0, 0, double(k)});
    const Vec3 n = normalized(cross(spec.row_cos, spec.col_cos));
    const double phys = dot(w - spec.first_position, n) / spec.step;
    const int p = static_cast<int>(std::lround(phys));
    ASSERT_NEAR(phys, p, 1e-6);
    const double slope = spec.slopes[std::min<size_t>(p, spec.slopes.size() - 1)];
    const double icpt = spec.intercepts[std::min<size_t>(p, spec.intercepts.size() - 1)];
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i)
        ASSERT_FLOAT_EQ(s.image.at(i, j, k), test::fixture_stored(int(i), int(j), p) * slope + icpt)
            << i << "," << j << "," << k;
  }
}

struct OrientationCase {
  const char* name;
  Vec3 row_cos, col_cos;
  double step;
  bool shuffle;
  Vec3 expected_normal;  // hand-computed cross(row, col)
};

class Orientation : public ::testing::TestWithParam<OrientationCase> {};

TEST_P(Orientation, GeometryAndVoxelsMatchHandComputation) {
  const OrientationCase& c = GetParam();
  TempDir dir(c.name);
  FixtureSpec spec;
  spec.row_cos = c.row_cos;
  spec.col_cos = c.col_cos;
  spec.step = c.step;
  spec.shuffle = c.shuffle;
  test::write_fixture(spec, dir.path);
  const DicomSeries s = read_series(dir.path);
  const Geometry& g = s.image.geom;
  EXPECT_EQ(g.size[0], 5);
  EXPECT_EQ(g.size[1], 6);
  EXPECT_EQ(g.size[2], 4);
  EXPECT_NEAR(g.spacing[0], 0.75, 1e-9);
  EXPECT_NEAR(g.spacing[1], 0.5, 1e-9);
  EXPECT_NEAR(g.spacing[2], 1.25, 1e-6);
  for (int r = 0; r < 3; ++r) {
    EXPECT_NEAR(g.direction[r][0], c.row_cos[r], 1e-9);
    EXPECT_NEAR(g.direction[r][1], c.col_cos[r], 1e-9);
    EXPECT_NEAR(g.direction[r][2], c.expected_normal[r], 1e-9);
  }
  // k ascends along the normal: origin is the first position for ascending stacks, the last one
  // (3 steps back along the normal) for descending stacks.
  const Vec3 expected_origin =
      c.step > 0 ? spec.first_position : spec.first_position + (3 * c.step) * c.expected_normal;
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(g.origin[r], expected_origin[r], 1e-6);
  expect_fixture_voxels(s, spec);
  EXPECT_TRUE(s.plan.warnings.empty()) << s.plan.warnings[0];
}

const double kC = std::cos(0.3), kS = std::sin(0.3);
INSTANTIATE_TEST_SUITE_P(
    Planes, Orientation,
    ::testing::Values(OrientationCase{"axial_asc", {1, 0, 0}, {0, 1, 0}, 1.25, false, {0, 0, 1}},
                      OrientationCase{"axial_desc", {1, 0, 0}, {0, 1, 0}, -1.25, false, {0, 0, 1}},
                      OrientationCase{"axial_shuffled", {1, 0, 0}, {0, 1, 0}, 1.25, true, {0, 0, 1}},
                      OrientationCase{"coronal_asc", {1, 0, 0}, {0, 0, -1}, 1.25, false, {0, 1, 0}},
                      OrientationCase{"coronal_desc_shuffled", {1, 0, 0}, {0, 0, -1}, -1.25, true, {0, 1, 0}},
                      OrientationCase{"sagittal_asc", {0, 1, 0}, {0, 0, -1}, 1.25, false, {-1, 0, 0}},
                      OrientationCase{"sagittal_desc_shuffled", {0, 1, 0}, {0, 0, -1}, -1.25, true, {-1, 0, 0}},
                      // axial tilted 0.3 rad about x: row (1,0,0), col (0,cos,sin), normal (0,-sin,cos)
                      OrientationCase{"oblique", {1, 0, 0}, {0, kC, kS}, 1.25, true, {0, -kS, kC}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(DicomSeries, PlaneIsReported) {
  TempDir dir("plane");
  FixtureSpec spec;
  spec.row_cos = {0, 1, 0};
  spec.col_cos = {0, 0, -1};
  test::write_fixture(spec, dir.path);
  EXPECT_EQ(plan_series(dir.path).plane, "sagittal");
}

TEST(DicomSeries, EnhancedMultiFrameWithPerFrameGroups) {
  TempDir dir("mf");
  FixtureSpec spec;
  spec.multiframe = true;
  spec.shuffle = true;  // frames not in spatial order
  spec.modality = "MR";
  spec.slopes = {1.0, 2.0, 0.5, 1.5};
  spec.intercepts = {0, 10, -5, 3};
  test::write_fixture(spec, dir.path);
  const DicomSeries s = read_series(dir.path);
  EXPECT_TRUE(s.plan.multiframe);
  EXPECT_EQ(s.image.geom.size[2], 4);
  expect_fixture_voxels(s, spec);
}

TEST(DicomSeries, MultiFrameWithOnlyTopLevelTagsStacksAlongNormal) {
  TempDir dir("mftop");
  FixtureSpec spec;
  spec.multiframe = true;
  spec.per_frame_groups = false;
  spec.modality = "MR";
  spec.intercepts = {0};
  test::write_fixture(spec, dir.path);
  const DicomSeries s = read_series(dir.path);
  EXPECT_NEAR(s.image.geom.spacing[2], 1.25, 1e-9);
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(s.image.geom.origin[r], spec.first_position[r], 1e-9);
  expect_fixture_voxels(s, spec);
  ASSERT_FALSE(s.plan.warnings.empty());
  EXPECT_NE(s.plan.warnings[0].find("no per-frame ImagePositionPatient"), std::string::npos);
}

TEST(DicomSeries, PerSliceRescaleIsApplied) {
  TempDir dir("rescale");
  FixtureSpec spec;
  spec.slopes = {1.0, 0.5, 2.0, 1.0};
  spec.intercepts = {-1024, -1000, 0, 7.5};
  spec.shuffle = true;
  test::write_fixture(spec, dir.path);
  expect_fixture_voxels(read_series(dir.path), spec);
}

TEST(DicomSeries, Monochrome1IsInverted) {
  TempDir dir("mono1");
  FixtureSpec spec;
  spec.photometric = "MONOCHROME1";
  spec.bits_stored = 12;
  spec.intercepts = {0};
  test::write_fixture(spec, dir.path);
  const DicomSeries s = read_series(dir.path);
  // 12-bit unsigned: v -> 4095 - v
  EXPECT_FLOAT_EQ(s.image.at(0, 0, 0), 4095.0f - test::fixture_stored(0, 0, 0));
  EXPECT_FLOAT_EQ(s.image.at(4, 5, 3), 4095.0f - test::fixture_stored(4, 5, 3));
}

TEST(DicomSeries, Signed12BitWithHighBitJunkIsSignExtended) {
  TempDir dir("s12");
  DicomImageSpec d;
  d.sop_uid = "1.2.3.4.1";
  d.series_uid = "1.2.3.4";
  d.rows = 1;
  d.cols = 4;
  d.bits_stored = 12;
  d.high_bit = 11;
  d.pixel_representation = 1;
  d.positions = {{0, 0, 0}};
  // 0x0F0F -> -241, 0xFFFF -> -1, 0xF7FF -> 2047 (junk above bit 11), 0x0800 -> -2048
  d.stored = {0x0F0F, 0xFFFF, 0xF7FF, 0x0800};
  write_dicom(d, dir.path / "a.dcm");
  const DicomSeries s = read_series(dir.path);
  EXPECT_FLOAT_EQ(s.image.data[0], -241);
  EXPECT_FLOAT_EQ(s.image.data[1], -1);
  EXPECT_FLOAT_EQ(s.image.data[2], 2047);
  EXPECT_FLOAT_EQ(s.image.data[3], -2048);
}

class Codec : public ::testing::TestWithParam<Syntax> {};

TEST_P(Codec, DecodesToTheUncompressedPixels) {
  TempDir dir(syntax_name(GetParam()));
  FixtureSpec spec;
  spec.syntax = GetParam();
  spec.rows = spec.cols = 64;  // OpenJPEG cannot encode images smaller than its resolution levels
  spec.bits_stored = 12;       // JPEG lossless/LS/2000 on 12-bit CT-like data
  spec.shuffle = true;
  test::write_fixture(spec, dir.path);
  const DicomSeries s = read_series(dir.path);
  EXPECT_EQ(s.plan.transfer_syntax, syntax_uid(GetParam()));  // the fixture really is encoded so
  expect_fixture_voxels(s, spec);
}

INSTANTIATE_TEST_SUITE_P(TransferSyntaxes, Codec,
                         ::testing::Values(Syntax::ExplicitLittle, Syntax::ImplicitLittle, Syntax::ExplicitBig,
                                           Syntax::Deflated, Syntax::JpegLossless, Syntax::JpegLsLossless,
                                           Syntax::Jpeg2000Lossless, Syntax::Rle),
                         [](const auto& info) {
                           std::string n = syntax_name(info.param);
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(DicomSeries, MultiFrameJpeg2000) {
  TempDir dir("mfj2k");
  FixtureSpec spec;
  spec.multiframe = true;
  spec.rows = spec.cols = 64;
  spec.bits_stored = 12;
  spec.syntax = Syntax::Jpeg2000Lossless;
  test::write_fixture(spec, dir.path);
  expect_fixture_voxels(read_series(dir.path), spec);
}

// The voxels of a read tilted series whose source pixels lie inside their slice hold hu() at the
// voxel's world position; returns how many were checked.
size_t expect_tilted_voxels(const test::TiltedSeries& t, const Volume<float>& v, const SeriesPlan& plan) {
  const Geometry& g = v.geom;
  size_t inside = 0;
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
        const Vec3 d = w - plan.slice_map[k].position;
        EXPECT_NEAR(dot(d, cross(t.row_cos, t.col_cos)), 0, 1e-6);  // in slice k's plane
        const double y = dot(d, t.col_cos) / test::TiltedSeries::kSpacing;
        if (y < -1e-6 || y > test::TiltedSeries::kRows - 1 + 1e-6) continue;
        ++inside;
        EXPECT_NEAR(v.at(i, j, k), test::TiltedSeries::hu(w), test::TiltedSeries::kSlope) << i << "," << j << "," << k;
        if (::testing::Test::HasFailure()) return inside;
      }
  return inside;
}

TEST(DicomSeries, GantryTiltIsReslicedOntoAnOrthogonalGrid) {
  using T = test::TiltedSeries;
  for (const double degrees : {18.5, -18.5}) {
    SCOPED_TRACE(degrees);
    TempDir dir("tilt");
    const T t(degrees);
    t.write(dir.path);
    const DicomSeries s = read_series(dir.path);
    const Geometry& g = s.image.geom;
    // The grid is orthogonal, its third axis the slice normal with the table step's share of it,
    // and 7 rows wider than the images: the far slice lies 6.98 rows off the first one.
    const double drift = 11 * T::kTable * std::sin(std::fabs(t.tilt)) / T::kSpacing;
    EXPECT_EQ(g.size[0], T::kCols);
    EXPECT_EQ(g.size[1], T::kRows + 7);
    EXPECT_EQ(g.size[2], T::kSlices);
    const Vec3 n = cross(t.row_cos, t.col_cos);
    const Vec3 origin = degrees > 0 ? t.first : t.first - (drift * T::kSpacing) * t.col_cos;
    for (int r = 0; r < 3; ++r) {
      EXPECT_NEAR(g.direction[r][1], t.col_cos[r], 1e-9);
      EXPECT_NEAR(g.direction[r][2], n[r], 1e-9);
      EXPECT_NEAR(g.origin[r], origin[r], 1e-6);
    }
    EXPECT_NEAR(g.spacing[2], T::kTable * std::cos(t.tilt), 1e-6);
    EXPECT_NEAR(s.plan.tilt_deg, 18.5, 1e-3);
    EXPECT_NEAR(s.plan.tilt_max_mm, drift * T::kSpacing, 1e-6);
    ASSERT_EQ(s.plan.tilt_shift.size(), 12u);
    const size_t far = degrees > 0 ? 11 : 0;  // the slice whose first rows no pixel covers
    EXPECT_NEAR(s.plan.tilt_shift[far][1], drift, 1e-6);
    EXPECT_NEAR(s.plan.tilt_shift[11 - far][1], 0, 1e-6);
    ASSERT_EQ(s.plan.warnings.size(), 1u);
    EXPECT_NE(s.plan.warnings[0].find("gantry tilt 18.5 deg"), std::string::npos) << s.plan.warnings[0];
    EXPECT_FALSE(volume_fits_int16(s.plan));
    // Every voxel whose source pixels lie inside its slice holds hu() at its world position
    // (bilinear resampling reproduces a linear function up to the stored values' rounding).
    const size_t inside = expect_tilted_voxels(t, s.image, s.plan);
    EXPECT_GT(inside, size_t(0.85 * g.voxel_count()));
    // the others hold the series' minimum
    double lowest = 1e9;
    for (int k = 0; k < T::kSlices; ++k)
      for (int j = 0; j < T::kRows; ++j)
        for (int i = 0; i < T::kCols; ++i) lowest = std::min(lowest, t.stored_hu(i, j, k));
    EXPECT_NEAR(s.image.at(3, 2, far), lowest, 1e-3);
    // rows written bottom-up (dcm2niix's order) keep every voxel at its world position too
    const Volume<float> up = load_volume<float>(s.plan, 0, RowOrder::BottomUp);
    EXPECT_EQ(expect_tilted_voxels(t, up, s.plan), inside);
    EXPECT_NEAR(up.at(3, g.size[1] - 3, far), lowest, 1e-3);
    // a localizer on the last slice lands on the voxel that holds that pixel's value
    const Vec3 w = localizer_to_world(s.plan, t.sop_uid(11), 20, 30);
    const Vec3 ijk = g.world_to_index(w);
    EXPECT_NEAR(ijk[2], 11, 1e-6);
    EXPECT_NEAR(s.image.at(std::lround(ijk[0]), std::lround(ijk[1]), 11), T::hu(w), 4.0);
  }
}

TEST(DicomSeries, MissingSliceIsResampledWithAWarning) {
  TempDir dir("missing");
  FixtureSpec spec;
  spec.slices = 5;
  spec.skip_slices = {2};
  spec.intercepts = {0};
  test::write_fixture(spec, dir.path);
  const DicomSeries s = read_series(dir.path);
  EXPECT_TRUE(s.plan.resampled);
  EXPECT_EQ(s.image.geom.size[2], 5);
  EXPECT_NEAR(s.image.geom.spacing[2], 1.25, 1e-9);
  ASSERT_FALSE(s.plan.warnings.empty());
  EXPECT_NE(s.plan.warnings[0].find("uneven slice spacing"), std::string::npos);
  // slice 2 is the mean of its neighbours (linear); the others are the source slices
  EXPECT_FLOAT_EQ(s.image.at(1, 1, 2), 0.5f * (test::fixture_stored(1, 1, 1) + test::fixture_stored(1, 1, 3)));
  EXPECT_FLOAT_EQ(s.image.at(1, 1, 3), test::fixture_stored(1, 1, 3));
  SeriesOptions strict;
  strict.strict_spacing = true;
  try {
    read_series(dir.path, strict);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadGeometry);
  }
}

TEST(DicomSeries, ScoutWithOtherGeometryIsDroppedAndReported) {
  TempDir dir("scout");
  FixtureSpec spec;
  test::write_fixture(spec, dir.path);
  FixtureSpec scout;
  scout.slices = 1;
  scout.rows = 8;
  scout.cols = 8;
  scout.row_cos = {0, 1, 0};
  scout.col_cos = {0, 0, -1};
  // the scout itself: same SeriesInstanceUID, other size and orientation
  scout.series_uid = spec.series_uid;
  TempDir tmp("scout_src");
  auto files = test::write_fixture(scout, tmp.path);
  fs::copy_file(files[0], dir.path / "scout.dcm");
  std::ofstream(dir.path / "notes.txt") << "not dicom";
  const DicomSeries s = read_series(dir.path);
  EXPECT_EQ(s.image.geom.size[2], 4);
  ASSERT_EQ(s.plan.dropped.size(), 1u);
  EXPECT_NE(s.plan.dropped[0].find("scout.dcm"), std::string::npos);
  EXPECT_EQ(s.plan.non_dicom_files, 1u);
  expect_fixture_voxels(s, spec);
}

TEST(DicomSeries, TwoSeriesOfEqualSizeNeedAChoice) {
  TempDir dir("two");
  FixtureSpec a, b;
  b.series_uid = "1.2.826.0.1.3680043.8.498.200";
  b.intercepts = {0};
  test::write_fixture(a, dir.path);
  test::write_fixture(b, dir.path);
  try {
    read_series(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::AmbiguousSeries);
    EXPECT_NE(std::string(e.what()).find(b.series_uid), std::string::npos);
  }
  SeriesOptions o;
  o.series_uid = b.series_uid;
  const DicomSeries s = read_series(dir.path, o);
  EXPECT_EQ(s.plan.series_uid, b.series_uid);
  expect_fixture_voxels(s, b);
  o.series_uid = "1.2.3";
  EXPECT_THROW(read_series(dir.path, o), Error);
  // the folder's series, listed for the user to choose from: both, with their geometry
  const auto all = list_series(dir.path);
  ASSERT_EQ(all.size(), 2u);
  std::set<std::string> uids;
  for (const auto& s2 : all) {
    uids.insert(s2.series_uid);
    EXPECT_EQ(s2.columns, a.cols);
    EXPECT_EQ(s2.rows, a.rows);
    EXPECT_EQ(s2.images, static_cast<size_t>(a.slices));
    EXPECT_EQ(s2.modality, "CT");
    EXPECT_EQ(s2.plane, "axial");
    EXPECT_EQ(s2.orientation, "LPS");
  }
  EXPECT_EQ(uids, (std::set<std::string>{a.series_uid, b.series_uid}));
}

// A study folder of symbolic links to series folders (as users arrange them): the links are
// followed, each file counted once however many ways lead to it, and a link back up cannot loop.
TEST(DicomSeries, SymbolicLinksAreFollowedOnceWithoutLooping) {
  TempDir dir("links");
  FixtureSpec spec;
  spec.slices = 5;
  fs::create_directories(dir.path / "store" / "series_a");
  test::write_fixture(spec, dir.path / "store" / "series_a");
  const fs::path study = dir.path / "study";
  fs::create_directories(study);
  fs::create_directory_symlink(dir.path / "store" / "series_a", study / "a");
  fs::create_directory_symlink(dir.path / "store" / "series_a", study / "a_again");  // a second way in
  fs::create_directory_symlink(study, study / "a" / "loop");                         // back up: a cycle
  fs::create_symlink(dir.path / "nowhere", study / "dangling");                      // a broken link
  const DicomSeries s = read_series(study);
  EXPECT_EQ(s.plan.files_scanned, 5u);
  EXPECT_TRUE(s.plan.warnings.empty()) << s.plan.warnings.front();  // no duplicate slice positions
  EXPECT_EQ(s.image.geom.size[2], 5);
  expect_fixture_voxels(s, spec);
  // a file linked into the folder counts as that file
  const fs::path single = dir.path / "single";
  fs::create_directories(single);
  for (const auto& e : fs::directory_iterator(dir.path / "store" / "series_a"))
    fs::create_symlink(e.path(), single / e.path().filename());
  EXPECT_EQ(read_series(single).image.geom.size[2], 5);
}

// Pixel descriptions GDCM's image reader asserts on (an abort of the whole process: a mutated
// series with SamplesPerPixel 5 did) are refused at header time, naming the tag.
TEST(DicomSeries, AnImpossiblePixelDescriptionIsACorruptFileNotAnAbort) {
  TempDir dir("spp");
  FixtureSpec spec;
  const auto files = test::write_fixture(spec, dir.path);
  const fs::path bad = dir.path / files[1].filename();
  std::string bytes;
  {
    std::ifstream in(bad, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string spp("\x28\x00\x02\x00US\x02\x00\x01\x00", 10);  // (0028,0002) US 1, explicit VR
  const size_t at = bytes.find(spp);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 8] = 5;
  std::ofstream(bad, std::ios::binary) << bytes;
  try {
    read_series(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::CorruptInput);
    EXPECT_NE(std::string(e.what()).find("SamplesPerPixel (0028,0002) 5"), std::string::npos) << e.what();
    EXPECT_EQ(e.where(), bad.string());
  }
  SeriesOptions o;
  o.skip_corrupt = true;
  const DicomSeries s = read_series(dir.path, o);
  EXPECT_EQ(s.plan.dropped.size(), 1u);
}

// A file cut anywhere before its pixel data (inside the nested per-frame sequences too) is a
// corrupt file or one without pixels, never a parse that aborts the process (GDCM's ReadCompat
// asserts on a data set that runs past the end of the file); the intact files still read.
TEST(DicomSeries, AFileCutAnywhereInItsHeaderIsRefusedNotAnAbort) {
  for (const Syntax syntax : {Syntax::ExplicitLittle, Syntax::ImplicitLittle, Syntax::ExplicitBig}) {
    TempDir dir("cut");
    FixtureSpec spec;
    spec.multiframe = true;  // per-frame functional groups: sequences in sequences
    spec.syntax = syntax;
    const auto files = test::write_fixture(spec, dir.path);
    ASSERT_EQ(files.size(), 1u);
    const fs::path file = dir.path / files[0].filename();
    std::string bytes;
    {
      std::ifstream in(file, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    ASSERT_EQ(read_dicom_header(file).kind, HeaderResult::Kind::Image);
    const bool big = syntax == Syntax::ExplicitBig;
    const std::string pixel_tag = big ? std::string("\x7F\xE0\x00\x10", 4) : std::string("\xE0\x7F\x10\x00", 4);
    const size_t pixels = bytes.rfind(pixel_tag);
    ASSERT_NE(pixels, std::string::npos);
    int truncated = 0, cuts = 0;
    for (size_t cut = 140; cut < pixels; ++cut, ++cuts) {
      std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
      const HeaderResult r = read_dicom_header(file);
      EXPECT_TRUE(r.kind == HeaderResult::Kind::Corrupt || r.kind == HeaderResult::Kind::NonImage)
          << "cut at " << cut << " of " << bytes.size();
      truncated += r.reason.find("truncated") != std::string::npos;
    }
    EXPECT_GT(truncated, cuts / 2) << static_cast<int>(syntax);  // most cuts fall inside an element
    // Native pixel data that runs past the end: cut short, or a length clobbered to ~4 GB (found by
    // tests/fuzz/fuzz_header.cpp: GDCM's header read allocated the declared length, 4.2 GB for a 10 KB file)
    const size_t length_at = pixels + (syntax == Syntax::ImplicitLittle ? 4 : 8);
    for (size_t cut : {bytes.size() - 1, bytes.size() - 100, length_at + 6}) {
      std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes.substr(0, cut);
      const HeaderResult r = read_dicom_header(file);
      EXPECT_EQ(r.kind, HeaderResult::Kind::Corrupt) << "cut at " << cut;
      EXPECT_NE(r.reason.find("(7FE0,0010)"), std::string::npos) << r.reason;
    }
    std::string clobbered = bytes;
    clobbered.replace(length_at, 4, std::string("\xFF\xFF\xFF\xFE", 4));
    std::ofstream(file, std::ios::binary | std::ios::trunc) << clobbered;
    EXPECT_EQ(read_dicom_header(file).kind, HeaderResult::Kind::Corrupt) << static_cast<int>(syntax);
  }
}

// Files on which Debian's GDCM asserts although the data-set walk lets them through (found by
// tests/fuzz/fuzz_header.cpp; tests/io/data/gdcm_aborts): each is refused as a corrupt file by the
// abort guard, in this process, on several threads at once; an abort outside a guard still ends
// the process.
TEST(DicomSeries, FilesGdcmAssertsOnAreRefusedNotAnAbort) {
  const fs::path data = fs::path(ANEURA_SOURCE_DIR) / "tests/io/data/gdcm_aborts";
  for (const char* name : {"meta_read_compat.dcm", "item_read_with_length.dcm"}) {
    const HeaderResult r = read_dicom_header(data / name);
    EXPECT_EQ(r.kind, HeaderResult::Kind::Corrupt) << name;
    try {
      read_series(data / name);
      FAIL() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::CorruptInput) << name;
      EXPECT_EQ(e.where(), (data / name).string());
    }
  }
  // its header reads; GDCM's full read before decoding asserts
  const fs::path decode = data / "full_read_vr16.dcm";
  EXPECT_EQ(read_dicom_header(decode).kind, HeaderResult::Kind::Image);
  EXPECT_THROW(decode_pixels(decode.string()), Error);
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        refused += read_dicom_header(data / "meta_read_compat.dcm").kind == HeaderResult::Kind::Corrupt;
        try {
          decode_pixels(decode.string());
        } catch (const Error&) {
          ++refused;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused.load(), 80);
  EXPECT_DEATH(std::abort(), "");
}

// A sanitizer's runtime replaces operator new itself: no cap in that build (allocation_cap.cpp).
#if defined(__SANITIZE_ADDRESS__)
#define CAP_OR_SKIP() GTEST_SKIP() << "sanitizer build: no allocation cap"
#else
#define CAP_OR_SKIP() ASSERT_TRUE(ScopedAllocationCap::available()) << "this program replaces operator new"
#endif

// Files of 0.2-1.2 KB (found by libFuzzer) whose damaged lengths GDCM's explicit/implicit recovery
// believes: before the allocation cap, reading each allocated and zeroed 3-4 GB, then refused it.
TEST(DicomSeries, ADamagedLengthIsRefusedWithoutAllocatingIt) {
  CAP_OR_SKIP();
  auto peak_mb = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024;
  };
  const long before = peak_mb();
  const fs::path data = fs::path(ANEURA_SOURCE_DIR) / "tests/io/data/gdcm_oom";
  for (const char* name : {"preamble_length.dcm", "implicit_guess_a.dcm", "implicit_guess_b.dcm"}) {
    const HeaderResult r = read_dicom_header(data / name);
    EXPECT_EQ(r.kind, HeaderResult::Kind::Corrupt) << name;
    EXPECT_NE(r.reason.find("GDCM asked for"), std::string::npos) << name << ": " << r.reason;
    try {
      read_series(data / name);
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::CorruptInput) << name;
      EXPECT_EQ(e.where(), (data / name).string());
    }
  }
  EXPECT_LT(peak_mb() - before, 512) << "the damaged lengths were allocated";
}

// The cap refuses only what is larger than it, only inside the guard, and the thread's allocations
// go on normally afterwards; a file read inside a guard keeps its normal result.
TEST(DicomSeries, TheAllocationCapHoldsOnlyInsideTheGuard) {
  CAP_OR_SKIP();
  std::vector<char> big;
  try {
    without_abort(
        "f.dcm", "aborted", [&] { big.resize(std::size_t{8} << 20); }, std::size_t{1} << 20);
    ADD_FAILURE() << "8 MB under a 1 MB cap";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::CorruptInput);
    EXPECT_NE(std::string(e.what()).find("asked for 8 MB"), std::string::npos) << e.what();
  }
  without_abort(
      "f.dcm", "aborted", [&] { big.resize(std::size_t{512} << 10); }, std::size_t{1} << 20);
  EXPECT_EQ(big.size(), std::size_t{512} << 10);
  big.resize(std::size_t{64} << 20);  // no guard, no cap
  EXPECT_EQ(big.size(), std::size_t{64} << 20);
  std::thread other([] {  // another thread's allocations are not capped by this one's guard
    std::vector<char> v(std::size_t{16} << 20);
    EXPECT_EQ(v.size(), std::size_t{16} << 20);
  });
  without_abort(
      "f.dcm", "aborted", [&] { other.join(); }, std::size_t{1} << 20);
  TempDir dir("capped");
  test::write_fixture(FixtureSpec{}, dir.path);
  const DicomSeries s = read_series(dir.path);
  EXPECT_GT(s.image.geom.size[2], 0);
}

TEST(DicomSeries, AllSlicesAtOnePositionIsAnError) {
  TempDir dir("samepos");
  FixtureSpec spec;
  spec.step = 0;
  test::write_fixture(spec, dir.path);
  try {
    read_series(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::BadGeometry);
    EXPECT_NE(std::string(e.what()).find("one position"), std::string::npos);
  }
}

TEST(DicomSeries, BadInputsGiveTypedErrors) {
  TempDir empty("empty");
  auto code_of = [](const fs::path& p, SeriesOptions o = {}) {
    try {
      read_series(p, o);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::Internal;
  };
  EXPECT_EQ(code_of(empty.path), ErrorCode::NoDicom);
  EXPECT_EQ(code_of(empty.path / "nope"), ErrorCode::InputNotFound);
  std::ofstream(empty.path / "a.txt") << "hello";
  EXPECT_EQ(code_of(empty.path), ErrorCode::NoDicom);

  TempDir trunc("trunc");
  FixtureSpec spec;
  auto files = test::write_fixture(spec, trunc.path);
  // A file cut inside its pixel data (GDCM pads it and reports success) is named in the error.
  fs::resize_file(files[1], fs::file_size(files[1]) - 40);
  EXPECT_EQ(code_of(trunc.path), ErrorCode::CorruptInput);
  try {
    read_series(trunc.path);
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), files[1].string());
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  // A file cut inside its header: named in the error (GDCM itself would abort on it).
  fs::resize_file(files[1], 200);
  EXPECT_EQ(code_of(trunc.path), ErrorCode::CorruptInput);
  try {
    read_series(trunc.path);
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), files[1].string());
  }
  SeriesOptions skip;
  skip.skip_corrupt = true;
  const DicomSeries s = read_series(trunc.path, skip);  // the gap is resampled, the file reported
  EXPECT_EQ(s.image.geom.size[2], 4);
  EXPECT_FALSE(s.plan.dropped.empty());
}

TEST(DicomSeries, LocalizerMapsToWorldOnItsInstance) {
  TempDir dir("loc");
  FixtureSpec spec;
  spec.row_cos = {1, 0, 0};
  spec.col_cos = {0, 0, -1};  // coronal
  spec.shuffle = true;
  test::write_fixture(spec, dir.path);
  const DicomSeries s = read_series(dir.path);
  // instance of physical slice 2, pixel column 3, row 4
  const std::string sop = spec.series_uid + ".3";
  const Vec3 w = localizer_to_world(s.plan, sop, 3, 4);
  const Vec3 expected = test::fixture_position(spec, 2) + (3 * 0.75) * spec.row_cos + (4 * 0.5) * spec.col_cos;
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(w[r], expected[r], 1e-9);
  // and that world point is voxel (3, 4, k) of the volume, where k holds physical slice 2
  const Vec3 ijk = s.image.geom.world_to_index(w);
  EXPECT_NEAR(ijk[0], 3, 1e-9);
  EXPECT_NEAR(ijk[1], 4, 1e-9);
  const auto k = std::lround(ijk[2]);
  EXPECT_FLOAT_EQ(s.image.at(3, 4, k), test::fixture_stored(3, 4, 2) - 1024.0f);
  EXPECT_THROW(localizer_to_world(s.plan, "9.9.9", 0, 0), Error);
}

TEST(DicomSeries, LocalizerOnMultiFrameUsesFrameIndex) {
  TempDir dir("locmf");
  FixtureSpec spec;
  spec.multiframe = true;
  spec.shuffle = true;
  test::write_fixture(spec, dir.path);
  const SeriesPlan p = plan_series(dir.path);
  const std::string sop = spec.series_uid + ".1";
  for (int f = 0; f < 4; ++f) {
    const Vec3 w = localizer_to_world(p, sop, 0, 0, f);
    const auto& e = *std::find_if(p.slice_map.begin(), p.slice_map.end(), [&](const auto& m) { return m.frame == f; });
    for (int r = 0; r < 3; ++r) EXPECT_NEAR(w[r], e.position[r], 1e-9);
    EXPECT_NEAR(p.geometry.world_to_index(w)[2], e.k, 1e-9);
  }
}

}  // namespace
}  // namespace aneura
