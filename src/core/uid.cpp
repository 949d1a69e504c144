#include "core/uid.hpp"

#include <cctype>

#include "core/error.hpp"

namespace aneura {

bool is_valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 64) return false;
  size_t start = 0;
  while (start <= uid.size()) {
    size_t end = uid.find('.', start);
    if (end == std::string::npos) end = uid.size();
    const size_t len = end - start;
    if (len == 0) return false;
    for (size_t i = start; i < end; ++i)
      if (uid[i] < '0' || uid[i] > '9') return false;
    if (len > 1 && uid[start] == '0') return false;
    start = end + 1;
  }
  return true;
}

const std::string& require_valid_uid(const std::string& uid, const std::string& where) {
  if (!is_valid_uid(uid))
    throw Error(ErrorCode::CorruptInput, "not a valid DICOM UID: '" + uid.substr(0, 80) + "'", where);
  return uid;
}

bool is_safe_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

}  // namespace aneura
