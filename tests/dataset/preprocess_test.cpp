// Preprocessing a synthetic dataset: harmonized cases whose labels and points agree with the
// generator's truth.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "io/nifti.hpp"
#include "support/series_fixture.hpp"
#include "synth/anatomy.hpp"
#include "synth/dataset.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

TEST(Rsna, ParsesCoordinateStrings) {
  Localizer l;
  parse_coordinates("{'x': 258.36, 'y': 261.36}", l);
  EXPECT_DOUBLE_EQ(l.x, 258.36);
  EXPECT_DOUBLE_EQ(l.y, 261.36);
  EXPECT_EQ(l.frame, 0);
  parse_coordinates("{'x': 1.5, 'y': -2, 'f': 7}", l);
  EXPECT_EQ(l.frame, 7);
  EXPECT_THROW(parse_coordinates("{'x': 1.5}", l), Error);
  EXPECT_THROW(parse_coordinates("{'x': abc, 'y': 1}", l), Error);
}

TEST(Rsna, BadRowsNameFileAndLine) {
  test::TempDir dir("rsna_bad");
  std::ofstream(dir.path / "train.csv") << "SeriesInstanceUID,Modality\n../../etc,CTA\n";
  try {
    read_rsna(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::CorruptInput);  // a missing label column
  }
  std::ostringstream hdr;
  hdr << "SeriesInstanceUID,PatientAge,PatientSex,Modality";
  for (const auto& n : label_names()) hdr << "," << n;
  std::ofstream(dir.path / "train.csv") << hdr.str() << "\n../../etc,50,F,CTA,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n";
  try {
    read_rsna(dir.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a valid DICOM UID"), std::string::npos);
    EXPECT_EQ(e.where(), (dir.path / "train.csv").string() + ":2");
  }
}

class Preprocess : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("prep");
    synth::SynthOptions o;
    o.out = dir_->path / "data";
    o.n = 16;
    o.size = synth::Size::Tiny;
    o.seed = 21;
    o.positive_fraction = 0.7;
    o.segmentation_fraction = 0.5;
    synth::write_dataset(o);
    truth_ = read_json(o.out / "truth.json");
    CaseOptions co;
    co.harmonize.spacing = {2, 2, 2};
    summary_ = preprocess_dataset(read_rsna(o.out), work(), co, 2);
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path data() { return dir_->path / "data"; }
  static fs::path work() { return dir_->path / "work"; }
  static test::TempDir* dir_;
  static json truth_;
  static PreprocessSummary summary_;
};
test::TempDir* Preprocess::dir_ = nullptr;
json Preprocess::truth_;
PreprocessSummary Preprocess::summary_;

TEST_F(Preprocess, EverySeriesBecomesACase) {
  EXPECT_EQ(summary_.ok, 16);
  EXPECT_EQ(summary_.failed, 0);
  for (const auto& t : truth_["series"]) {
    const std::string uid = t["series_uid"];
    const fs::path dir = work() / "cases" / uid;
    ASSERT_TRUE(fs::exists(dir / "case.json")) << uid;
    const Volume<float> img = read_nifti(dir / "image.nii");
    EXPECT_EQ(img.geom.orientation_code(), "RAS");
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(img.geom.spacing[a], 2.0, 1e-5);
    const json c = read_json(dir / "case.json");
    // a label volume only where a voxel is labelled: an aneurysm or a segmentation
    const bool labelled = !t["aneurysms"].empty() || t["segmentation"].get<bool>();
    EXPECT_EQ(fs::exists(dir / "labels.nii"), labelled) << uid;
    EXPECT_EQ(c["labels_file"]["file"], labelled ? json("labels.nii") : json(nullptr)) << uid;
    if (labelled) {
      const Volume<float> lab = read_nifti(dir / "labels.nii");
      EXPECT_EQ(lab.volumes, 2);
      EXPECT_TRUE(same_grid_points(img.geom, lab.geom, 1e-3));
    }
    EXPECT_EQ(c["modality"], t["modality"]);
    EXPECT_EQ(c["steps"].size(), 4u);
  }
}

