// Minimal RFC 4180 CSV reading (quoted fields with "" escapes), as train.csv and
// train_localizers.csv need: one record per line.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace aneura {

std::vector<std::string> split_csv_line(const std::string& line);

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> line_numbers;  // 1-based source line of each row
  // Index of a header column; throws Error(CorruptInput) naming the file when missing.
  size_t column(const std::string& name, const std::filesystem::path& file) const;
};

// Reads a CSV file with a header row; every row must have the header's field count.
CsvTable read_csv(const std::filesystem::path& file);

}  // namespace aneura
