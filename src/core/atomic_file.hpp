// Never leave a partial output: write to a temporary name in the destination folder, then rename.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace aneura {

// Calls write(tmp_path) where tmp_path sits beside `dest` and ends with the same extension(s)
// (".nii.gz" stays ".nii.gz", so format detection by name still works), then renames it onto
// `dest`. On any exception the temporary file is removed and the exception propagates.
// Throws Error(OutputFailed) naming `dest` when the folder is missing or not writable.
void write_atomically(const std::filesystem::path& dest,
                      const std::function<void(const std::filesystem::path& tmp)>& write);

// Convenience for text outputs (JSON, CSV).
void write_text_atomically(const std::filesystem::path& dest, const std::string& text);

}  // namespace aneura