TEST_F(Preprocess, PointsAndSpheresSitOnTheTruthAneurysms) {
  size_t checked = 0;
  for (const auto& t : truth_["series"]) {
    if (t["aneurysms"].empty()) continue;
    const std::string uid = t["series_uid"];
    const json c = read_json(work() / "cases" / uid / "case.json");
    const Volume<float> lab = read_nifti(work() / "cases" / uid / "labels.nii");
    ASSERT_EQ(c["points"].size(), t["aneurysms"].size()) << uid;
    const size_t n = static_cast<size_t>(lab.geom.voxel_count());
    for (const auto& a : t["aneurysms"]) {
      const Vec3 centre{a["centre_lps_mm"][0], a["centre_lps_mm"][1], a["centre_lps_mm"][2]};
      // the case point of the same location within one source voxel of the truth centre
      double best = 1e9;
      for (const auto& p : c["points"])
        if (p["column"] == a["column"])
          best = std::min(best, norm(Vec3{p["world_lps_mm"][0], p["world_lps_mm"][1], p["world_lps_mm"][2]} - centre));
      EXPECT_LE(best, t["slice_spacing_mm"].get<double>()) << uid;
      // and the aneurysm label volume marks the truth centre with column + 1
      const Vec3 ijk = lab.geom.world_to_index(centre);
      const int64_t i = std::lround(ijk[0]), j = std::lround(ijk[1]), k = std::lround(ijk[2]);
      ASSERT_TRUE(i >= 0 && j >= 0 && k >= 0 && i < lab.geom.size[0] && j < lab.geom.size[1] && k < lab.geom.size[2]);
      const int v = static_cast<int>(lab.data[n + lab.offset(i, j, k)]);
      EXPECT_GT(v, 0) << uid;
      ++checked;
    }
  }
  EXPECT_GT(checked, 5u);
}

TEST_F(Preprocess, VesselLabelsComeFromTheSegmentations) {
  size_t with = 0;
  for (const auto& t : truth_["series"]) {
    const std::string uid = t["series_uid"];
    const json c = read_json(work() / "cases" / uid / "case.json");
    size_t labelled = 0;
    if (fs::exists(work() / "cases" / uid / "labels.nii")) {  // (none: no labelled voxel)
      const Volume<float> lab = read_nifti(work() / "cases" / uid / "labels.nii");
      const size_t n = static_cast<size_t>(lab.geom.voxel_count());
      for (size_t i = 0; i < n; ++i) labelled += lab.data[i] > 0;
    }
    if (t["segmentation"].get<bool>()) {
      EXPECT_EQ(c["labels_file"]["vessel_source"], uid + "_cowseg.nii");
      ++with;
    } else {
      EXPECT_EQ(c["labels_file"]["vessel_source"], "none");
      EXPECT_EQ(labelled, 0u);
    }
  }
  EXPECT_GT(with, 0u);
}

TEST_F(Preprocess, ResumesAndRecordsFailuresWithoutStopping) {
  // A second run skips every finished case.
  CaseOptions co;
  co.harmonize.spacing = {2, 2, 2};
  RsnaDataset d = read_rsna(data());
  PreprocessSummary again = preprocess_dataset(d, work(), co, 2);
  EXPECT_EQ(again.skipped, 16);
  EXPECT_EQ(again.ok, 0);

  // A broken series (no DICOM) and a segmentation on the wrong grid, in a fresh work folder.
  test::TempDir w2("prep_w2");
  const std::string broken = "1.2.3.4.5";
  fs::create_directories(data() / "series" / broken);
  std::ofstream(data() / "series" / broken / "junk.dcm") << "not dicom";
  std::string seg_uid;
  for (const auto& t : truth_["series"])
    if (t["segmentation"].get<bool>()) seg_uid = t["series_uid"];
  ASSERT_FALSE(seg_uid.empty());
  const fs::path cow = data() / "segmentations" / (seg_uid + "_cowseg.nii");
  Volume<float> wrong = read_nifti(cow);
  wrong.geom.origin[0] += 25;  // shifted: no longer on the series' grid
  write_nifti(wrong, cow, NiftiLayout::Native);

  d = read_rsna(data());
  const PreprocessSummary s = preprocess_dataset(d, w2.path, co, 2);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.ok, 16);
  std::ifstream manifest(w2.path / "manifest.jsonl");
  bool found = false;
  for (std::string line; std::getline(manifest, line);) {
    const json j = json::parse(line);
    if (j["id"] == broken) {
      found = true;
      EXPECT_EQ(j["status"], "failed");
      EXPECT_NE(j["reason"].get<std::string>().find("no DICOM"), std::string::npos);
    }
  }
  EXPECT_TRUE(found);
  const json c = read_json(w2.path / "cases" / seg_uid / "case.json");
  EXPECT_NE(c["labels_file"]["vessel_source"].get<std::string>().find("does not match"), std::string::npos);
  EXPECT_FALSE(fs::exists(w2.path / "cases" / broken));
  fs::remove_all(data() / "series" / broken);
}

}  // namespace
}  // namespace aneura

