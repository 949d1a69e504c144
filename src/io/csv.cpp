#include "io/csv.hpp"

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/shard.hpp"

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

std::string csv_quote(const std::string& field) {
  if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
  std::string q = "\"";
  for (char c : field) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

size_t merge_shard_csvs(const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  const fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  // parts: <stem>.shard-<I>-of-<N><extension> (shard_file)
  const std::string prefix = out.stem().string() + ".shard-", ext = out.extension().string();
  static const std::regex index_of_count(R"(([0-9]+)-of-([0-9]+))");
  std::map<int, fs::path> parts;
  std::set<int> counts;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() + ext.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - ext.size(), ext.size(), ext) != 0)
      continue;
    const std::string middle = name.substr(prefix.size(), name.size() - prefix.size() - ext.size());
    std::smatch m;
    if (!std::regex_match(middle, m, index_of_count)) continue;
    counts.insert(std::stoi(m[2].str()));
    parts[std::stoi(m[1].str())] = it->path();
  }
  if (parts.empty())
    throw Error(ErrorCode::InputNotFound,
                "no shard parts to merge (" + out.stem().string() + ".shard-I-of-N" + out.extension().string() + ")",
                dir.string());
  if (counts.size() > 1)
    throw Error(ErrorCode::CorruptInput,
                "shard parts of different shard counts (" + std::to_string(*counts.begin()) + " and " +
                    std::to_string(*counts.rbegin()) + ")",
                dir.string());
  const int n = *counts.begin();
  std::vector<CsvTable> tables;
  for (int i = 0; i < n; ++i) {
    const fs::path expected = shard_file(out, Shard{i, n});
    if (!parts.count(i)) throw Error(ErrorCode::InputNotFound, "shard part missing", expected.string());
    tables.push_back(read_csv(expected));
    if (tables.back().header != tables.front().header)
      throw Error(ErrorCode::CorruptInput, "the header differs from part 0's", expected.string());
  }
  std::ostringstream text;
  auto line = [&](const std::vector<std::string>& fields) {
    for (size_t k = 0; k < fields.size(); ++k) text << (k ? "," : "") << csv_quote(fields[k]);
    text << "\n";
  };
  line(tables.front().header);
  std::set<std::string> keys;
  size_t rows = 0;
  for (size_t r = 0;; ++r) {
    bool any = false;
    for (int i = 0; i < n; ++i) {
      if (r >= tables[i].rows.size()) continue;
      any = true;
      const auto& row = tables[i].rows[r];
      if (!row.empty() && !keys.insert(row[0]).second)
        throw Error(ErrorCode::CorruptInput, "'" + row[0] + "' appears in more than one row",
                    shard_file(out, Shard{i, n}).string());
      line(row);
      ++rows;
    }
    if (!any) break;
  }
  write_text_atomically(out, text.str());
  return rows;
}

}  // namespace aneura
