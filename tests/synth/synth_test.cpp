// The synthetic dataset against its own truth, read back with the project's DICOM reader.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/labels.hpp"
#include "io/dicom_series.hpp"
#include "io/nifti.hpp"
#include "support/compare.hpp"
#include "support/series_fixture.hpp"
#include "synth/anatomy.hpp"
#include "synth/dataset.hpp"
#include "synth/series.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Splits one CSV line (fields may be double-quoted).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"')
        out.back() += '"', ++i;
      else
        quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

std::vector<std::vector<std::string>> csv_rows(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(csv_fields(line));
  return rows;
}

class SynthTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("synth");
    synth::SynthOptions o;
    o.out = dir_->path / "data";
    o.n = 40;
    o.size = synth::Size::Tiny;
    o.seed = 11;
    o.positive_fraction = 0.6;
    o.segmentation_fraction = 0.3;
    synth::write_dataset(o);
    truth_ = json::parse(slurp(o.out / "truth.json"));
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path data() { return dir_->path / "data"; }
  static test::TempDir* dir_;
  static json truth_;
};
test::TempDir* SynthTiny::dir_ = nullptr;
json SynthTiny::truth_;

TEST_F(SynthTiny, LayoutIsTheRsnaLayout) {
  EXPECT_TRUE(fs::is_regular_file(data() / "train.csv"));
  EXPECT_TRUE(fs::is_regular_file(data() / "train_localizers.csv"));
  const auto rows = csv_rows(data() / "train.csv");
  ASSERT_EQ(rows.size(), 41u);
  ASSERT_EQ(rows[0].size(), 18u);
  EXPECT_EQ(rows[0][0], "SeriesInstanceUID");
  EXPECT_EQ(rows[0][3], "Modality");
  for (int c = 0; c < kNumLabels; ++c) EXPECT_EQ(rows[0][4 + c], label_names()[c]);
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::string& uid = rows[r][0];
    EXPECT_TRUE(fs::is_directory(data() / "series" / uid)) << uid;
    const std::set<std::string> modalities{"CTA", "MRA", "MRI T2", "MRI T1post"};
    EXPECT_TRUE(modalities.count(rows[r][3])) << rows[r][3];
    for (const auto& e : fs::directory_iterator(data() / "series" / uid)) EXPECT_EQ(e.path().extension(), ".dcm");
  }
  for (const auto& e : fs::directory_iterator(data() / "segmentations")) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name.size() > 4 && name.compare(name.size() - 4, 4, ".nii") == 0) << name;
  }
  EXPECT_FALSE(fs::exists(dir_->path / ".data.partial"));
}

TEST_F(SynthTiny, TrainCsvAgreesWithTruth) {
  const auto rows = csv_rows(data() / "train.csv");
  int positives = 0;
  for (size_t r = 1; r < rows.size(); ++r) {
    const json& t = truth_["series"][r - 1];
    ASSERT_EQ(t["series_uid"], rows[r][0]);
    EXPECT_EQ(t["modality"], rows[r][3]);
    std::array<int, kNumLabels> expect{};
    for (const auto& a : t["aneurysms"]) expect[a["column"].get<int>()] = 1;
    expect[kPresentColumn] = t["aneurysms"].empty() ? 0 : 1;
    positives += expect[kPresentColumn];
    for (int c = 0; c < kNumLabels; ++c)
      EXPECT_EQ(std::stoi(rows[r][4 + c]), expect[c]) << rows[r][0] << " column " << c;
  }
  EXPECT_GT(positives, 10);
  EXPECT_LT(positives, 40);
}

