#include "io/csv.hpp"

#include <fstream>

#include "core/error.hpp"

namespace aneura {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else if (c != '\r' || i + 1 != line.size()) {
      out.back() += c;
    }
  }
  return out;
}

size_t CsvTable::column(const std::string& name, const std::filesystem::path& file) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  throw Error(ErrorCode::CorruptInput, "column '" + name + "' missing from the header", file.string());
}

CsvTable read_csv(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(ErrorCode::InputNotFound, "cannot open CSV file", file.string());
  CsvTable t;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n == 1 && line.size() >= 3 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
    if (line.empty() || line == "\r") continue;
    auto fields = split_csv_line(line);
    if (t.header.empty()) {
      t.header = std::move(fields);
      continue;
    }
    if (fields.size() != t.header.size())
      throw Error(ErrorCode::CorruptInput,
                  "line " + std::to_string(n) + " has " + std::to_string(fields.size()) + " fields, the header " +
                      std::to_string(t.header.size()),
                  file.string());
    t.rows.push_back(std::move(fields));
    t.line_numbers.push_back(n);
  }
  if (t.header.empty()) throw Error(ErrorCode::CorruptInput, "CSV file is empty", file.string());
  return t;
}

}  // namespace aneura
