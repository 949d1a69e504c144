#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "dataset/case_cache.hpp"
#include "plan/planner.hpp"
#include "support/series_fixture.hpp"
#include "synth/dataset.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace aneura {
namespace {

Fingerprint fixed_fingerprint() {
  Fingerprint f;
  ModalitySummary s;
  s.cases = 100;
  s.positives = 43;
  s.dicom_modality = "CT";
  s.spacing_median = {0.45, 0.45, 0.625};
  s.spacing_p10 = {0.4, 0.4, 0.5};
  s.p00_5 = -50;
  s.p99_5 = 1500;
  s.mean = 180;
  s.std = 350;
  f.all = s;
  f.by_dicom_modality["CT"] = s;
  f.by_modality["CTA"] = s;
  return f;
}

HardwareProfile profile(int cores, double ram, double gpu_gb) {
  HardwareProfile h;
  h.cores = cores;
  h.ram_total_gb = h.ram_available_gb = ram;
  if (gpu_gb > 0) h.gpus.push_back({"test GPU", gpu_gb, gpu_gb});
  return h;
}

HardwareProfile amx_profile() {
  HardwareProfile h = profile(2, 24, 0);
  h.cpu_bf16 = true;
  return h;
}

// The fixed fingerprint with 5 mm slices: too coarse for cpu_fine.
Fingerprint thick_fingerprint() {
  Fingerprint f = fixed_fingerprint();
  for (auto* s : {&f.all, &f.by_dicom_modality["CT"], &f.by_modality["CTA"]}) s->spacing_median[2] = 5;
  return f;
}

TEST(Planner, TwoCoresNoGpuPlansTheCpuDemo) {
  const PlanResult r = make_plans(thick_fingerprint(), profile(2, 24, 0));
  EXPECT_EQ(r.plans.default_configuration, "cpu_demo");
  EXPECT_EQ(r.plans.raw.count("cpu_fine"), 0u);
  const Configuration& c = r.plans.get("");
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.loader_workers, 1);
  // windowed: 16^3 windows at >= 2 mm inside the ROI, blob features
  for (double s : c.target_spacing_mm) EXPECT_GE(s, 2.0);
  EXPECT_EQ(c.patch_size, (std::array<int, 3>{16, 16, 16}));
  EXPECT_EQ(c.stages, 3);
  for (int a = 0; a < 3; ++a) EXPECT_LT(c.patch_size[a] * c.target_spacing_mm[a], c.roi_mm[a]);
  EXPECT_TRUE(c.blob_features);
  for (int a = 0; a < 3; ++a) EXPECT_EQ(c.patch_size[a] % (1 << (c.stages - 1)), 0);
  // memory rule: the batch fits a quarter of the RAM
  EXPECT_LE(c.batch_size * rule_sample_memory_gb(c.patch_size, c.stages, c.base_channels, c.max_channels, false),
            0.25 * 24);
  // CT: the angiography window the cases are made with (not the fingerprint's bone-inclusive
  // percentiles -50 .. 1500, which the explanation quotes)
  EXPECT_EQ(c.normalization["CT"]["clip"], json({-100.0, 600.0}));
  EXPECT_EQ(c.normalization["CT"]["mean"], 40.0);
  EXPECT_EQ(c.normalization["CT"]["std"], 60.0);
  bool quoted = false;
  for (const auto& line : r.explanation)
    quoted =
        quoted || (line.find("[-50, 1.5e+03]") != std::string::npos && line.find("angiography") != std::string::npos);
  EXPECT_TRUE(quoted);
}