TEST_F(SynthTiny, EveryLocalizerLandsOnItsAneurysm) {
  const auto rows = csv_rows(data() / "train_localizers.csv");
  ASSERT_GT(rows.size(), 1u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"SeriesInstanceUID", "SOPInstanceUID", "coordinates", "location"}));
  size_t checked = 0;
  for (const auto& t : truth_["series"]) {
    if (t["aneurysms"].empty()) continue;
    const std::string uid = t["series_uid"];
    const DicomSeries s = read_series(data() / "series" / uid);
    // The volume has the designed geometry.
    EXPECT_EQ(s.image.geom.size[0], t["matrix"].get<int>());
    EXPECT_NEAR(s.image.geom.spacing[0], t["pixel_spacing_mm"].get<double>(), 1e-4);
    EXPECT_NEAR(s.image.geom.spacing[2], t["slice_spacing_mm"].get<double>(), 1e-3);
    EXPECT_EQ(s.plan.multiframe, t["multiframe"].get<bool>());
    const double voxel = std::max(t["slice_spacing_mm"].get<double>(), t["pixel_spacing_mm"].get<double>());
    for (const auto& row : rows) {
      if (row[0] != uid) continue;
      // parse "{'x': 1.23, 'y': 4.56[, 'f': 7]}" as the RSNA users do
      double x = 0, y = 0;
      int f = 0;
      const std::string& c = row[2];
      ASSERT_EQ(std::sscanf(c.c_str(), "{'x': %lf, 'y': %lf", &x, &y), 2) << c;
      if (c.find("'f'") != std::string::npos) {
        ASSERT_EQ(std::sscanf(c.c_str() + c.find("'f'"), "'f': %d", &f), 1);
      }
      const Vec3 w = localizer_to_world(s.plan, row[1], x, y, f);
      const auto col = label_index(row[3]);
      ASSERT_TRUE(col.has_value()) << row[3];
      double best = 1e9;
      for (const auto& a : t["aneurysms"])
        if (a["column"] == *col) {
          const Vec3 centre{a["centre_lps_mm"][0], a["centre_lps_mm"][1], a["centre_lps_mm"][2]};
          best = std::min(best, norm(w - centre));
        }
      EXPECT_LE(best, voxel) << uid << " " << c;
      // and the point lies inside the volume
      const Vec3 ijk = s.image.geom.world_to_index(w);
      for (int a = 0; a < 3; ++a) {
        EXPECT_GT(ijk[a], -0.5);
        EXPECT_LT(ijk[a], s.image.geom.size[a] - 0.5);
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 10u);
}

TEST_F(SynthTiny, CowsegLabelsLieOnTheirSideOfTheHead) {
  size_t seen = 0;
  for (const auto& t : truth_["series"]) {
    if (!t["segmentation"].get<bool>()) continue;
    const std::string uid = t["series_uid"];
    const Volume<float> image = read_nifti(data() / "segmentations" / (uid + ".nii"));
    const Volume<float> seg = read_nifti(data() / "segmentations" / (uid + "_cowseg.nii"));
    ASSERT_EQ(seg.geom.size, image.geom.size);
    const Vec3 centre{t["head_centre_lps_mm"][0], t["head_centre_lps_mm"][1], t["head_centre_lps_mm"][2]};
    double left_x = 0, right_x = 0;
    size_t left_n = 0, right_n = 0;
    const auto& n = seg.geom.size;
    for (int64_t k = 0; k < n[2]; ++k)
      for (int64_t j = 0; j < n[1]; ++j)
        for (int64_t i = 0; i < n[0]; ++i) {
          const int v = static_cast<int>(seg.at(i, j, k));
          ASSERT_GE(v, 0);
          ASSERT_LE(v, 13);
          if (v == 0 || v == 1 || v == 2 || v == 13) continue;
          const double x = seg.geom.index_to_world({double(i), double(j), double(k)})[0] - centre[0];
          // even cowseg values are Left structures (LPS x > 0), odd ones Right
          if (v % 2 == 0)
            left_x += x, ++left_n;
          else
            right_x += x, ++right_n;
        }
    if (left_n == 0 || right_n == 0) continue;  // slab or coarse grid missed the vessels
    EXPECT_GT(left_x / left_n, 5.0) << uid;
    EXPECT_LT(right_x / right_n, -5.0) << uid;
    ++seen;
  }
  EXPECT_GT(seen, 0u);
}

TEST(Synth, SameSeedSameBytesWhateverTheThreads) {
  test::TempDir dir("synth_det");
  synth::SynthOptions o;
  o.n = 6;
  o.size = synth::Size::Tiny;
  o.seed = 99;
  o.out = dir.path / "a";
  o.threads = 1;
  synth::write_dataset(o);
  o.out = dir.path / "b";
  o.threads = 2;
  synth::write_dataset(o);
  for (const char* f : {"train.csv", "train_localizers.csv", "truth.json"})
    EXPECT_EQ(slurp(dir.path / "a" / f), slurp(dir.path / "b" / f)) << f;
  for (const auto& e : fs::recursive_directory_iterator(dir.path / "a" / "series"))
    if (e.is_regular_file()) {
      ASSERT_EQ(slurp(e.path()), slurp(dir.path / "b" / fs::relative(e.path(), dir.path / "a"))) << e.path();
    }
  o.out = dir.path / "c";
  o.seed = 100;
  synth::write_dataset(o);
  EXPECT_NE(slurp(dir.path / "a" / "train.csv"), slurp(dir.path / "c" / "train.csv"));
}

// The unlabelled corpus: BIDS NIfTI heads named by modality, nothing that labels them, and each
// head the very image of the labelled dataset's series of the same seed and index (converted),
// but defaced as OpenMind's are: its face set to the image's minimum, those voxels in its deface
// mask, both listed in the corpus's openneuro_metadata.csv.
TEST(Synth, UnlabelledCorpusHoldsTheSameHeadsAsBidsNifti) {
  test::TempDir dir("synth_unl");
  synth::SynthOptions o;
  o.n = 4;
  o.size = synth::Size::Tiny;
  o.seed = 21;
  o.out = dir.path / "labelled";
  synth::write_dataset(o);
  o.out = dir.path / "unlabelled";
  o.unlabelled = true;
  synth::write_dataset(o);
  const fs::path u = dir.path / "unlabelled";
  for (const char* absent : {"train.csv", "train_localizers.csv", "series", "segmentations", ".dicom"})
    EXPECT_FALSE(fs::exists(u / absent)) << absent;
  std::ifstream tin(dir.path / "labelled" / "truth.json");
  const json truth = json::parse(tin);
  const auto meta = csv_rows(u / "openneuro_metadata.csv");
  ASSERT_EQ(meta.size(), static_cast<size_t>(o.n) + 1);
  EXPECT_EQ(meta[0], (std::vector<std::string>{"dataset_id", "image_path", "anat_mask_path", "anon_mask_path",
                                               "modality", "image_quality_score"}));
  for (int i = 0; i < o.n; ++i) {
    char sub[16];
    std::snprintf(sub, sizeof sub, "sub-%04d", i + 1);
    const auto& t = truth["series"][i];
    const fs::path nii = u / sub / "anat" / (std::string(sub) + "_" + synth::bids_suffix(t["modality"]) + ".nii.gz");
    ASSERT_TRUE(fs::exists(nii)) << nii;
    const Volume<float> head = read_nifti(nii);
    Volume<float> series =
        load_volume<float>(plan_series(dir.path / "labelled" / "series" / t["series_uid"].get<std::string>()));
    SCOPED_TRACE(sub);
    const fs::path mask_file = nii.parent_path() /
                               (nii.filename().string().substr(0, nii.filename().string().find('.')) + "__Data") /
                               "deface_mask.nii.gz";
    ASSERT_TRUE(fs::exists(mask_file)) << mask_file;
    const Volume<float> removed = read_nifti(mask_file);
    ASSERT_EQ(removed.geom.size, head.geom.size);
    const float air = *std::min_element(series.data.begin(), series.data.end());
    size_t marked = 0;
    for (int64_t k = 0; k < head.geom.size[2]; ++k)
      for (int64_t j = 0; j < head.geom.size[1]; ++j)
        for (int64_t i = 0; i < head.geom.size[0]; ++i) {
          if (removed.at(i, j, k) == 0) continue;
          ++marked;
          EXPECT_EQ(head.at(i, j, k), air);
          const Vec3 r = series.geom.world_to_index(head.geom.index_to_world({double(i), double(j), double(k)}));
          series.at(std::lround(r[0]), std::lround(r[1]), std::lround(r[2])) = air;  // defaced as the head
        }
    EXPECT_GT(marked, 0u);
    EXPECT_LT(marked, static_cast<size_t>(head.geom.voxel_count()) / 4);
    test::expect_same_world_grid(head, series, 1e-3);  // (the NIfTI may hold another voxel order)
    const auto& row = meta[static_cast<size_t>(i) + 1];
    EXPECT_EQ(u / row[1], nii);
    EXPECT_EQ(u / row[3], mask_file);
    EXPECT_EQ(row[4], nii.filename().string().substr(
                          nii.filename().string().rfind('_') + 1,
                          nii.filename().string().find('.') - nii.filename().string().rfind('_') - 1));
  }
}

TEST(Synth, CoverLocationsPutsAPositiveAtEveryLocation) {
  test::TempDir dir("synth_cover");
  synth::SynthOptions o;
  o.n = 16;
  o.size = synth::Size::Tiny;
  o.seed = 7;
  o.positive_fraction = 0;  // only the covering series are positive
  o.cover_locations = true;
  o.out = dir.path / "a";
  synth::write_dataset(o);
  const auto rows = csv_rows(o.out / "train.csv");
  ASSERT_EQ(rows.size(), 17u);
  for (int i = 0; i < 16; ++i) {
    const auto& r = rows[static_cast<size_t>(i) + 1];
    EXPECT_EQ(std::stoi(r[4 + kPresentColumn]), i < 13 ? 1 : 0) << i;
    if (i < 13) EXPECT_EQ(std::stoi(r[4 + i]), 1) << i;
  }
}

// The medium preset: clinical pixels, CTA and TOF fields narrower than the head and centred on the
// vessels, and still every aneurysm (one at each location, and more) inside the imaged volume.
TEST(Synth, MediumHasClinicalPixelsAndPartialFieldsThatHoldEveryAneurysm) {
  test::TempDir dir("synth_medium");
  synth::SynthOptions o;
  o.n = 20;
  o.size = synth::Size::Medium;
  o.seed = 4;
  o.cover_locations = true;
  o.out = dir.path / "a";
  synth::write_dataset(o);
  const json truth = json::parse(slurp(o.out / "truth.json"));
  EXPECT_EQ(truth["size"], "medium");
  int aneurysms = 0, partial = 0;
  for (const auto& t : truth["series"]) {
    const SeriesPlan plan = plan_series(o.out / "series" / t["series_uid"].get<std::string>());
    const Geometry& g = plan.geometry;
    const bool angio = t["modality"] == "CTA" || t["modality"] == "MRA";
    const double px = g.spacing[0], field = px * static_cast<double>(g.size[0]);
    EXPECT_EQ(g.size[0], angio ? 256 : 320);
    EXPECT_GE(px, angio ? 0.49 : 0.61) << t["modality"];
    EXPECT_LE(px, angio ? 0.62 : 0.76) << t["modality"];
    partial += angio && field < 160;  // narrower than a head (150-200 mm across)
    for (const auto& a : t["aneurysms"]) {
      const Vec3 c{a["centre_lps_mm"][0], a["centre_lps_mm"][1], a["centre_lps_mm"][2]};
      const double r = a["radius_mm"];
      const Vec3 ijk = g.world_to_index(c);
      for (int k = 0; k < 3; ++k) {  // the whole aneurysm inside, with a voxel to spare
        EXPECT_GE(ijk[k] * g.spacing[k], r) << t["series_uid"] << " axis " << k;
        EXPECT_GE((static_cast<double>(g.size[k] - 1) - ijk[k]) * g.spacing[k], r) << t["series_uid"] << " axis " << k;
      }
      ++aneurysms;
    }
  }
  EXPECT_GE(aneurysms, 13);
  EXPECT_GT(partial, 0);
}

// A partial field of view moves to hold an aneurysm beyond its usual reach (here 75 mm to the
// side of the vessel tree's middle, the field's half-width being 63-78 mm), whatever the pose.
TEST(Synth, APartialFieldMovesToHoldAFarAneurysm) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    synth::Subject subject = synth::make_subject(rng, 0.0);
    for (const Vec3& at : {Vec3{75, 11, -8}, Vec3{-75, 11, -8}, Vec3{0, 85, -8}}) {
      synth::Subject s = subject;
      s.aneurysms = {{at, s.to_world(at), 3.0, 4}};
      const synth::SeriesDesign d = synth::draw_design(synth::Modality::CTA, synth::Size::Medium, s, false, rng);
      const double extent = (d.matrix - 1) * d.pixel_spacing;
      for (const Vec3& axis : {d.row_cos, d.col_cos}) {
        const double u = dot(s.aneurysms[0].centre_world - d.first_position, axis);
        EXPECT_GE(u - 3.0, 0) << seed;
        EXPECT_LE(u + 3.0, extent) << seed;
      }
    }
  }
}

