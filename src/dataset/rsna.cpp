#include "dataset/rsna.hpp"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "core/error.hpp"
#include "core/uid.hpp"
#include "io/csv.hpp"

namespace fs = std::filesystem;

namespace aneura {

void parse_coordinates(const std::string& s, Localizer& out) {
  auto number = [&](const char* key, bool required, double& value) {
    const std::string k = std::string("'") + key + "'";
    const size_t at = s.find(k);
    if (at == std::string::npos) {
      if (required) throw Error(ErrorCode::CorruptInput, std::string("coordinates lack ") + k + ": " + s);
      return false;
    }
    const size_t colon = s.find(':', at + k.size());
    if (colon == std::string::npos) throw Error(ErrorCode::CorruptInput, "coordinates are malformed: " + s);
    const char* start = s.c_str() + colon + 1;
    char* end = nullptr;
    value = std::strtod(start, &end);
    if (end == start) throw Error(ErrorCode::CorruptInput, std::string("coordinate ") + k + " is not a number: " + s);
    return true;
  };
  number("x", true, out.x);
  number("y", true, out.y);
  double f = 0;
  out.frame = number("f", false, f) ? static_cast<int>(f) : 0;
}

fs::path RsnaDataset::series_dir(const std::string& uid) const {
  return root / "series" / require_valid_uid(uid, (root / "series").string());
}

std::optional<fs::path> RsnaDataset::cowseg(const std::string& uid) const {
  const fs::path p = root / "segmentations" / (require_valid_uid(uid, root.string()) + "_cowseg.nii");
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p;
  return std::nullopt;
}

RsnaDataset read_rsna(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error(ErrorCode::InputNotFound, "dataset folder not found", root.string());
  RsnaDataset d;
  d.root = root;
  std::set<std::string> known;
  const fs::path train = root / "train.csv";
  if (fs::exists(train, ec)) {
    const CsvTable t = read_csv(train);
    const size_t c_uid = t.column("SeriesInstanceUID", train), c_mod = t.column("Modality", train);
    std::array<size_t, kNumLabels> c_lab{};
    for (int c = 0; c < kNumLabels; ++c) c_lab[c] = t.column(label_names()[c], train);
    const auto opt = [&](const char* name) -> std::optional<size_t> {
      for (size_t i = 0; i < t.header.size(); ++i)
        if (t.header[i] == name) return i;
      return std::nullopt;
    };
    const auto c_age = opt("PatientAge"), c_sex = opt("PatientSex");
    for (size_t r = 0; r < t.rows.size(); ++r) {
      const auto& row = t.rows[r];
      const std::string where = train.string() + ":" + std::to_string(t.line_numbers[r]);
      SeriesEntry e;
      e.uid = require_valid_uid(row[c_uid], where);
      e.modality = row[c_mod];
      if (c_age) e.age = row[*c_age];
      if (c_sex) e.sex = row[*c_sex];
      for (int c = 0; c < kNumLabels; ++c) {
        const std::string& v = row[c_lab[c]];
        if (v != "0" && v != "1")
          throw Error(ErrorCode::CorruptInput, "label '" + label_names()[c] + "' must be 0 or 1, not '" + v + "'",
                      where);
        e.labels[c] = v == "1";
      }
      e.labelled = true;
      if (!known.insert(e.uid).second) throw Error(ErrorCode::CorruptInput, "series listed twice: " + e.uid, where);
      d.series.push_back(e);
    }
  }
  const fs::path locs = root / "train_localizers.csv";
  if (fs::exists(locs, ec)) {
    const CsvTable t = read_csv(locs);
    const size_t c_uid = t.column("SeriesInstanceUID", locs), c_sop = t.column("SOPInstanceUID", locs),
                 c_xy = t.column("coordinates", locs), c_loc = t.column("location", locs);
    for (size_t r = 0; r < t.rows.size(); ++r) {
      const auto& row = t.rows[r];
      const std::string where = locs.string() + ":" + std::to_string(t.line_numbers[r]);
      Localizer l;
      l.series_uid = require_valid_uid(row[c_uid], where);
      l.sop_uid = require_valid_uid(row[c_sop], where);
      try {
        parse_coordinates(row[c_xy], l);
      } catch (const Error& e) {
        throw Error(e.code(), e.what(), where);
      }
      const auto col = label_index(row[c_loc]);
      if (!col || *col == kPresentColumn)
        throw Error(ErrorCode::CorruptInput, "unknown location '" + row[c_loc] + "'", where);
      l.column = *col;
      d.localizers[l.series_uid].push_back(l);
    }
  }
  // Series folders without a train.csv row (test-time data, or extra series): unlabelled.
  if (fs::is_directory(root / "series", ec)) {
    std::vector<std::string> extra;
    for (const auto& e : fs::directory_iterator(root / "series", ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_directory(ec) && is_valid_uid(name) && !known.count(name)) extra.push_back(name);
    }
    std::sort(extra.begin(), extra.end());
    for (const auto& uid : extra) {
      SeriesEntry e;
      e.uid = uid;
      d.series.push_back(e);
    }
  }
  if (d.series.empty())
    throw Error(ErrorCode::NoDicom, "no series: neither train.csv rows nor series/<uid> folders", root.string());
  return d;
}

}  // namespace aneura