TEST(Planner, ThinSliceFinePixelsPlanTheCpuFineConfigurationAsTheDefault) {
  // CTA at 0.45 x 0.45 x 0.625 mm: 1 mm windows of 32^3, the same 32 mm of context as cpu_demo's
  const PlanResult r = make_plans(fixed_fingerprint(), profile(2, 24, 0));
  EXPECT_EQ(r.plans.default_configuration, "cpu_fine");
  const Configuration& c = r.plans.get("cpu_fine");
  EXPECT_EQ(c.target_spacing_mm, (std::array<double, 3>{1, 1, 1}));
  EXPECT_EQ(c.patch_size, (std::array<int, 3>{32, 32, 32}));
  EXPECT_EQ(c.stages, 4);
  for (int a = 0; a < 3; ++a) EXPECT_LT(c.patch_size[a] * c.target_spacing_mm[a], c.roi_mm[a]);  // windowed
  EXPECT_TRUE(c.blob_features);
  EXPECT_EQ(c.device, "cpu");
  EXPECT_GT(c.time_budget_s, r.plans.get("cpu_demo").time_budget_s);
  EXPECT_EQ(r.plans.get("cpu_demo").patch_size, (std::array<int, 3>{16, 16, 16}));
  // a GPU still takes gpu_full
  EXPECT_EQ(make_plans(fixed_fingerprint(), profile(16, 128, 80)).plans.default_configuration, "gpu_full");
  // half the cases thin is enough, fewer is not
  Fingerprint f = fixed_fingerprint();
  ModalitySummary t2 = f.by_modality["CTA"];
  t2.spacing_median = {0.7, 0.7, 5};
  t2.cases = 100;
  f.by_modality["MRI T2"] = t2;
  f.all.cases = 200;
  EXPECT_EQ(make_plans(f, profile(2, 24, 0)).plans.default_configuration, "cpu_fine");
  f.by_modality["MRI T2"].cases = 101;
  f.all.cases = 201;
  const PlanResult thick = make_plans(f, profile(2, 24, 0));
  EXPECT_EQ(thick.plans.default_configuration, "cpu_demo");
  bool said = false;
  for (const auto& line : thick.explanation) said = said || line.find("cpu_fine: not planned") != std::string::npos;
  EXPECT_TRUE(said);
  // cases made at 1.5 mm (preprocess --spacing 1.5): 1 mm windows would see interpolation
  HarmonizeParams coarse_cases;
  coarse_cases.spacing = {1.5, 1.5, 1.5};
  const PlanResult c15 = make_plans(fixed_fingerprint(), profile(2, 24, 0), coarse_cases);
  EXPECT_EQ(c15.plans.default_configuration, "cpu_demo");
  EXPECT_EQ(c15.plans.raw.count("cpu_fine"), 0u);
}

