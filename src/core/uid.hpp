// DICOM UID validation. A UID (or any name read from a file) only becomes part of a path after
// is_valid_uid() accepted it: digits and dots, no empty or leading-zero components, <= 64 chars.
#pragma once
#include <string>

namespace aneura {

bool is_valid_uid(const std::string& uid);
// Throws Error(CorruptInput) naming `where` unless is_valid_uid(uid); returns uid.
const std::string& require_valid_uid(const std::string& uid, const std::string& where);

// A name safe as one path component: 1..128 of [A-Za-z0-9._-], starting with a letter or digit
// (so never "." or ".."). Used for case ids of non-DICOM sources.
bool is_safe_name(const std::string& name);

}  // namespace aneura
