#include "io/external_decoder.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;

namespace aneura {

std::optional<fs::path> decompress_jpeg_ls_externally(const std::string& file) {
  std::string tmpl = (fs::temp_directory_path() / "aneura_jls_XXXXXX").string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) return std::nullopt;
  ::close(fd);
  const fs::path out(name.data());

  // No shell: the file name goes to the tool as one argument, whatever it contains.
  std::string tool = "dcmdjpls", in = file, dst = out.string();
  char* argv[] = {tool.data(), in.data(), dst.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "dcmdjpls", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  const bool ok = rc == 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::error_code ec;
  if (!ok || fs::file_size(out, ec) == 0) {
    fs::remove(out, ec);
    return std::nullopt;
  }
  return out;
}

}  // namespace aneura