TEST(Planner, CasesMadeAtSourcePixelsPlanTheNativeConfigurationForTheThinSliceModalities) {
  // default cases (1 mm): no cpu_native, and the explanation says why
  const PlanResult at1 = make_plans(fixed_fingerprint(), profile(2, 24, 0));
  EXPECT_EQ(at1.plans.raw.count("cpu_native"), 0u);
  EXPECT_EQ(at1.plans.raw.count("cpu_candidates"), 0u);
  EXPECT_EQ(at1.plans.raw.count("cpu_dots"), 0u);
  bool said = false;
  for (const auto& line : at1.explanation) said = said || line.find("cpu_native: not planned") != std::string::npos;
  EXPECT_TRUE(said);
  // CTA at 0.45 x 0.45 x 0.625 mm beside 5 mm T2, cases made at 0.4 mm: windows at the CTA's in-plane
  // 0.45 mm, trained on CTA alone, no blob channels; cpu_fine stays the default
  Fingerprint f = fixed_fingerprint();
  ModalitySummary t2 = f.by_modality["CTA"];
  t2.spacing_median = {0.7, 0.7, 5};
  t2.cases = 10;
  f.by_modality["MRI T2"] = t2;
  f.all.cases += 10;
  HarmonizeParams fine_cases;
  fine_cases.spacing = {0.4, 0.4, 0.4};
  const PlanResult r = make_plans(f, profile(2, 24, 0), fine_cases);
  ASSERT_EQ(r.plans.raw.count("cpu_native"), 1u);
  EXPECT_EQ(r.plans.default_configuration, "cpu_fine");
  const Configuration& c = r.plans.get("cpu_native");
  for (double s : c.target_spacing_mm) EXPECT_NEAR(s, 0.45, 1e-9);
  EXPECT_EQ(c.patch_size, (std::array<int, 3>{32, 32, 32}));
  EXPECT_FALSE(c.blob_features);
  EXPECT_EQ(c.modalities, (std::vector<std::string>{"CTA"}));
  EXPECT_TRUE(r.plans.get("cpu_fine").modalities.empty());
  // its candidate stage: the same windows judging cpu_fine's 16 strongest maxima
  ASSERT_EQ(r.plans.raw.count("cpu_candidates"), 1u);
  const Configuration& k = r.plans.get("cpu_candidates");
  EXPECT_EQ(k.candidates, 16);
  EXPECT_EQ(k.target_spacing_mm, c.target_spacing_mm);
  EXPECT_EQ(k.modalities, c.modalities);
  EXPECT_EQ(k.candidate_source, "coarse");
  EXPECT_EQ(c.candidates, 0);
  EXPECT_EQ(r.plans.get("cpu_fine").candidates, 0);
  // and the stage that finds its own candidates: the same windows on the dot filter's 32 maxima
  ASSERT_EQ(r.plans.raw.count("cpu_dots"), 1u);
  const Configuration& d = r.plans.get("cpu_dots");
  EXPECT_EQ(d.candidate_source, "dots");
  EXPECT_EQ(d.candidates, kDotCandidates);
  EXPECT_TRUE(d.mine_online);  // its hard negatives by its own judgement on the training windows
  EXPECT_FALSE(k.mine_online);
  EXPECT_EQ(d.target_spacing_mm, c.target_spacing_mm);
  EXPECT_EQ(d.patch_size,
            (std::array<int, 3>{kDotWindow, kDotWindow, kDotWindow}));  // smaller windows than cpu_native's
  for (int a = 0; a < 3; ++a) EXPECT_EQ(d.patch_size[a] % (1 << (d.stages - 1)), 0);
  EXPECT_EQ(d.modalities, c.modalities);
  EXPECT_NE(r.plans.default_configuration, "cpu_dots");
  // its windows come from crops in memory: on 2 cores no loader thread beside the network's, said so;
  // on more, cpu_demo's
  EXPECT_EQ(d.loader_workers, 0);
  bool no_loader = false;
  for (const auto& line : r.explanation) no_loader = no_loader || line.find("cpu_dots: no loader thread") == 0;
  EXPECT_TRUE(no_loader);
  const PlanResult many = make_plans(f, profile(16, 24, 0), fine_cases);
  EXPECT_EQ(many.plans.get("cpu_dots").loader_workers, many.plans.get("cpu_demo").loader_workers);
  EXPECT_GT(many.plans.get("cpu_dots").loader_workers, 0);
  // bf16 autocast where the CPU computes bf16 natively, for cpu_dots alone (measured there); said so
  EXPECT_FALSE(d.mixed_precision);
  HardwareProfile amx = profile(2, 24, 0);
  amx.cpu_bf16 = true;
  const PlanResult with_bf16 = make_plans(f, amx, fine_cases);
  EXPECT_TRUE(with_bf16.plans.get("cpu_dots").mixed_precision);
  for (const char* other : {"cpu_demo", "cpu_fine", "cpu_native", "cpu_candidates"})
    EXPECT_FALSE(with_bf16.plans.get(other).mixed_precision) << other;
  bool told = false;
  for (const auto& line : with_bf16.explanation) told = told || line.find("bf16 autocast") != std::string::npos;
  EXPECT_TRUE(told);
  // never finer than the cases: made at 0.6 mm, the windows are at 0.6 mm
  fine_cases.spacing = {0.6, 0.6, 0.6};
  const PlanResult at06 = make_plans(f, profile(2, 24, 0), fine_cases);
  for (double s : at06.plans.get("cpu_native").target_spacing_mm) EXPECT_NEAR(s, 0.6, 1e-9);
}

TEST(Planner, TheVesselStageLearnsTheVesselsAloneFromTheSegmentedCases) {
  const PlanResult r = make_plans(thick_fingerprint(), profile(2, 24, 0));
  const Configuration& v = r.plans.get("cpu_vessels");
  const Configuration& demo = r.plans.get("cpu_demo");
  EXPECT_TRUE(v.vessel_stage);
  EXPECT_FALSE(demo.vessel_stage);
  EXPECT_EQ(v.loss_weights.at("vessel"), 1);
  for (const char* k : {"aneurysm", "classification", "modality"}) EXPECT_EQ(v.loss_weights.at(k), 0) << k;
  // the aneurysm models' input, so it predicts on the image they harmonize
  EXPECT_EQ(v.target_spacing_mm, demo.target_spacing_mm);
  EXPECT_EQ(v.patch_size, demo.patch_size);
  EXPECT_EQ(v.blob_features, demo.blob_features);
  EXPECT_NE(r.plans.default_configuration, "cpu_vessels");
  // thin slices: cpu_fine's vessel stage too, with cpu_fine's network so its encoder initialises it
  EXPECT_EQ(r.plans.raw.count("cpu_fine_vessels"), 0u);
  const PlanResult fine = make_plans(fixed_fingerprint(), profile(2, 24, 0));
  const Configuration &fv = fine.plans.get("cpu_fine_vessels"), &f = fine.plans.get("cpu_fine");
  EXPECT_TRUE(fv.vessel_stage);
  EXPECT_EQ(fv.loss_weights, v.loss_weights);
  for (auto field : {&Configuration::stages, &Configuration::base_channels, &Configuration::max_channels})
    EXPECT_EQ(fv.*field, f.*field);
  EXPECT_EQ(fv.patch_size, f.patch_size);
  EXPECT_EQ(fv.target_spacing_mm, f.target_spacing_mm);
  EXPECT_EQ(fv.blob_features, f.blob_features);
  EXPECT_EQ(fine.plans.default_configuration, "cpu_fine");
}

