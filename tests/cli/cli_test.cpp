// Runs the real aneura binary: exit codes and messages as docs/CLI.md documents them.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "io/nifti.hpp"
#include "support/series_fixture.hpp"

namespace fs = std::filesystem;

namespace aneura {
namespace {

struct CliRun {
  int code;
  std::string out;  // stdout + stderr
};

// `program args` with `env` (e.g. "NAME=value") in its environment; stdout and stderr together.
CliRun run_program(const std::string& program, const std::string& args, const std::string& env = "") {
  const std::string cmd = (env.empty() ? "" : env + " ") + program + " " + args + " 2>&1";
  CliRun r{0, {}};
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

CliRun run(const std::string& args) { return run_program(ANEURA_BINARY, args); }
CliRun run_with_env(const std::string& env, const std::string& args) { return run_program(ANEURA_BINARY, args, env); }

TEST(Cli, VersionAndHelp) {
  const CliRun v = run("version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("aneura "), std::string::npos);
  const CliRun h = run("convert --help");
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("--layout"), std::string::npos);
  EXPECT_NE(h.out.find("dcm2niix"), std::string::npos);  // the default is shown
  EXPECT_EQ(run("").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
}

// Each command loads only the module it lives in: version none of GDCM, ITK and LibTorch, info
// GDCM alone, the ITK commands no LibTorch, train and predict LibTorch. A missing module is a
// clear exit 1 naming its path. (LD_DEBUG=libs: the dynamic loader names every library it opens.)
TEST(Cli, EachCommandLoadsOnlyItsModule) {
  auto loads = [](const std::string& args, const std::string& library) {
    return run_with_env("LD_DEBUG=libs", args).out.find(library) != std::string::npos;
  };
  test::TempDir dir("modules");
  fs::create_directories(dir.path / "series");
  test::write_fixture(test::FixtureSpec{}, dir.path / "series");
  const std::string info = "info " + (dir.path / "series").string();
  EXPECT_EQ(run(info).code, 0) << run(info).out;
  for (const char* lib : {"libgdcm", "libITK", "libtorch"}) EXPECT_FALSE(loads("version", lib)) << lib;
  EXPECT_TRUE(loads(info, "libgdcmMSFF"));
  EXPECT_FALSE(loads(info, "libITK"));
  EXPECT_FALSE(loads(info, "libtorch"));
  EXPECT_TRUE(loads("synth --help", "libITKCommon"));
  EXPECT_FALSE(loads("synth --help", "libtorch"));
  EXPECT_FALSE(loads("evaluate --help", "libtorch"));
  EXPECT_TRUE(loads("train --help", "libtorch"));
  EXPECT_TRUE(loads("predict --help", "libtorch"));
  // the main help lists every command all the same
  const CliRun h = run("--help");
  for (const char* c : {"info ", "convert ", "train ", "predict ", "demo ", "merge "})
    EXPECT_NE(h.out.find(c), std::string::npos) << c;
  const CliRun t = run("train --help");
  EXPECT_EQ(t.code, 0);
  EXPECT_NE(t.out.find("--time-budget"), std::string::npos);
  EXPECT_EQ(run("train").code, 2);  // WORK is required: the module's own parsing
  EXPECT_EQ(run("info").code, 2);
  // the program's allocation cap reaches the module's DICOM reads (a damaged length is refused)
  const CliRun oom =
      run("info " + (fs::path(ANEURA_SOURCE_DIR) / "tests/io/data/gdcm_oom/preamble_length.dcm").string());
  EXPECT_EQ(oom.code, 4) << oom.out;
  EXPECT_NE(oom.out.find("GDCM asked for"), std::string::npos) << oom.out;
  // the program without its modules beside it
  fs::copy_file(ANEURA_BINARY, dir.path / "aneura");
  fs::permissions(dir.path / "aneura", fs::perms::owner_exec, fs::perm_options::add);
  for (const auto& [command, library] : std::vector<std::pair<std::string, std::string>>{
           {"train --help", "libaneura_nn.so"}, {info, "libaneura_gdcm.so"}, {"synth --help", "libaneura_itk.so"}}) {
    const CliRun alone = run_program((dir.path / "aneura").string(), command);
    EXPECT_EQ(alone.code, 1) << command;
    EXPECT_NE(alone.out.find("cannot load the module of the '" + command.substr(0, command.find(' ')) + "' command"),
              std::string::npos)
        << alone.out;
    EXPECT_NE(alone.out.find((dir.path / library).string()), std::string::npos) << alone.out;
  }
  EXPECT_EQ(run_program((dir.path / "aneura").string(), "version").code, 0);
  EXPECT_EQ(run_program((dir.path / "aneura").string(), "merge --help").code, 0);
}

// A study folder with two series of equal size: info cannot choose (exit 5, pointing at --list),
// and --list shows both, one line each, as text or JSON.
TEST(Cli, InfoListsTheSeriesOfAStudyFolder) {
  test::TempDir dir("cli_list");
  test::FixtureSpec a, b;
  b.series_uid = "1.2.826.0.1.3680043.8.498.200";
  b.modality = "MR";
  test::write_fixture(a, dir.path);
  test::write_fixture(b, dir.path);
  const CliRun ambiguous = run("info " + dir.path.string());
  EXPECT_EQ(ambiguous.code, 5);
  EXPECT_NE(ambiguous.out.find("info --list"), std::string::npos) << ambiguous.out;
  const CliRun list = run("info --list " + dir.path.string());
  EXPECT_EQ(list.code, 0);
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 2) << list.out;
  for (const auto* uid : {&a.series_uid, &b.series_uid}) EXPECT_NE(list.out.find(*uid), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("5 x 6 x 4  LPS axial"), std::string::npos) << list.out;
  const CliRun json = run("info --list --json " + dir.path.string());
  ASSERT_EQ(json.code, 0);
  const auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["images"], 4);
  std::set<std::string> modalities{j[0]["modality"], j[1]["modality"]};
  EXPECT_EQ(modalities, (std::set<std::string>{"CT", "MR"}));
}

// A file whose meta header GDCM's own assertions abort on (4 bytes of a synthetic series changed,
// found by mutating copies: 46 of 300 such series crashed info or convert before, 8 now): the
// file meta group is checked first, so the process survives, names the file, and with
// --skip-corrupt converts the rest.
TEST(Cli, AFileTheDicomParserAbortsOnIsReportedNotFatal) {
  test::TempDir dir("cli_abort");
  ASSERT_EQ(run("synth " + (dir.path / "d").string() + " --n 1 --size tiny --seed 2 -q").code, 0);
  const fs::path series = dir.path / "d" / "series" / "1.2.826.0.1.3680043.8.498.2.1";
  const fs::path bad = series / "1.2.826.0.1.3680043.8.498.2.1.4.dcm";
  std::string bytes;
  {
    std::ifstream in(bad, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_EQ(bytes.size(), 2770u);
  ASSERT_EQ(bytes[154], 0);  // the same file as when the mutation was found
  for (const auto& [at, value] : std::vector<std::pair<size_t, int>>{{154, 4}, {159, 11}, {232, 162}, {518, 110}})
    bytes[at] = static_cast<char>(value);
  std::ofstream(bad, std::ios::binary) << bytes;
  const CliRun info = run("info " + series.string());
  EXPECT_EQ(info.code, 4) << info.out;
  EXPECT_NE(info.out.find(bad.string()), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("file meta information"), std::string::npos) << info.out;
  const CliRun skip = run("convert -q --skip-corrupt " + series.string() + " -o " + (dir.path / "o.nii").string());
  EXPECT_EQ(skip.code, 0) << skip.out;
  EXPECT_TRUE(fs::exists(dir.path / "o.nii"));
}

TEST(Cli, InfoJsonDescribesTheSeries) {
  test::TempDir dir("cli_info");
  test::FixtureSpec spec;
  test::write_fixture(spec, dir.path);
  const CliRun r = run("info --json " + dir.path.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["series_uid"], spec.series_uid);
  EXPECT_EQ(j["modality"], "CT");
  EXPECT_EQ(j["size"], nlohmann::json({5, 6, 4}));
  EXPECT_NEAR(j["spacing_mm"][2].get<double>(), 1.25, 1e-9);
  EXPECT_EQ(j["plane"], "axial");
}

TEST(Cli, ConvertWritesNiftiAndExitCodesAreDocumented) {
  test::TempDir dir("cli_conv"), out("cli_out");
  test::FixtureSpec spec;
  test::write_fixture(spec, dir.path);
  const fs::path nii = out.path / "x.nii.gz";
  CliRun r = run("convert " + dir.path.string() + " -o " + nii.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_nifti(nii).geom.size[2], 4);

  r = run("convert " + out.path.string() + "/nothing -o " + (out.path / "y.nii").string());
  EXPECT_EQ(r.code, 9);
  EXPECT_NE(r.out.find("error: input does not exist ("), std::string::npos) << r.out;

  test::TempDir empty("cli_empty");
  r = run("convert " + empty.path.string() + " -o " + (out.path / "y.nii").string());
  EXPECT_EQ(r.code, 3);
  EXPECT_FALSE(fs::exists(out.path / "y.nii"));

  r = run("convert " + dir.path.string() + " -o /nonexistent_aneura/y.nii");
  EXPECT_EQ(r.code, 7);
  EXPECT_NE(r.out.find("(/nonexistent_aneura)"), std::string::npos) << r.out;

  r = run("convert " + dir.path.string() + " -o " + (out.path / "y.png").string());
  EXPECT_EQ(r.code, 2);

  r = run("convert " + dir.path.string() + " --series 1.2.3 -o " + (out.path / "y.nii").string());
  EXPECT_EQ(r.code, 5);
  for (const auto& e : fs::directory_iterator(out.path)) EXPECT_EQ(e.path().filename(), "x.nii.gz");
}

TEST(Cli, SynthWritesADatasetAndRefusesToOverwrite) {
  test::TempDir dir("cli_synth");
  const std::string out = (dir.path / "data").string();
  CliRun r = run("synth " + out + " --n 3 --size tiny --seed 4 -q");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(dir.path / "data" / "train.csv"));
  r = run("synth " + out + " --n 3 --size tiny -q");
  EXPECT_EQ(r.code, 7);
  EXPECT_NE(r.out.find("use --force"), std::string::npos) << r.out;
  EXPECT_EQ(run("synth " + out + " --n 3 --size tiny -q --force").code, 0);
  EXPECT_EQ(run("synth " + out + "2 --n 0 --size tiny -q").code, 2);
  EXPECT_EQ(run("synth " + out + "2 --size huge").code, 2);
  EXPECT_FALSE(fs::exists(out + "2"));
}

TEST(Cli, PreprocessBuildsCasesAndSaysPartialOnFailures) {
  test::TempDir dir("cli_prep");
  const std::string data = (dir.path / "data").string(), work = (dir.path / "work").string();
  ASSERT_EQ(run("synth " + data + " --n 3 --size tiny --seed 8 -q").code, 0);
  CliRun r = run("preprocess " + data + " " + work + " --spacing 3 -q");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(fs::exists(dir.path / "work" / "manifest.jsonl"));
  fs::create_directories(dir.path / "data" / "series" / "1.2.3.999");
  std::ofstream(dir.path / "data" / "series" / "1.2.3.999" / "x.dcm") << "junk";
  r = run("preprocess " + data + " " + work + " --spacing 3 -q");
  EXPECT_EQ(r.code, 8) << r.out;
  EXPECT_NE(r.out.find("3 already there, 1 failed"), std::string::npos) << r.out;
  EXPECT_EQ(run("preprocess " + (dir.path / "nothing").string() + " " + work).code, 9);
}

// Sharded preprocessing: 3 shards (one through a SLURM job array's variables), then a plain run,
// give the cases, QA pictures and manifest lines of one plain run; each series is built once.
TEST(Cli, PreprocessShardsThenAPlainRunEqualOnePlainRun) {
  test::TempDir dir("cli_shard");
  const std::string data = (dir.path / "data").string(), sharded = (dir.path / "sharded").string(),
                    plain = (dir.path / "plain").string();
  ASSERT_EQ(run("synth " + data + " --n 7 --size tiny --seed 6 -q").code, 0);
  const std::string opts = " --spacing 3 --qa 3 --workers 1 -q";
  CliRun r = run("preprocess " + data + " " + sharded + opts + " --shard 0/3");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("shard 0 of 3: 3 of 7 series"), std::string::npos) << r.out;
  r = run_with_env("SLURM_ARRAY_TASK_ID=11 SLURM_ARRAY_TASK_MIN=10 SLURM_ARRAY_TASK_COUNT=3",
                   "preprocess " + data + " " + sharded + opts);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("shard 1 of 3: 2 of 7 series"), std::string::npos) << r.out;
  ASSERT_EQ(run("preprocess " + data + " " + sharded + opts + " --shard 2/3").code, 0);
  r = run("preprocess " + data + " " + sharded + opts);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("0 built, 7 already there, 0 failed"), std::string::npos) << r.out;
  ASSERT_EQ(run("preprocess " + data + " " + plain + opts).code, 0);
  auto listing = [](const fs::path& d) {
    std::set<std::string> names;
    if (fs::exists(d))
      for (const auto& e : fs::directory_iterator(d)) names.insert(e.path().filename().string());
    return names;
  };
  const auto ids = listing(fs::path(plain) / "cases");
  ASSERT_EQ(ids.size(), 7u);
  EXPECT_EQ(listing(fs::path(sharded) / "cases"), ids);
  EXPECT_EQ(listing(fs::path(plain) / "qa").size(), 3u);
  EXPECT_EQ(listing(fs::path(sharded) / "qa"), listing(fs::path(plain) / "qa"));
  auto bytes = [](const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto without_seconds = [&](const fs::path& f) {  // the timings differ from run to run
    auto j = nlohmann::json::parse(bytes(f));
    j.erase("seconds");
    j.erase("timing_s");
    for (auto& step : j["steps"]) step.erase("seconds");
    return j;
  };
  for (const auto& id : ids) {
    EXPECT_EQ(bytes(fs::path(sharded) / "cases" / id / "image.nii"),
              bytes(fs::path(plain) / "cases" / id / "image.nii"))
        << id;
    EXPECT_EQ(without_seconds(fs::path(sharded) / "cases" / id / "case.json"),
              without_seconds(fs::path(plain) / "cases" / id / "case.json"))
        << id;
  }
  // every series built exactly once, by one shard, each shard in its own manifest
  std::multiset<std::string> built;
  for (const char* m : {"manifest.shard-0-of-3.jsonl", "manifest.shard-1-of-3.jsonl", "manifest.shard-2-of-3.jsonl"}) {
    std::ifstream in(fs::path(sharded) / m);
    ASSERT_TRUE(in) << m;
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      EXPECT_EQ(j["status"], "ok") << line;
      built.insert(j["id"].get<std::string>());
    }
  }
  EXPECT_EQ(built, std::multiset<std::string>(ids.begin(), ids.end()));
  // bad shards
  for (const char* bad : {"3/3", "1/0", "a/b", "1", "-1/2"})
    EXPECT_EQ(run("preprocess " + data + " " + sharded + " --shard " + bad).code, 2) << bad;
  EXPECT_EQ(run_with_env("SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=3", "preprocess " + data + " " + sharded).code,
            2);
}