#include "dataset/sources.hpp"
#include "io/png.hpp"
#include "plan/fingerprint.hpp"

namespace aneura {
namespace {

// A BIDS suffix that names an RSNA modality becomes the case's modality (so a configuration that
// learns from some modalities pre-trains on those); others keep the DICOM family.
TEST(Sources, BidsSuffixesNameTheModality) {
  test::TempDir dir("bids_modality"), work("bids_modality_work");
  Geometry g;
  g.size = {20, 20, 12};
  g.spacing = {1.5, 1.5, 2.0};
  Volume<float> head(g);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) head.at(i, j, k) = std::hypot(i - 10.0, j - 10.0) < 8 ? 300.f + j : 0.f;
  const std::map<std::string, std::string> expected = {{"sub-01_angio", "MRA"},
                                                       {"sub-01_T2w", "MRI T2"},
                                                       {"sub-01_ce-gd_T1w", "MRI T1post"},
                                                       {"sub-01_T1w", "MR"},
                                                       {"sub-01_FLAIR", "MR"}};
  fs::create_directories(dir.path / "sub-01" / "anat");
  for (const auto& [stem, modality] : expected)
    write_nifti(head, dir.path / "sub-01" / "anat" / (stem + ".nii.gz"), NiftiLayout::Native);
  CaseOptions o;
  o.harmonize.spacing = {3, 3, 3};
  const auto jobs = nifti_jobs(dir.path, work.path, o);
  ASSERT_EQ(jobs.size(), expected.size());
  EXPECT_EQ(run_case_jobs(jobs, work.path, 2, 0).ok, static_cast<int>(expected.size()));
  for (const auto& [stem, modality] : expected) {
    const json c = read_json(work.path / "cases" / ("nii-sub-01_anat_" + stem) / "case.json");
    EXPECT_EQ(c["modality"], modality) << stem;
    EXPECT_EQ(c["dicom_modality"], "MR") << stem;
  }
}

TEST(Sources, BidsNiftiFolderBecomesUnlabelledCases) {
  test::TempDir dir("bids"), work("bids_work");
  Geometry g;
  g.size = {30, 34, 20};
  g.spacing = {1.2, 1.2, 2.0};
  g.origin = {-18, -20, -20};
  Volume<float> mr(g), ct(g);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) {
        const bool head = std::hypot(i - 15.0, j - 17.0) < 12;
        mr.at(i, j, k) = head ? 400.f + i : 0.f;
        ct.at(i, j, k) = head ? 40.f : -1000.f;
      }
  fs::create_directories(dir.path / "sub-01" / "anat");
  fs::create_directories(dir.path / "sub-02" / "ses-1" / "ct");
  write_nifti(mr, dir.path / "sub-01" / "anat" / "sub-01_T1w.nii.gz", NiftiLayout::Native);
  write_nifti(ct, dir.path / "sub-02" / "ses-1" / "ct" / "sub-02_ses-1_ct.nii", NiftiLayout::Native);
  // OpenMind's masks beside sub-01's image: an anatomy mask holding only the head's half i < 15
  // (the crop and head mask follow it), and an empty deface mask (not an image either). The
  // corpus's openneuro_metadata.csv names another deface mask for it (the head's rows j >= 25, the
  // voxels a defacing removed), its modality and its quality; sub-02 is not listed.
  const fs::path masks = dir.path / "sub-01" / "anat" / "sub-01_T1w__Data";
  fs::create_directories(masks);
  fs::create_directories(dir.path / "anon");
  Volume<uint8_t> anatomy(g), deface(g), removed(g);
  for (int64_t k = 0; k < g.size[2]; ++k)
    for (int64_t j = 0; j < g.size[1]; ++j)
      for (int64_t i = 0; i < g.size[0]; ++i) {
        anatomy.at(i, j, k) = mr.at(i, j, k) > 0 && i < 15;
        removed.at(i, j, k) = mr.at(i, j, k) > 0 && j >= 25;
      }
  write_nifti(anatomy, masks / "fb_mask.nii.gz", NiftiLayout::Native);
  write_nifti(deface, masks / "deface_mask.nii.gz", NiftiLayout::Native);
  write_nifti(removed, dir.path / "anon" / "sub-01_anon.nii.gz", NiftiLayout::Native);
  std::ofstream(dir.path / "openneuro_metadata.csv")
      << "dataset_id,image_path,anat_mask_path,anon_mask_path,modality,image_quality_score,age\n"
      << "ds000001," << dir.path.filename().string()
      << "/sub-01/anat/sub-01_T1w.nii.gz,sub-01/anat/sub-01_T1w__Data/fb_mask.nii.gz,anon/sub-01_anon.nii.gz,T1w,2.5,"
         "31\n"
      << "ds000002,sub-02/ses-1/ct/sub-02_ses-1_ct.nii,../outside/fb.nii.gz,/etc/deface.nii.gz,ct,,\n";
  std::ofstream(dir.path / "dataset_description.json") << "{}";
  ASSERT_EQ(detect_source(dir.path), SourceKind::Nifti);
  CaseOptions o;
  o.harmonize.spacing = {2, 2, 2};
  const auto jobs = nifti_jobs(dir.path, work.path, o);
  ASSERT_EQ(jobs.size(), 2u);
  const PreprocessSummary s = run_case_jobs(jobs, work.path, 2, 0);
  EXPECT_EQ(s.ok, 2);
  const json c1 = read_json(work.path / "cases" / "nii-sub-01_anat_sub-01_T1w" / "case.json");
  EXPECT_EQ(c1["dicom_modality"], "MR");
  EXPECT_EQ(c1["labelled"], false);
  EXPECT_EQ(c1["source"]["anatomy_mask"], (masks / "fb_mask.nii.gz").string());
  const json c2 = read_json(work.path / "cases" / "nii-sub-02_ses-1_ct_sub-02_ses-1_ct" / "case.json");
  EXPECT_EQ(c2["dicom_modality"], "CT");
  EXPECT_EQ(c1["modality"], "MR");  // a T1w without contrast: no RSNA modality
  EXPECT_EQ(c2["modality"], "CT");
  const Volume<float> img = read_nifti(work.path / "cases" / "nii-sub-01_anat_sub-01_T1w" / "image.nii");
  for (int a = 0; a < 3; ++a) EXPECT_NEAR(img.geom.spacing[a], 2.0, 1e-5);
  EXPECT_EQ(img.geom.orientation_code(), "RAS");
  // cropped to the anatomy mask's box (i 3..14, + 10 mm: 0..23) instead of the whole head (0..29)
  const Volume<float> whole = read_nifti(work.path / "cases" / "nii-sub-02_ses-1_ct_sub-02_ses-1_ct" / "image.nii");
  EXPECT_EQ(whole.geom.size[0], 18);
  EXPECT_EQ(img.geom.size[0], 14);
  EXPECT_EQ(c1["steps"][0]["foreground"], "anatomy mask");
  // the metadata's deface mask, kept on the case's grid: its voxels and only those
  EXPECT_EQ(c1["source"]["deface_mask"], (dir.path / "anon" / "sub-01_anon.nii.gz").string());
  EXPECT_EQ(c1["source"]["openneuro_metadata"]["image_quality_score"], 2.5);
  EXPECT_EQ(c1["source"]["openneuro_metadata"]["dataset_id"], "ds000001");
  EXPECT_EQ(c1["source"]["bids_suffix"], "T1w");
  ASSERT_EQ(c1["deface_file"], "deface.nii.gz");
  const Volume<float> d = read_nifti(work.path / "cases" / "nii-sub-01_anat_sub-01_T1w" / "deface.nii.gz");
  ASSERT_EQ(d.geom.size, img.geom.size);
  size_t marked = 0;
  for (int64_t k = 0; k < d.geom.size[2]; ++k)
    for (int64_t j = 0; j < d.geom.size[1]; ++j)
      for (int64_t i = 0; i < d.geom.size[0]; ++i) {
        // the nearest source voxel's mark (voxels halfway between two source voxels are skipped)
        const Vec3 src = g.world_to_index(d.geom.index_to_world({double(i), double(j), double(k)}));
        bool clear = true;
        int64_t n[3];
        for (int a = 0; a < 3; ++a) {
          n[a] = std::llround(src[a]);
          clear = clear && n[a] >= 0 && n[a] < g.size[a] && std::fabs(src[a] - std::floor(src[a]) - 0.5) > 0.01;
        }
        if (clear) EXPECT_EQ(d.at(i, j, k), removed.at(n[0], n[1], n[2])) << i << " " << j << " " << k;
        marked += d.at(i, j, k) > 0;
      }
  EXPECT_GT(marked, 0u);
  EXPECT_TRUE(c2["deface_file"].is_null());
  // sub-02's row names masks outside the corpus: not read, and said so in its case.json
  EXPECT_FALSE(c2["source"].contains("anatomy_mask"));
  const std::string warned = c2["warnings"].dump();
  EXPECT_NE(warned.find("names a mask outside the corpus (../outside/fb.nii.gz)"), std::string::npos) << warned;
  EXPECT_NE(warned.find("names a mask outside the corpus (/etc/deface.nii.gz)"), std::string::npos) << warned;
  // a quality limit below sub-01's 2.5 leaves it out (sub-02, unlisted, stays); at 2.5 it stays
  size_t left_out = 0;
  o.max_image_quality_score = 2;
  const auto strict = nifti_jobs(dir.path, work.path, o, &left_out);
  ASSERT_EQ(strict.size(), 1u);
  EXPECT_EQ(strict[0].id, "nii-sub-02_ses-1_ct_sub-02_ses-1_ct");
  EXPECT_EQ(left_out, 1u);
  o.max_image_quality_score = 2.5;
  EXPECT_EQ(nifti_jobs(dir.path, work.path, o).size(), 2u);
  // a cache of NIfTI cases alone can be fingerprinted (and so planned and pre-trained on)
  const Fingerprint f = compute_fingerprint(work.path);
  ASSERT_EQ(f.cases.size(), 2u);
  for (const auto& c : f.cases) EXPECT_EQ(c.shape_source, (std::array<int64_t, 3>{30, 34, 20}));
}