TEST(Synth, VesselNeighbourhoodIsWhereVesselsAre) {
  std::mt19937_64 rng(3);
  const synth::Subject s = synth::make_subject(rng, 1.0, 5);
  ASSERT_FALSE(s.aneurysms.empty());
  EXPECT_EQ(s.aneurysms[0].column, 5);
  const synth::VesselGrid g(s, 0.4);
  for (const auto& v : s.vessels) {
    EXPECT_TRUE(g.near_vessel(v.a));
    EXPECT_TRUE(g.near_vessel(0.5 * (v.a + v.b)));
  }
  EXPECT_TRUE(g.near_vessel(s.aneurysms[0].centre_subject));
  EXPECT_FALSE(g.near_vessel({500, 0, 0}));
  int far = 0, near = 0;
  for (double x = -70; x <= 70; x += 5)
    for (double z = -60; z <= 60; z += 5) {
      const Vec3 p{x, 0, z};
      double d = 1e9;
      for (const auto& v : s.vessels) {
        const Vec3 ab = v.b - v.a;
        const double t = std::clamp(dot(p - v.a, ab) / std::max(1e-9, dot(ab, ab)), 0.0, 1.0);
        d = std::min(d, norm(p - (v.a + t * ab)) - v.radius);
      }
      for (const auto& an : s.aneurysms) d = std::min(d, norm(p - an.centre_subject) - an.radius);
      if (d > 4 * synth::VesselGrid::kNearBlockMm) {  // beyond the neighbour blocks' reach (2 blocks x sqrt 3)
        ++far;
        EXPECT_FALSE(g.near_vessel(p)) << x << " " << z;
      }
      if (d < 0) {
        ++near;
        EXPECT_TRUE(g.near_vessel(p)) << x << " " << z;
      }
    }
  EXPECT_GT(far, 10);
  EXPECT_GT(near, 0);
}