// The seeds' 2.5D baseline is always planned beside the 3D configurations, with the default 3D
// configuration's budget, and never chosen by default.
TEST(Planner, TheTwoAndAHalfDBaselineIsPlannedBesideTheDefault) {
  for (const bool thin : {false, true}) {
    const PlanResult r = make_plans(thin ? fixed_fingerprint() : thick_fingerprint(), profile(2, 24, 0));
    const Configuration& s = r.plans.get("cpu_2p5d");
    EXPECT_EQ(s.model, "dualstream_2p5d");
    EXPECT_EQ(s.patch_size, (std::array<int, 3>{224, 224, 5}));  // the seed's 5 slices at 224 x 224
    EXPECT_EQ(s.time_budget_s, r.plans.get(thin ? "cpu_fine" : "cpu_demo").time_budget_s);
    EXPECT_NE(r.plans.default_configuration, "cpu_2p5d");
    bool explained = false;
    for (const auto& line : r.explanation) explained = explained || line.rfind("cpu_2p5d:", 0) == 0;
    EXPECT_TRUE(explained);
  }
}

TEST(Plans, ModalitiesMustBeKnown) {
  json j = to_json(make_plans(fixed_fingerprint(), profile(2, 24, 0)).plans);
  j["configurations"]["cpu_fine"]["modalities"] = {"CTA", "MRA"};
  EXPECT_EQ(plans_from_json(j).get("cpu_fine").modalities, (std::vector<std::string>{"CTA", "MRA"}));
  j["configurations"]["cpu_fine"]["modalities"] = {"CTA", "PET"};
  try {
    plans_from_json(j);
    FAIL() << "an unknown modality was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::CorruptInput);
    EXPECT_NE(std::string(e.what()).find("unknown modality 'PET'"), std::string::npos);
  }
}

TEST(Planner, NormalizationRecordsHowTheCasesWereMade) {
  HarmonizeParams made;
  made.ct_clip_lo = -100;
  made.ct_clip_hi = 1200;
  made.ct_mean = 200;
  made.ct_std = 300;
  made.mr_normalization = "percentile";
  const PlanResult r = make_plans(fixed_fingerprint(), profile(2, 24, 0), made);
  for (const char* name : {"cpu_demo", "cpu_fine", "gpu_full"}) {
    const json& n = r.plans.get(name).normalization;
    EXPECT_EQ(n["CT"]["scheme"], "clip_zscore") << name;
    EXPECT_EQ(n["CT"]["clip"], json({-100.0, 1200.0})) << name;
    EXPECT_EQ(n["CT"]["mean"], 200.0) << name;
    EXPECT_EQ(n["CT"]["std"], 300.0) << name;
    EXPECT_EQ(n["MR"], json({{"scheme", "percentile"}, {"inside", "head mask"}})) << name;
  }
  bool said = false;
  for (const auto& line : r.explanation) said = said || line.find("[-100, 1.2e+03]") != std::string::npos;
  EXPECT_TRUE(said);
  // CT as one channel per window: no clip to record
  made.ct_normalization = "windows";
  EXPECT_EQ(normalization_json(made)["CT"], json({{"scheme", "windows"}}));
  // MR WhiteStripe inside a brain mask: recorded and explained
  made.mr_normalization = "whitestripe";
  made.whitestripe_last = true;
  made.brain_mask = true;
  EXPECT_EQ(normalization_json(made)["MR"],
            json({{"scheme", "whitestripe"}, {"inside", "brain mask"}, {"width", 0.05}, {"mode", "last"}}));
  const PlanResult ws = make_plans(fixed_fingerprint(), profile(2, 24, 0), made);
  bool explained = false;
  for (const auto& line : ws.explanation)
    explained = explained || (line.find("WhiteStripe inside the brain mask") != std::string::npos &&
                              line.find("last (T1)") != std::string::npos);
  EXPECT_TRUE(explained);
}

