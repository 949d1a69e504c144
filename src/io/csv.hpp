// Minimal RFC 4180 CSV reading (quoted fields with "" escapes), as train.csv and
// train_localizers.csv need: one record per line.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace aneura {

std::vector<std::string> split_csv_line(const std::string& line);
// One field as written to a CSV file: quoted (with "" escapes) when it holds a comma, a quote or a
// line break; split_csv_line reads it back.
std::string csv_quote(const std::string& field);

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> line_numbers;  // 1-based source line of each row
  // Index of a header column; throws Error(CorruptInput) naming the file when missing.
  size_t column(const std::string& name, const std::filesystem::path& file) const;
};

// Reads a CSV file with a header row; every row must have the header's field count.
CsvTable read_csv(const std::filesystem::path& file);

// Merges the parts that the N shards of a batch wrote beside `out` (name.shard-I-of-N.ext,
// core/shard.hpp) into `out`, atomically: every part 0..N-1 must be there with the same header,
// and a first-column key may appear once only. Part I held items I, I + N, ... of the batch's
// sorted items, so the rows are taken in turn from each part, which restores that order.
// Returns the number of rows. Throws Error(InputNotFound) naming a missing part, (CorruptInput)
// for different headers, parts of different N or a repeated key, (OutputFailed).
size_t merge_shard_csvs(const std::filesystem::path& out);

}  // namespace aneura