// `aneura merge`: the parts of a sharded predict, row k of part i being item i + k N of the batch.
TEST(Cli, MergeJoinsShardPartsInTheBatchOrderAndRefusesBadSets) {
  test::TempDir dir("cli_merge");
  auto part = [&](const std::string& name, const std::string& text) { std::ofstream(dir.path / name) << text; };
  const std::string out = (dir.path / "p.csv").string();
  EXPECT_EQ(run("merge " + out).code, 9);  // no parts
  part("p.shard-0-of-3.csv", "SeriesInstanceUID,Aneurysm Present\n1.1,0.5\n1.4,0.25\n");
  part("p.shard-1-of-3.csv", "SeriesInstanceUID,Aneurysm Present\n1.2,\"0,75\"\n");
  CliRun r = run("merge " + out);
  EXPECT_EQ(r.code, 9) << r.out;  // part 2 missing, named
  EXPECT_NE(r.out.find("p.shard-2-of-3.csv"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
  part("p.shard-2-of-3.csv", "SeriesInstanceUID,Aneurysm Present\n1.3,1\n");
  r = run("merge " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(out);
  const std::string merged(std::istreambuf_iterator<char>(in), {});
  EXPECT_EQ(merged, "SeriesInstanceUID,Aneurysm Present\n1.1,0.5\n1.2,\"0,75\"\n1.3,1\n1.4,0.25\n");
  // a repeated series, a different header, parts of another shard count: exit 4, nothing written
  fs::remove(out);
  part("p.shard-2-of-3.csv", "SeriesInstanceUID,Aneurysm Present\n1.1,1\n");
  EXPECT_EQ(run("merge " + out).code, 4);
  part("p.shard-2-of-3.csv", "SeriesInstanceUID,Present\n1.3,1\n");
  EXPECT_EQ(run("merge " + out).code, 4);
  part("p.shard-2-of-3.csv", "SeriesInstanceUID,Aneurysm Present\n1.3,1\n");
  part("p.shard-0-of-2.csv", "SeriesInstanceUID,Aneurysm Present\n1.9,1\n");
  EXPECT_EQ(run("merge " + out).code, 4);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace aneura
