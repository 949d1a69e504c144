// `aneura launch`: the ranks of a data-parallel `train` or `pretrain` on this machine, as torchrun
// starts them.
// Each rank is this program again with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR
// and MASTER_PORT set. The launcher waits for them; when one fails it stops the others (SIGTERM,
// then SIGKILL after --kill-after seconds) and exits with the failed rank's code. SIGINT / SIGTERM
// to the launcher are passed on to the ranks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "apps/aneura/commands.hpp"
#include "core/error.hpp"

extern char** environ;

namespace aneura::app {

namespace {

volatile std::sig_atomic_t g_signal = 0;
void on_signal(int s) { g_signal = s; }

// A TCP port that is free now on the loopback interface (the master's store binds it next).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(ErrorCode::Internal, std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  if (!ok) throw Error(ErrorCode::Internal, std::string("cannot find a free port: ") + std::strerror(errno));
  return ntohs(a.sin_port);
}

struct LaunchOptions {
  int nproc = 1, nnodes = 1, node_rank = 0;
  std::string master;  // ADDR:PORT
  int kill_after_s = 30;
  std::vector<std::string> command;
};

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

int run_launch(const LaunchOptions& o) {
  if (o.command.empty() || (o.command[0] != "train" && o.command[0] != "pretrain"))
    throw Error(ErrorCode::Usage,
                "launch runs `train` or `pretrain` (the commands that use ranks): aneura launch --nproc N -- train "
                "WORK ...");
  if (o.node_rank >= o.nnodes)
    throw Error(ErrorCode::Usage,
                "--node-rank " + std::to_string(o.node_rank) + " is not below --nnodes " + std::to_string(o.nnodes));
  std::string addr = "127.0.0.1", port;
  if (!o.master.empty()) {
    const auto colon = o.master.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == o.master.size() ||
        o.master.find_first_not_of("0123456789", colon + 1) != std::string::npos)
      throw Error(ErrorCode::Usage, "--master '" + o.master + "' is not ADDR:PORT");
    addr = o.master.substr(0, colon), port = o.master.substr(colon + 1);
  } else if (o.nnodes > 1) {
    throw Error(ErrorCode::Usage, "--nnodes > 1 needs --master ADDR:PORT (the first node's address)");
  } else {
    port = std::to_string(free_port());
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(ErrorCode::Internal, "cannot find this program: " + ec.message(), "/proc/self/exe");

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const int world = o.nproc * o.nnodes;
  std::map<pid_t, int> running;  // pid -> rank
  auto stop_all = [&](int sig) {
    for (const auto& [pid, rank] : running) kill(pid, sig);
  };
  for (int local = 0; local < o.nproc; ++local) {
    const int rank = o.node_rank * o.nproc + local;
    std::map<std::string, std::string> vars = {{"RANK", std::to_string(rank)},
                                               {"WORLD_SIZE", std::to_string(world)},
                                               {"LOCAL_RANK", std::to_string(local)},
                                               {"LOCAL_WORLD_SIZE", std::to_string(o.nproc)},
                                               {"MASTER_ADDR", addr},
                                               {"MASTER_PORT", port}};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      const std::string s(*e);
      if (!vars.count(s.substr(0, s.find('=')))) env.push_back(s);
    }
    for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
    std::vector<char*> envp, argv;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = {exe.string()};
    args.insert(args.end(), o.command.begin(), o.command.end());
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (const int rc = posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), envp.data()); rc != 0) {
      stop_all(SIGTERM);
      throw Error(ErrorCode::Internal,
                  std::string("cannot start rank ") + std::to_string(rank) + ": " + std::strerror(rc));
    }
    running[pid] = rank;
  }
  std::cerr << "launch: " << o.nproc << " rank(s) of " << world << " started, master " << addr << ":" << port << "\n";

  int code = 0;
  std::optional<std::chrono::steady_clock::time_point> kill_at;
  while (!running.empty()) {
    if (g_signal && !kill_at) {
      std::cerr << "launch: " << strsignal(g_signal) << ": stopping the ranks\n";
      stop_all(SIGTERM);
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(o.kill_after_s);
      code = 128 + g_signal;
    }
    if (kill_at && std::chrono::steady_clock::now() > *kill_at) stop_all(SIGKILL);
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const int rank = it->second;
    running.erase(it);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && !kill_at) {
      std::cerr << "launch: rank " << rank << " " << describe(status)
                << (running.empty() ? "" : "; stopping the other ranks") << "\n";
      code = WIFEXITED(status) ? WEXITSTATUS(status) : static_cast<int>(ErrorCode::Distributed);
      stop_all(SIGTERM);
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(o.kill_after_s);
    }
  }
  return code;
}

}  // namespace

void add_launch(CLI::App& app, Action& action) {
  auto o = std::make_shared<LaunchOptions>();
  auto* cmd = app.add_subcommand("launch",
                                 "Start the ranks of a data-parallel train or pretrain on this machine (as torchrun)");
  cmd->add_option("--nproc", o->nproc, "Ranks on this machine (one per GPU, or a share of the cores each)")
      ->required()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--nnodes", o->nnodes, "Machines in the run")->check(CLI::Range(1, 100000));
  cmd->add_option("--node-rank", o->node_rank, "This machine's index, 0 .. nnodes-1")->check(CLI::NonNegativeNumber);
  cmd->add_option("--master", o->master, "ADDR:PORT of rank 0's store (default: this machine, a free port)");
  cmd->add_option("--kill-after", o->kill_after_s, "Seconds between SIGTERM and SIGKILL when stopping the ranks")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("COMMAND", o->command, "-- train|pretrain WORK [options]")->required();
  cmd->callback([&action, o] { action = [o] { return run_launch(*o); }; });
}

}  // namespace aneura::app
