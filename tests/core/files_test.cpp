#include <gtest/gtest.h>

#include <fstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/uid.hpp"
#include "support/series_fixture.hpp"

namespace fs = std::filesystem;

namespace aneura {
namespace {

TEST(Uid, AcceptsOnlyDicomUids) {
  EXPECT_TRUE(is_valid_uid("1.2.826.0.1.3680043.8.498.1"));
  EXPECT_TRUE(is_valid_uid("0"));
  EXPECT_FALSE(is_valid_uid(""));
  EXPECT_FALSE(is_valid_uid("../etc"));
  EXPECT_FALSE(is_valid_uid("1..2"));
  EXPECT_FALSE(is_valid_uid("1.02"));
  EXPECT_FALSE(is_valid_uid("1.2."));
  EXPECT_FALSE(is_valid_uid("1.2/3"));
  EXPECT_FALSE(is_valid_uid(std::string(65, '1')));
  EXPECT_THROW(require_valid_uid("a/b", "test"), Error);
}

TEST(AtomicFile, WritesCompleteFileOrNothing) {
  test::TempDir dir("atomic");
  const fs::path dest = dir.path / "out.json";
  write_text_atomically(dest, "{}");
  std::ifstream in(dest);
  std::string s;
  in >> s;
  EXPECT_EQ(s, "{}");

  const fs::path failed = dir.path / "failed.nii.gz";
  EXPECT_THROW(write_atomically(failed,
                                [](const fs::path& tmp) {
                                  EXPECT_EQ(tmp.string().substr(tmp.string().size() - 7), ".nii.gz");
                                  std::ofstream(tmp) << "partial";
                                  throw std::runtime_error("disk full");
                                }),
               Error);
  EXPECT_FALSE(fs::exists(failed));
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir.path)) n += e.path().filename() != "out.json";
  EXPECT_EQ(n, 0u) << "temporary file left behind";
}

TEST(AtomicFile, MissingFolderIsAClearError) {
  try {
    write_text_atomically("/nonexistent_aneura_dir/x.json", "{}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::OutputFailed);
    EXPECT_EQ(e.where(), "/nonexistent_aneura_dir");
  }
}

TEST(Parallel, RunsEveryIndexOnceAndRethrows) {
  std::vector<int> hits(1000, 0);
  parallel_for(hits.size(), 4, [&](size_t i) { hits[i]++; });
  for (int h : hits) ASSERT_EQ(h, 1);
  EXPECT_THROW(parallel_for(10, 2,
                            [](size_t i) {
                              if (i == 5) throw std::runtime_error("x");
                            }),
               std::runtime_error);
  EXPECT_GE(default_threads(), 1u);
}

}  // namespace
}  // namespace aneura
