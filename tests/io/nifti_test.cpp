#include "io/nifti.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "core/error.hpp"
#include "io/dicom_series.hpp"
#include "support/compare.hpp"
#include "support/series_fixture.hpp"

namespace fs = std::filesystem;

namespace aneura {
namespace {

Volume<float> oblique_volume(float scale) {
  Geometry g;
  g.size = {5, 4, 3};
  g.spacing = {0.7, 0.9, 2.5};
  g.origin = {12.5, -40.25, 70};
  const double c = std::cos(0.4), s = std::sin(0.4);
  g.direction = {{{c, 0, -s}, {0, 1, 0}, {s, 0, c}}};  // rotated about y
  Volume<float> v(g);
  for (size_t n = 0; n < v.data.size(); ++n) v.data[n] = scale * static_cast<float>(n) - 20;
  return v;
}

TEST(Nifti, RoundTripKeepsGeometryAndValues) {
  test::TempDir dir("nifti");
  // Distinct base names: niftilib reads "a.nii" when asked for "a.nii.gz" if both exist.
  for (const char* name : {"a.nii", "b.nii.gz"})
    for (float scale : {1.0f, 0.25f})  // int16 and float32 storage
      for (NiftiLayout layout : {NiftiLayout::Native, NiftiLayout::Dcm2niix}) {
        const Volume<float> v = oblique_volume(scale);
        write_nifti(v, dir.path / name, layout);
        const Volume<float> back = read_nifti(dir.path / name);
        test::expect_same_world_grid(v, back);
        if (layout == NiftiLayout::Native) {
          EXPECT_LT(test::affine_diff(v.geom, back.geom), 1e-5);
        }
      }
}

TEST(Nifti, FourDimensionalVolumes) {
  test::TempDir dir("nifti4d");
  Volume<float> v(oblique_volume(1).geom, 3);
  for (size_t n = 0; n < v.data.size(); ++n) v.data[n] = static_cast<float>(n);
  write_nifti(v, dir.path / "t.nii", NiftiLayout::Native);
  const Volume<float> back = read_nifti(dir.path / "t.nii");
  EXPECT_EQ(back.volumes, 3);
  EXPECT_EQ(back.data, v.data);
}

TEST(Nifti, UnwritableDestinationLeavesNothing) {
  try {
    write_nifti(oblique_volume(1), "/nonexistent_aneura/x.nii.gz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::OutputFailed);
  }
}

TEST(Nifti, CorruptFileIsAClearError) {
  test::TempDir dir("niftibad");
  std::ofstream(dir.path / "bad.nii") << "not a nifti file at all";
  EXPECT_THROW(read_nifti(dir.path / "bad.nii"), Error);
  EXPECT_THROW(read_nifti(dir.path / "missing.nii"), Error);
}

// Same series through dcm2niix (Debian's binary) and through aneura: same voxels in world space,
// and in dcm2niix's layout the same voxel order and qform/sform within 1e-3 mm. Cases 4-6 are 3D
// acquisitions (MRAcquisitionType 3D), which dcm2niix turns to their nearest canonical orientation.
class Dcm2niix : public ::testing::TestWithParam<int> {};

TEST_P(Dcm2niix, SameAffineAndVoxels) {
  if (std::system("command -v dcm2niix > /dev/null 2>&1") != 0) GTEST_SKIP() << "dcm2niix not installed";
  const int which = GetParam();
  test::TempDir dir("d2n_in"), out("d2n_out");
  test::FixtureSpec spec;
  spec.rows = 16;
  spec.cols = 12;
  spec.slices = 6;
  spec.shuffle = true;
  const double c = std::cos(0.2), s = std::sin(0.2);
  if (which == 1) {
    spec.row_cos = {1, 0, 0};
    spec.col_cos = {0, 0, -1};
  }  // coronal
  if (which == 2) {
    spec.row_cos = {0, 1, 0};
    spec.col_cos = {0, 0, -1};
    spec.step = -2;
  }  // sagittal desc
  // double oblique: rotate about z by 0.2 then about x by 0.2 (orthonormal rows)
  if (which == 3 || which == 6) {
    spec.row_cos = {c, s, 0};
    spec.col_cos = {-s * c, c * c, s};
  }
  if (which == 4) {  // sagittal 3D, descending
    spec.row_cos = {0, 1, 0};
    spec.col_cos = {0, 0, -1};
    spec.step = -2;
  }
  if (which == 5) {  // coronal 3D
    spec.row_cos = {1, 0, 0};
    spec.col_cos = {0, 0, -1};
  }
  if (which >= 4) {
    spec.modality = "MR";
    spec.intercepts = {0};
    spec.mr_acquisition_type = "3D";
  }
  test::write_fixture(spec, dir.path);
  const std::string cmd =
      "dcm2niix -z n -f ref -o '" + out.path.string() + "' '" + dir.path.string() + "' > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const Volume<float> ref = read_nifti(out.path / "ref.nii");
  const DicomSeries ours = read_series(dir.path);
  test::expect_same_world_grid(ours.image, ref);
  EXPECT_EQ(dcm2niix_rotates(ours.plan), which >= 4);
  write_nifti(test::dcm2niix_layout(ours), out.path / "ours.nii", NiftiLayout::Native);
  const Volume<float> written = read_nifti(out.path / "ours.nii");
  ASSERT_EQ(written.geom.size, ref.geom.size) << "dcm2niix chose another axis order";
  EXPECT_LT(test::affine_diff(written.geom, ref.geom), 1e-3);
  EXPECT_EQ(written.data, ref.data);
}

INSTANTIATE_TEST_SUITE_P(Planes, Dcm2niix, ::testing::Values(0, 1, 2, 3, 4, 5, 6));

// A gantry-tilted CT: dcm2niix writes its tilt-corrected image as ref_Tilt_1.nii. aneura's grid has
// the same size and axes and the same voxels, up to dcm2niix's rounding to stored integers. (The
// origin differs: dcm2niix 1.0.20220720 places this image 3.5-3.9 mm from where its pixels were
// acquired; the DicomSeries test checks aneura's against the series' own positions.)
TEST(Dcm2niixTilt, SameGridAndVoxelsAsTheTiltCorrectedImage) {
  if (std::system("command -v dcm2niix > /dev/null 2>&1") != 0) GTEST_SKIP() << "dcm2niix not installed";
  for (const double degrees : {18.5, -18.5}) {
    SCOPED_TRACE(degrees);
    test::TempDir dir("d2n_tilt_in"), out("d2n_tilt_out");
    test::TiltedSeries(degrees).write(dir.path);
    const std::string cmd =
        "dcm2niix -z n -f ref -o '" + out.path.string() + "' '" + dir.path.string() + "' > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const Volume<float> ref = read_nifti(out.path / "ref_Tilt_1.nii");
    const Volume<float> ours = to_dcm2niix_layout(read_series(dir.path).image);
    ASSERT_EQ(ours.geom.size, ref.geom.size);
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(ours.geom.direction[r][c] * ours.geom.spacing[c], ref.geom.direction[r][c] * ref.geom.spacing[c],
                    1e-4);
    // Where both hold data they agree; they differ only at the edge of what a slice covers (dcm2niix
    // keeps a partial row on one side only, aneura half a pixel on each side).
    const float fill_ours = *std::min_element(ours.data.begin(), ours.data.end());
    const float fill_ref = *std::min_element(ref.data.begin(), ref.data.end());
    EXPECT_FLOAT_EQ(fill_ours, fill_ref);
    size_t edge = 0;
    for (size_t i = 0; i < ours.data.size(); ++i) {
      if (std::fabs(ours.data[i] - ref.data[i]) <= 0.5) continue;
      ++edge;
      EXPECT_TRUE(ours.data[i] == fill_ours || ref.data[i] == fill_ref)
          << i << ": " << ours.data[i] << " vs " << ref.data[i];
    }
    EXPECT_LE(edge, size_t(2 * ours.geom.size[0] * ours.geom.size[2]));  // at most a row per slice and side
  }
}

}  // namespace
}  // namespace aneura