TEST(Sources, DeepLesionPngSlicesBuildAVolumeInHu) {
  test::TempDir dir("dl"), work("dl_work");
  const std::string series = "000001_01_01";
  fs::create_directories(dir.path / "Images_png" / series);
  Gray16Image img;
  img.width = 40;
  img.height = 36;
  for (int s = 100; s < 106; ++s) {
    img.pixels.assign(static_cast<size_t>(img.width) * img.height, 32768 - 1000);  // air
    for (int y = 8; y < 28; ++y)
      for (int x = 8; x < 32; ++x)
        img.pixels[static_cast<size_t>(y) * img.width + x] = static_cast<uint16_t>(32768 + 40 + s);
    write_png(img, dir.path / "Images_png" / series / (std::to_string(s) + ".png"));
  }
  std::ofstream(dir.path / "DL_info.csv") << "File_name,Key_slice_index,Spacing_mm_px_,Image_size\n"
                                          << series << "_103.png,103,\"0.8, 0.8, 2.5\",\"512, 512\"\n";
  ASSERT_EQ(detect_source(dir.path), SourceKind::DeepLesion);
  const Volume<float> v = load_deeplesion_series(dir.path / "Images_png" / series, {0.8, 0.8, 2.5});
  EXPECT_EQ(v.geom.size, (std::array<int64_t, 3>{40, 36, 6}));
  EXPECT_FLOAT_EQ(v.at(0, 0, 0), -1000.f);       // pixel - 32768
  EXPECT_FLOAT_EQ(v.at(10, 10, 3), 40.f + 103);  // slice files in number order
  EXPECT_DOUBLE_EQ(v.geom.spacing[2], 2.5);
  EXPECT_EQ(v.geom.orientation_code(), "LPI");  // documented assumption
  CaseOptions o;
  o.harmonize.spacing = {1.6, 1.6, 2.5};
  const PreprocessSummary s = run_case_jobs(deeplesion_jobs(dir.path, work.path, o), work.path, 1, 1);
  EXPECT_EQ(s.ok, 1);
  EXPECT_TRUE(fs::exists(work.path / "cases" / ("dl-" + series) / "case.json"));
  EXPECT_TRUE(fs::exists(work.path / "qa" / ("dl-" + series + ".png")));
}

