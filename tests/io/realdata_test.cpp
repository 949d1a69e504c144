// Real scanner files (../shared/realdata): every series converts; voxels and geometry equal the
// dcm2niix reference NIfTI; lossless codec variants decode to exactly the uncompressed pixels.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"
#include "support/compare.hpp"

namespace fs = std::filesystem;

namespace aneura {
namespace {

const fs::path kReal = ANEURA_REALDATA_DIR;

#define REQUIRE_REALDATA() \
  if (!fs::exists(kReal)) GTEST_SKIP() << "no realdata at " << kReal

struct RefCase {
  const char* name;
  const char* input;  // file or folder under realdata
  const char* ref;    // NIfTI under realdata
  int echo;
};

class RealData : public ::testing::TestWithParam<RefCase> {};

TEST_P(RealData, MatchesDcm2niixReference) {
  REQUIRE_REALDATA();
  const RefCase& c = GetParam();
  SeriesOptions o;
  o.echo = c.echo;
  const DicomSeries s = read_series(kReal / c.input, o);
  const Volume<float> ref = read_nifti(kReal / c.ref);
  test::expect_same_world_grid(s.image, ref);
  // In dcm2niix's layout (3D acquisitions turned as dcm2niix turns them) the voxel order and the
  // affine are dcm2niix's too.
  const Volume<float> ours = test::dcm2niix_layout(s);
  ASSERT_EQ(ours.geom.size, ref.geom.size);
  EXPECT_LT(test::affine_diff(ours.geom, ref.geom), 1e-3);
  EXPECT_EQ(ours.data, ref.data);
}

std::vector<RefCase> ref_cases() {
  std::vector<RefCase> v;
  static const char* ts[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9"};
  static std::string names[9], ins[9], refs[9];
  for (int i = 0; i < 9; ++i) {
    names[i] = std::string("ts_") + ts[i];
    ins[i] = std::string("dcm_qa_ts/In/") + ts[i] + ".dcm";
    refs[i] = std::string("dcm_qa_ts/Ref/") + ts[i] + ".nii";
    v.push_back({names[i].c_str(), ins[i].c_str(), refs[i].c_str(), 0});
  }
  v.push_back({"bit12_unsigned", "dcm_qa_12bit/In/12bitUnsigned.dcm", "dcm_qa_12bit/Ref/2.nii", 0});
  v.push_back({"bit12_unsigned_junk", "dcm_qa_12bit/In/12bitUnsigned_0x0F0F.dcm", "dcm_qa_12bit/Ref/3.nii", 0});
  v.push_back({"bit12_signed_junk", "dcm_qa_12bit/In/12bitSigned_0x0F0F.dcm", "dcm_qa_12bit/Ref/4.nii", 0});
  v.push_back({"xa30_enhanced_5", "dcm_qa_xa30/In/5_anat-T1w_acq-tfl", "dcm_qa_xa30/Ref/5_anat-T1w_acq-tfl.nii", 0});
  v.push_back({"xa30_enhanced_6", "dcm_qa_xa30/In/6_anat-T1w_acq-tfl", "dcm_qa_xa30/Ref/6_anat-T1w_acq-tfl.nii", 0});
  v.push_back(
      {"pdt2_echo1", "dcm_qa_pdt2/In/Siemens/VE11", "dcm_qa_pdt2/Ref/Siemens_pd+t2_tse_sag_ISO_1.8mm_3_e1.nii", 1});
  v.push_back(
      {"pdt2_echo2", "dcm_qa_pdt2/In/Siemens/VE11", "dcm_qa_pdt2/Ref/Siemens_pd+t2_tse_sag_ISO_1.8mm_3_e2.nii", 2});
  v.push_back({"siemens_xa10_4d", "dcm_qa_enh/In/Siemens/XA10", "dcm_qa_enh/Ref/Siemens_REST1_w_SMS_PF7-8_6.nii", 0});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Dcm2niixRef, RealData, ::testing::ValuesIn(ref_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// Philips enhanced field map: magnitude and field-map frames split by frame type. dcm2niix scales
// Philips data with the private MRScaleSlope (2005,100E); aneura applies the standard
// RescaleSlope only, so the reference differs by one global factor and nothing else.
TEST(RealDataPhilips, EnhancedMagnitudeMatchesUpToPhilipsPrivateScale) {
  REQUIRE_REALDATA();
  const DicomSeries s = read_series(kReal / "dcm_qa_enh/In/Philips/IM_0027_fMAP.dcm");
  ASSERT_FALSE(s.plan.dropped.empty());  // the field-map frames
  Volume<float> ref = read_nifti(kReal / "dcm_qa_enh/Ref/Philips_WIP_B0_NS_801_e1.nii");
  double so = 0, sr = 0;
  for (float v : s.image.data) so += v;
  for (float v : ref.data) sr += v;
  ASSERT_GT(sr, 0);
  for (float& v : ref.data) v = static_cast<float>(std::round(v * so / sr * 1000) / 1000);
  Volume<float> ours = s.image;
  for (float& v : ours.data) v = static_cast<float>(std::round(v * 1000) / 1000);
  test::expect_same_world_grid(ours, ref, 0.01);
}

// Lossless variants of one image must decode to the same values as the uncompressed file.
void expect_same_pixels(const fs::path& a, const fs::path& b) {
  const DicomSeries x = read_series(a), y = read_series(b);
  ASSERT_EQ(x.image.data.size(), y.image.data.size()) << b;
  size_t diff = 0;
  for (size_t i = 0; i < x.image.data.size(); ++i) diff += x.image.data[i] != y.image.data[i];
  EXPECT_EQ(diff, 0u) << a << " vs " << b;
}

TEST(RealDataCodecs, PydicomEnhancedMrVariants) {
  REQUIRE_REALDATA();
  const fs::path d = kReal / "pydicom-data/data_store/data";
  for (const char* v : {"emri_small_big_endian.dcm", "emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm",
                        "emri_small_jpeg_ls_lossless.dcm"})
    expect_same_pixels(d / "emri_small.dcm", d / v);
  expect_same_pixels(d / "693_UNCR.dcm", d / "693_J2KR.dcm");
  const DicomSeries ect = read_series(d / "eCT_Supplemental.dcm");
  EXPECT_EQ(ect.image.geom.size[2], 2);
  EXPECT_NEAR(ect.image.geom.spacing[2], 10.0, 1e-6);  // frames at z -159 and -149
}

TEST(RealDataCodecs, Wg04LosslessVariants) {
  REQUIRE_REALDATA();
  const fs::path d = kReal / "dicom-test-files/data/WG04";
  for (const char* img : {"CT1", "CT2", "MR1", "MR2", "MR3", "MR4"})
    for (const char* codec : {"RLE", "JPLL", "JLSL", "J2KR"}) {
      const fs::path v = d / codec / (std::string(img) + "_" + codec);
      if (!fs::exists(v)) continue;
      // MR1_JLSL (16-bit signed JPEG-LS) is rejected by Debian's GDCM/CharLS and decoded through
      // DCMTK's dcmdjpls (io/external_decoder): it must still equal the uncompressed file.
      expect_same_pixels(d / "REF" / (std::string(img) + "_UNC.dcm"), v);
    }
}

TEST(RealDataCodecs, Wg04LossyVariantsDecodeClose) {
  REQUIRE_REALDATA();
  const fs::path d = kReal / "dicom-test-files/data/WG04";
  for (const char* img : {"MR1", "MR2", "MR3", "MR4"})
    for (const char* codec : {"JPLY", "J2KI", "JLSN"}) {
      const fs::path v = d / codec / (std::string(img) + "_" + codec);
      if (!fs::exists(v)) continue;
      const DicomSeries x = read_series(d / "REF" / (std::string(img) + "_UNC.dcm")), y = read_series(v);
      ASSERT_EQ(x.image.data.size(), y.image.data.size()) << v;
      double err = 0, range = 1;
      for (size_t i = 0; i < x.image.data.size(); ++i) {
        err += std::fabs(x.image.data[i] - y.image.data[i]);
        range = std::max<double>(range, std::fabs(x.image.data[i]));
      }
      EXPECT_LT(err / x.image.data.size(), 0.05 * range) << v;
    }
}

TEST(RealDataCodecs, PydicomSmallFiles) {
  REQUIRE_REALDATA();
  const fs::path d = kReal / "dicom-test-files/data/pydicom";
  for (const char* v : {"MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                        "MR_small_implicit.dcm", "MR_small_jpeg_ls_lossless.dcm"})
    expect_same_pixels(d / "MR_small.dcm", d / v);
  const DicomSeries ct = read_series(d / "CT_small.dcm");
  EXPECT_EQ(ct.plan.modality, "CT");
  EXPECT_EQ(ct.image.geom.size[0], 128);
}

}  // namespace
}  // namespace aneura