TEST(Planner, BigGpuMachinePlansTheGpuConfiguration) {
  const PlanResult r = make_plans(fixed_fingerprint(), profile(16, 128, 80));
  EXPECT_EQ(r.plans.default_configuration, "gpu_full");
  const Configuration& g = r.plans.get("gpu_full");
  EXPECT_EQ(g.device, "cuda");
  EXPECT_TRUE(g.mixed_precision);
  EXPECT_EQ(g.loader_workers, 12);  // cores - 2, at most 12
  EXPECT_GE(g.batch_size, 2);
  const double per = rule_sample_memory_gb(g.patch_size, g.stages, g.base_channels, g.max_channels, true);
  EXPECT_LE(g.batch_size * per, 0.8 * 80);
  // the ROI keeps its extent: patch x spacing ~ ROI (within one rounding step)
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(g.patch_size[a] * g.target_spacing_mm[a], g.roi_mm[a], (1 << (g.stages - 1)) * g.target_spacing_mm[a]);
  // the same fingerprint on a small GPU gets coarser voxels or a smaller batch
  const Configuration& small = make_plans(fixed_fingerprint(), profile(16, 128, 8)).plans.get("gpu_full");
  EXPECT_TRUE(small.target_spacing_mm[0] > g.target_spacing_mm[0] || small.batch_size < g.batch_size);
}

TEST(Planner, SmallMachineGetsFewerWorkersAndAShortQueue) {
  const PlanResult r = make_plans(fixed_fingerprint(), profile(4, 8, 0));
  const Configuration& c = r.plans.get("cpu_demo");
  EXPECT_EQ(c.loader_workers, 2);
  EXPECT_GE(c.queue_length, 2);
  EXPECT_LE(c.queue_length, 4 * c.loader_workers);
  EXPECT_LE(c.batch_size * rule_sample_memory_gb(c.patch_size, c.stages, c.base_channels, c.max_channels, false),
            0.25 * 8);
}

TEST(Planner, AnisotropicAxisTakesThe10thPercentile) {
  ModalitySummary s;
  s.spacing_median = {0.5, 0.5, 5.0};
  s.spacing_p10 = {0.45, 0.45, 2.5};
  std::string why;
  const auto t = rule_target_spacing(s, &why);
  EXPECT_DOUBLE_EQ(t[0], 0.5);
  EXPECT_DOUBLE_EQ(t[2], 2.5);
  EXPECT_NE(why.find("anisotropic"), std::string::npos);
  s.spacing_median = {0.5, 0.5, 1.2};
  EXPECT_DOUBLE_EQ(rule_target_spacing(s)[2], 1.2);
}

TEST(Plans, RoundTripAndInheritance) {
  const Plans p = make_plans(fixed_fingerprint(), profile(2, 24, 0)).plans;
  const Plans back = plans_from_json(json::parse(to_json(p).dump()));
  for (const auto& [n, c] : p.configurations)
    EXPECT_EQ(configuration_to_json(back.get(n)), configuration_to_json(c)) << n;
  // cpu_demo inherits base and overrides some fields
  EXPECT_EQ(p.raw.at("cpu_demo").at("inherits"), "base");
  EXPECT_EQ(p.get("cpu_demo").model, p.get("base").model);
  EXPECT_NE(p.get("cpu_demo").base_channels, p.get("base").base_channels);
}