TEST(Sources, UnsafeNamesNeverBecomePaths) {
  test::TempDir dir("dl_bad"), work("dl_bad_w");
  fs::create_directories(dir.path / "Images_png");
  std::ofstream(dir.path / "DL_info.csv") << "File_name,Spacing_mm_px_\n../../evil_001.png,\"1, 1, 1\"\n";
  EXPECT_THROW(deeplesion_jobs(dir.path, work.path, CaseOptions{}), Error);
  EXPECT_THROW(case_dir(work.path, "../x"), Error);
  EXPECT_NO_THROW(case_dir(work.path, "nii-sub-01_T1w"));
}

}  // namespace
}  // namespace aneura

namespace aneura {
namespace {

TEST(NyulPreprocess, LandmarksAreFittedSavedAndReused) {
  test::TempDir dir("nyul"), work("nyul_w");
  synth::SynthOptions so;
  so.out = dir.path / "data";
  so.n = 12;
  so.size = synth::Size::Tiny;
  so.seed = 31;
  synth::write_dataset(so);
  const RsnaDataset d = read_rsna(so.out);
  CaseOptions o;
  o.harmonize.spacing = {3, 3, 3};
  o.harmonize.mr_normalization = "nyul";
  const NyulModel m = nyul_for_dataset(d, work.path, o);
  ASSERT_TRUE(fs::exists(work.path / "nyul.json"));
  ASSERT_EQ(m.standard.size(), m.percentiles.size());
  EXPECT_NEAR(m.standard.front(), 0, 1e-9);
  EXPECT_NEAR(m.standard.back(), 100, 1e-9);
  for (size_t k = 1; k < m.standard.size(); ++k) EXPECT_GE(m.standard[k], m.standard[k - 1]);
  const NyulModel again = nyul_for_dataset(d, work.path, o);  // loaded, not refitted
  EXPECT_EQ(again.standard, m.standard);
  o.harmonize.nyul = m;
  EXPECT_EQ(preprocess_dataset(d, work.path, o, 2).failed, 0);
  size_t mr = 0;
  for (const auto& e : d.series) {
    const json c = read_json(work.path / "cases" / e.uid / "case.json");
    if (c["dicom_modality"] != "MR") continue;
    EXPECT_EQ(c["steps"].back()["scheme"], "nyul");
    ++mr;
  }
  EXPECT_GT(mr, 0u);
}

// preprocess --brain-mask --mr-norm whitestripe: each case keeps its brain mask (brain.nii.gz, on
// the image's grid, against the generator's brain), MR cases are scaled by their white-matter
// stripe, and a case whose brain is not found says so in its warnings (the manifest's too).
TEST(BrainPreprocess, CasesKeepTheirBrainMaskAndMrIsScaledByItsStripe) {
  test::TempDir dir("brain"), work("brain_w");
  synth::SynthOptions so;
  so.out = dir.path / "data";
  so.n = 8;
  so.size = synth::Size::Small;
  so.seed = 41;
  synth::write_dataset(so);
  const json truth = read_json(so.out / "truth.json");
  CaseOptions o;
  o.harmonize.spacing = {2, 2, 2};
  o.harmonize.brain_mask = true;
  o.harmonize.mr_normalization = "whitestripe";
  o.qa_cases = 8;
  ASSERT_EQ(preprocess_dataset(read_rsna(so.out), work.path, o, 2).failed, 0);
  int found = 0;
  for (const auto& t : truth["series"]) {
    const std::string uid = t["series_uid"];
    const fs::path cd = work.path / "cases" / uid;
    const json c = read_json(cd / "case.json");
    EXPECT_TRUE(fs::exists(work.path / "qa" / (uid + ".png")));
    json brain_step;
    for (const auto& s : c["steps"])
      if (s["step"] == "brain_mask") brain_step = s;
    ASSERT_FALSE(brain_step.is_null()) << uid;
    if (!brain_step["found"].get<bool>()) {  // the fallback is on record
      EXPECT_EQ(c["brain_file"], json(nullptr));
      EXPECT_FALSE(fs::exists(cd / "brain.nii.gz"));
      bool warned = false;
      for (const auto& w : c["warnings"]) warned = warned || w.get<std::string>().find("no brain found") == 0;
      EXPECT_TRUE(warned) << uid;
      continue;
    }
    ++found;
    ASSERT_EQ(c["brain_file"], "brain.nii.gz");
    const Volume<float> brain = read_nifti(cd / "brain.nii.gz"), image = read_nifti(cd / "image.nii");
    ASSERT_TRUE(same_grid_points(brain.geom, image.geom, 1e-3));
    const synth::Subject head = synth::head_from_json(t["head"]);
    size_t both = 0, in_mask = 0, in_truth = 0;
    for (int64_t k = 0; k < brain.geom.size[2]; ++k)
      for (int64_t j = 0; j < brain.geom.size[1]; ++j)
        for (int64_t i = 0; i < brain.geom.size[0]; ++i) {
          const bool m = brain.at(i, j, k) > 0.5f;
          const bool b = synth::in_brain(head, brain.geom.index_to_world({double(i), double(j), double(k)}));
          both += m && b, in_mask += m, in_truth += b;
        }
    EXPECT_GE(2.0 * both / (in_mask + in_truth), 0.9) << uid << " " << t["modality"];
    if (c["dicom_modality"] == "MR") {
      const json& norm = c["steps"].back();
      EXPECT_EQ(norm["scheme"], "whitestripe");
      EXPECT_TRUE(norm["found"].get<bool>()) << uid << ": " << norm.value("note", "");
    }
  }
  EXPECT_GE(found, 6);
}

}  // namespace
}  // namespace aneura