TEST(Synth, HazardsAreInjectedAndSurvivable) {
  test::TempDir dir("synth_haz");
  synth::SynthOptions o;
  o.n = 40;
  o.size = synth::Size::Tiny;
  o.seed = 5;
  o.hazards = true;
  o.out = dir.path / "d";
  synth::write_dataset(o);
  const json truth = json::parse(slurp(o.out / "truth.json"));
  int scouts = 0, missing = 0, thick = 0;
  for (const auto& t : truth["series"]) {
    const DicomSeries s = read_series(o.out / "series" / t["series_uid"].get<std::string>());
    const auto& h = t["hazards"];
    if (h["scout"].get<bool>()) {
      ++scouts;
      EXPECT_FALSE(s.plan.dropped.empty());
    }
    if (h["missing_slice"].get<int>() >= 0) {
      ++missing;
      EXPECT_TRUE(s.plan.resampled);
      EXPECT_EQ(s.image.geom.size[2], t["slices"].get<int>());
    }
    if (h["wrong_thickness"].get<bool>()) ++thick;
  }
  EXPECT_GT(scouts + missing + thick, 0);
}

TEST(Synth, BadArgumentsLeaveNothingBehind) {
  test::TempDir dir("synth_bad");
  synth::SynthOptions o;
  o.size = synth::Size::Tiny;
  o.out = dir.path / "x";
  o.n = 0;
  auto code = [&] {
    try {
      synth::write_dataset(o);
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::Internal;
  };
  EXPECT_EQ(code(), ErrorCode::Usage);
  o.n = 2;
  o.out = dir.path / "missing_parent" / "x";
  EXPECT_EQ(code(), ErrorCode::OutputFailed);
  o.out = dir.path / "full";
  fs::create_directories(o.out);
  std::ofstream(o.out / "keep.txt") << "mine";
  EXPECT_EQ(code(), ErrorCode::OutputFailed);
  EXPECT_TRUE(fs::exists(o.out / "keep.txt"));
  o.force = true;
  synth::write_dataset(o);
  EXPECT_FALSE(fs::exists(o.out / "keep.txt"));
  EXPECT_TRUE(fs::exists(o.out / "train.csv"));
  for (const auto& e : fs::directory_iterator(dir.path))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
  EXPECT_THROW(synth::parse_size("huge"), Error);
}

}  // namespace
}  // namespace aneura

