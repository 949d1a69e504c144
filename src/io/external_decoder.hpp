// Last-resort decoding through DCMTK's command-line tool, for JPEG-LS streams that Debian's
// GDCM 3.0 / CharLS 2.4 rejects (seen: 16-bit signed WG04 MR1_JLSL). DCMTK carries its own
// JPEG-LS codec; it runs as a separate process because its CharLS fork and GDCM's CharLS export
// the same symbols and crash when linked into one program.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace aneura {

// Writes an uncompressed copy of `file` with `dcmdjpls` into a new temporary file and returns
// its path (the caller removes it), or nullopt when the tool is missing or fails.
std::optional<std::filesystem::path> decompress_jpeg_ls_externally(const std::string& file);

}  // namespace aneura