namespace aneura {
namespace {

TEST(Exports, FitGridKeepsTheExtent) {
  Geometry g;
  g.size = {100, 80, 40};
  g.spacing = {1, 1.5, 2};
  g.origin = {-50, 10, 3};
  const Geometry f = fit_grid(g, {384, 384, 32});
  for (int a = 0; a < 3; ++a) {
    EXPECT_NEAR(f.spacing[a] * f.size[a], g.spacing[a] * g.size[a], 1e-9);
    // the outer edges coincide: first edge = origin - spacing/2 on both grids
    EXPECT_NEAR(f.origin[a] - f.spacing[a] / 2, g.origin[a] - g.spacing[a] / 2, 1e-9);
  }
}

TEST(Exports, Seed002ShapesAreWrittenBesideTheCase) {
  test::TempDir dir("exp"), work("exp_w");
  synth::SynthOptions so;
  so.out = dir.path / "data";
  so.n = 4;
  so.size = synth::Size::Tiny;
  so.seed = 41;
  so.positive_fraction = 1.0;
  synth::write_dataset(so);
  CaseOptions o;
  o.harmonize.spacing = {3, 3, 3};
  o.exports = {true, true, true};
  const RsnaDataset d = read_rsna(so.out);
  ASSERT_EQ(preprocess_dataset(d, work.path, o, 2).ok, 4);
  size_t positives = 0;
  for (const auto& e : d.series) {
    const fs::path c = work.path / "cases" / e.uid;
    const Volume<float> v32 = read_nifti(c / "volume_32x384x384.nii");
    EXPECT_EQ(v32.geom.size, (std::array<int64_t, 3>{384, 384, 32}));
    const Volume<float> s224 = read_nifti(c / "slices_224.nii");
    const Volume<float> img = read_nifti(c / "image.nii");
    EXPECT_EQ(s224.geom.size[0], 224);
    EXPECT_EQ(s224.geom.size[2], img.geom.size[2]);
    const json w = read_json(c / "windows_2p5d.json");
    EXPECT_EQ(w["window"], 5);
    positives += w["positive_centres"].size();
    EXPECT_TRUE(fs::exists(c / "png" / "0.png"));
    EXPECT_TRUE(fs::exists(c / "png" / (std::to_string(img.geom.size[2] - 1) + ".png")));
  }
  EXPECT_GT(positives, 0u);
}

}  // namespace
}  // namespace aneura