TEST(Plans, StrictValidation) {
  json j = to_json(make_plans(fixed_fingerprint(), profile(2, 24, 0)).plans);
  auto code = [](const json& x) {
    try {
      plans_from_json(x);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  json bad = j;
  bad["configurations"]["cpu_demo"]["batchsize"] = 3;
  EXPECT_NE(code(bad).find("unknown key 'batchsize'"), std::string::npos);
  bad = j;
  bad["configurations"]["cpu_demo"]["model"] = "mystery_net";
  EXPECT_NE(code(bad).find("unknown model"), std::string::npos);
  bad = j;
  bad["configurations"]["base"]["inherits"] = "cpu_demo";
  EXPECT_NE(code(bad).find("inherits from itself"), std::string::npos);
  bad = j;
  bad["configurations"]["cpu_demo"]["inherits"] = "nowhere";
  EXPECT_NE(code(bad).find("not defined"), std::string::npos);
  bad = j;
  bad["configurations"]["cpu_demo"]["focus_windows"] = 8;
  EXPECT_EQ(code(bad), "accepted");
  bad["configurations"]["cpu_demo"]["blob_features"] = false;
  EXPECT_NE(code(bad).find("focus_windows needs blob_features"), std::string::npos);
  bad = j;
  bad["extra"] = 1;
  EXPECT_NE(code(bad).find("unknown key 'extra'"), std::string::npos);
  EXPECT_EQ(code(j), "accepted");
  // plans written before an optional field existed are read with its default
  json older = j;
  for (auto& [name, c] : older["configurations"].items()) c.erase("gradient_checkpointing");
  ASSERT_EQ(code(older), "accepted");
  EXPECT_FALSE(plans_from_json(older).get("cpu_demo").gradient_checkpointing);
  EXPECT_THROW(make_plans(fixed_fingerprint(), profile(2, 24, 0)).plans.get("nope"), Error);
}

TEST(Fingerprint, FromACaseCacheAndBadFiles) {
  test::TempDir dir("fp");
  synth::SynthOptions so;
  so.out = dir.path / "data";
  so.n = 8;
  so.size = synth::Size::Tiny;
  so.seed = 51;
  synth::write_dataset(so);
  CaseOptions o;
  o.harmonize.spacing = {3, 3, 3};
  preprocess_dataset(read_rsna(so.out), dir.path / "work", o, 2);
  const Fingerprint f = compute_fingerprint(dir.path / "work");
  EXPECT_EQ(f.all.cases, 8);
  int n = 0;
  for (const auto& [m, s] : f.by_modality) n += s.cases;
  EXPECT_EQ(n, 8);
  for (const auto& c : f.cases)
    for (double s : c.spacing_ras) EXPECT_GT(s, 0);
  if (f.by_dicom_modality.count("CT")) {
    EXPECT_LT(f.by_dicom_modality.at("CT").p00_5, f.by_dicom_modality.at("CT").p99_5);
  }
  // round trip through the file
  const fs::path file = dir.path / "work" / "fingerprint.json";
  std::ofstream(file) << to_json(f).dump();
  const Fingerprint back = read_fingerprint(file);
  EXPECT_EQ(back.all.cases, 8);
  EXPECT_EQ(to_json(back), to_json(f));
  // missing and corrupt
  try {
    read_fingerprint(dir.path / "nope.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::InputNotFound);
  }
  std::ofstream(file) << "{\"version\": 1, \"all\": ";
  try {
    read_fingerprint(file);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::CorruptInput);
    EXPECT_EQ(e.where(), file.string());
  }
  EXPECT_THROW(compute_fingerprint(dir.path / "empty"), Error);
}

TEST(Hardware, ProbeAndCgroupQuota) {
  const HardwareProfile h = probe_hardware(".");
  EXPECT_GE(h.cores, 1);
  EXPECT_GT(h.ram_total_gb, 0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("max 100000"), 0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("200000 100000"), 2.0);
  EXPECT_DOUBLE_EQ(cgroup_cpu_limit("50000 100000"), 0.5);
  EXPECT_THROW(hardware_from_json(json{{"cores", 0}, {"ram_total_gb", 8}}), Error);
  const HardwareProfile p =
      hardware_from_json(json{{"cores", 16}, {"ram_total_gb", 128}, {"gpus", {{{"total_gb", 80}}}}});
  EXPECT_EQ(p.gpus.size(), 1u);
  EXPECT_DOUBLE_EQ(p.gpus[0].free_gb, 80);
  EXPECT_FALSE(p.cpu_bf16);  // a profile that does not say: not assumed
  EXPECT_TRUE(hardware_from_json(to_json(amx_profile())).cpu_bf16);
  // the CPU's bf16: a processor's flags list amx_bf16 or avx512_bf16 (whole words)
  EXPECT_TRUE(cpuinfo_has_bf16("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n"));
  EXPECT_TRUE(cpuinfo_has_bf16("flags\t: fpu amx_bf16\n"));
  EXPECT_FALSE(cpuinfo_has_bf16("flags\t: fpu sse avx2 avx512f avx512_vnni\n"));
  EXPECT_FALSE(cpuinfo_has_bf16("flags\t: fpu avx512_bf16x\nbugs\t: avx512_bf16\n"));
  EXPECT_FALSE(cpuinfo_has_bf16(""));
}

}  // namespace
}  // namespace aneura