namespace aneura {
namespace {

// The peers read our files: pydicom parses every file (and decodes the pixels it can), and
// Debian's dcm2niix converts every series it can decode onto the same voxels aneura reads.
TEST_F(SynthTiny, PydicomReadsEveryFile) {
  if (std::system("/usr/bin/python3 -c 'import pydicom' > /dev/null 2>&1") != 0) GTEST_SKIP() << "no pydicom";
  const std::string cmd = "/usr/bin/python3 " + std::string(ANEURA_SOURCE_DIR) + "/tests/synth/peers_read.py '" +
                          data().string() + "' > /dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(SynthTiny, Dcm2niixAgreesOnEverySeriesItDecodes) {
  if (std::system("command -v dcm2niix > /dev/null 2>&1") != 0) GTEST_SKIP() << "no dcm2niix";
  test::TempDir out("synth_d2n");
  size_t compared = 0;
  for (const auto& t : truth_["series"]) {
    const std::string uid = t["series_uid"];
    if (t["transfer_syntax"].get<std::string>().rfind("1.2.840.10008.1.2.4.8", 0) == 0)
      continue;  // JPEG-LS: Debian's dcm2niix cannot
    const std::string cmd = "dcm2niix -z n -f '" + uid + "' -o '" + out.path.string() + "' '" +
                            (data() / "series" / uid).string() + "' > /dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << uid;
    ASSERT_TRUE(fs::exists(out.path / (uid + ".nii"))) << uid;
    if (t["photometric"] == "MONOCHROME1") continue;  // dcm2niix keeps MONOCHROME1 values as stored
    // Frames stored out of spatial order (an RSNA hazard): Debian's dcm2niix (2022) stacks them in
    // file order, aneura by their per-frame ImagePositionPatient; only aneura's is right.
    if (t["multiframe"].get<bool>() && t["per_frame_groups"].get<bool>()) continue;
    SCOPED_TRACE(t.dump());
    test::expect_same_world_grid(read_series(data() / "series" / uid).image, read_nifti(out.path / (uid + ".nii")),
                                 1e-3);
    ++compared;
  }
  EXPECT_GT(compared, 20u);
}

}  // namespace
}  // namespace aneura
