#include "proxy/secrets/run_command.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/mem.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "proxy/common/descriptor_reserve.hpp"
#include "proxy/common/duration.hpp"
#include "proxy/secrets/process_group_look.hpp"

extern char** environ;

namespace mailtap::secrets {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTick = std::chrono::milliseconds(50);
// Once the command has exited, how long its output may still be read from the pipe.
constexpr auto kExitGrace = std::chrono::milliseconds(100);
// A command being killed (timeout, shutdown) gets this long after SIGTERM before SIGKILL: short,
// because a shutdown waits for it.
constexpr auto kKillGrace = std::chrono::milliseconds(500);

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

struct SpawnAttributes {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnAttributes() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnAttributes() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
};

std::string errno_text(int e) {
  return std::strerror(e);
}

// Takes the terminal back for mailtap's process group once the helper's group is done with it.
// mailtap is in the background at that moment, so SIGTTOU must be blocked for the call.
void take_terminal_back() {
  sigset_t ttou;
  sigset_t saved;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &saved);
  ::tcsetpgrp(STDIN_FILENO, ::getpgrp());
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

// Whether the child has exited, without reaping it: its zombie keeps its pid, so its process
// group's id cannot be reused while the rest of the group is signalled.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno != EINTR;
  return info.si_pid == pid;
}

// Ends the child and its process group: SIGTERM first, so a helper can tidy up (a lock file, a
// half-written cache), then SIGKILL for whatever is left after kKillGrace (the zombie of the
// leader, not yet reaped, is a member that keeps the group's id from being reused). Returns the
// wait status (-1: waiting failed).
int kill_and_reap(pid_t pid) {
  ::kill(-pid, SIGTERM);
  // The shell dies of SIGTERM at once; the commands it runs may take a moment to tidy up. The
  // leader's zombie stays in the group (kill(-pid, 0) still finds it): the group is gone once
  // no other member lives.
  const auto group_gone = [pid] { return has_exited(pid) && !process_group_alive(pid); };
  const Clock::time_point until = Clock::now() + kKillGrace;
  while (!group_gone() && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

// Reaps the child: waits until the deadline or cancellation (a command that closed its stdout
// may still run for long), then kills it and its group and waits for good.
int reap(pid_t pid, Clock::time_point deadline, bool kill_now, const std::atomic<bool>* cancel) {
  int status = 0;
  if (!kill_now) {
    for (;;) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) return status;
      if (r < 0 && errno != EINTR) return -1;
      if (Clock::now() >= deadline || (cancel && cancel->load())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return kill_and_reap(pid);
}

// The child's stdout is `stdout_fd`; its stdin is /dev/null unless `interactive`, and the
// terminal's foreground process group when `hand_terminal`. It runs in a new process group.
// Returns 0, or the errno that makes the command unsafe to run.
int prepare_spawn(SpawnAttributes& spawn, int stdout_fd, bool interactive, bool hand_terminal) {
  posix_spawn_file_actions_adddup2(&spawn.actions, stdout_fd, STDOUT_FILENO);
  if (!interactive) {
    posix_spawn_file_actions_addopen(&spawn.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  } else if (hand_terminal) {
    posix_spawn_file_actions_addtcsetpgrp_np(&spawn.actions, STDIN_FILENO);
  }
  // Asio opens the listening socket and every session's sockets without close-on-exec, and
  // another thread may open one while the command starts: the child closes all of them itself.
  // An agent the helper leaves running (oama, pizauth) would otherwise keep the port bound after
  // mailtap exits and could read and write the plain-text client sessions. glibc closes with
  // close_range, or through /proc/self/fd where the kernel lacks it.
  if (const int e = posix_spawn_file_actions_addclosefrom_np(&spawn.actions, STDERR_FILENO + 1))
    return e;
  const short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP;
  posix_spawnattr_setpgroup(&spawn.attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&spawn.attr, &none);
  // Ignored signals stay ignored across exec: give the helper the defaults it expects.
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2})
    sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&spawn.attr, &defaults);
  posix_spawnattr_setflags(&spawn.attr, flags);
  return 0;
}

// Adds `n` bytes of output (with first_line_only, those up to the first newline; the output
// then ends with it once it came, and the rest is dropped); false (status too_much_output)
// when they do not fit.
bool keep_output(const char* buf, ssize_t n, bool first_line_only, CommandResult& result) {
  std::string_view chunk(buf, static_cast<std::size_t>(n));
  if (first_line_only) {
    const std::string_view kept = result.output.view();
    if (!kept.empty() && kept.back() == '\n') return true;
    if (const std::size_t nl = chunk.find('\n'); nl != std::string_view::npos)
      chunk = chunk.substr(0, nl + 1);
  }
  if (result.output.append(chunk)) return true;
  result.status = CommandResult::Status::too_much_output;
  return false;
}

// The first line of `kept` without its end (LF or CRLF); `kept` holds no more than that line.
std::size_t first_line_length(std::string_view kept) {
  if (!kept.empty() && kept.back() == '\n') kept.remove_suffix(1);
  if (!kept.empty() && kept.back() == '\r') kept.remove_suffix(1);
  return kept.size();
}

// The command has exited: takes what is already in the pipe, without waiting for an EOF that a
// child it left in the background (an agent started on first use) may hold back. True when
// the output cannot be used (too much of it, or a read error).
bool take_what_is_left(int fd, bool first_line_only, CommandResult& result, char (&buf)[4096]) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  const Clock::time_point until = Clock::now() + kExitGrace;  // against a helper still writing
  while (Clock::now() < until) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) return false;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result.error = "cannot read the command's output: " + errno_text(errno);
      return true;
    }
    if (!keep_output(buf, n, first_line_only, result)) return true;
  }
  return false;
}

// How watching the command ended: whether it must be killed, and its wait status when it exited
// while its output was read.
struct Watch {
  bool kill_now = false;
  std::optional<int> status;
};

// Reads the command's output into `result` until it exits, its stdout's EOF, the deadline,
// cancellation, too much output or a read error.
Watch watch_command(pid_t pid, int fd, Clock::time_point deadline, const CommandOptions& options,
                    CommandResult& result) {
  char buf[4096];
  Watch w;
  for (;;) {
    if (options.cancel && options.cancel->load()) {
      result.status = CommandResult::Status::cancelled;
      w.kill_now = true;
      break;
    }
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      result.status = CommandResult::Status::timed_out;
      w.kill_now = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    const auto wait = std::min<Clock::duration>(left, kTick);
    const int ready =
        ::poll(&p, 1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
    if (ready < 0 && errno != EINTR) {
      result.status = CommandResult::Status::not_started;
      result.error = "cannot read the command's output: " + errno_text(errno);
      w.kill_now = true;
      break;
    }
    if (ready > 0) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno != EINTR && errno != EAGAIN) {
        result.error = "cannot read the command's output: " + errno_text(errno);
        w.kill_now = true;
        break;
      }
      if (n == 0) break;  // EOF: reap() waits for the exit
      if (n > 0 && !keep_output(buf, n, options.first_line_only, result)) {
        w.kill_now = true;
        break;
      }
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      w.status = status;
      w.kill_now = take_what_is_left(fd, options.first_line_only, result, buf);
      break;
    }
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return w;
}

// The outcome of a command that ran to its end, from its wait status (-1: waiting failed).
void record_exit(int status, Clock::time_point deadline, CommandResult& result) {
  if (status < 0) {
    result.status = CommandResult::Status::not_started;
    result.error = "cannot wait for the command: " + errno_text(errno);
  } else if (WIFEXITED(status)) {
    result.status = CommandResult::Status::exited;
    result.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.status = CommandResult::Status::signalled;
    result.code = WTERMSIG(status);
  }
  // The deadline also passed while waiting for a command that closed its stdout.
  if (result.status == CommandResult::Status::signalled && Clock::now() >= deadline) {
    result.status = CommandResult::Status::timed_out;
  }
}

// What /proc/`name`/stat says of the process /proc listed as `name`, read into `stat` (its
// first sizeof stat - 1 octets, which hold the fields up to the process group); where it cannot
// be read, what getpgid() says.
ProcessSeen see_process(const char* name, char (&stat)[512]) {
  ProcessSeen seen;
  // Room for any name readdir can give (d_name), so the path is never cut.
  char path[sizeof "/proc//stat" + sizeof(dirent::d_name)];
  std::snprintf(path, sizeof path, "/proc/%s/stat", name);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = -1;
  if (fd >= 0) {
    n = ::read(fd, stat, sizeof stat - 1);
    if (n < 0) seen.stat_error = errno;
    ::close(fd);
  } else {
    seen.stat_error = errno;
  }
  if (seen.stat_error == 0) {
    seen.stat = std::string_view(stat, static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    return seen;
  }
  seen.group = ::getpgid(static_cast<pid_t>(std::strtol(name, nullptr, 10)));
  if (seen.group < 0) seen.group_error = errno;
  return seen;
}

}  // namespace

bool process_group_alive(pid_t pgid) {
  ProcessGroupLook look(pgid, ::kill(-pgid, 0) == 0 ? 0 : errno);
  if (look.settled()) return look.alive();
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    look.no_listing();
    return look.alive();
  }
  while (const dirent* entry = ::readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    char stat[512];
    look.seen(see_process(entry->d_name, stat));
    if (look.settled()) break;
  }
  ::closedir(proc);
  return look.alive();
}

CommandResult run_command(const std::string& command, const CommandOptions& options) {
  CommandResult result;
  // With first_line_only, max_output bounds the line: its end (LF or CRLF) has room of its own.
  result.output = smtp::Secret(options.max_output + (options.first_line_only ? 2 : 0));
  int pipe_fds[2];
  // In the proxy, a token command runs while sessions and the recorder exchange their reserves
  // for a socket or a body file: under their lock, its pipe never takes the slot one of them has
  // just given up (it would hold it for as long as the command runs).
  if (auto lock = descriptors_lock(); ::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.error = "cannot create a pipe: " + errno_text(errno);
    return result;
  }
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);

  SpawnAttributes spawn;
  const bool hand_terminal = options.interactive && ::isatty(STDIN_FILENO) == 1 &&
                             ::tcgetpgrp(STDIN_FILENO) == ::getpgrp();
  if (const int e = prepare_spawn(spawn, write_end.get(), options.interactive, hand_terminal)) {
    result.error = "cannot prepare to run /bin/sh: " + errno_text(e);
    return result;
  }

  std::string shell_command = command;  // posix_spawn wants char*, not const char*
  char sh[] = "sh";
  char dash_c[] = "-c";
  char* argv[] = {sh, dash_c, shell_command.data(), nullptr};
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, "/bin/sh", &spawn.actions, &spawn.attr, argv, environ);
  if (spawned != 0) {
    result.error = "cannot run /bin/sh: " + errno_text(spawned);
    return result;
  }
  write_end.reset();  // our copy: EOF comes when the command's side closes

  const Clock::time_point deadline = Clock::now() + options.timeout;
  const Watch watch = watch_command(pid, read_end.get(), deadline, options, result);
  const bool kill_now = watch.kill_now;

  // A command that exited is not killed: what it left running is not a hang of its own.
  const int status = watch.status ? *watch.status : reap(pid, deadline, kill_now, options.cancel);
  if (hand_terminal) take_terminal_back();
  if (kill_now) {
    if (!result.error.empty()) result.status = CommandResult::Status::not_started;
    result.output.clear();
    return result;
  }
  record_exit(status, deadline, result);
  if (hand_terminal && result.status == CommandResult::Status::signalled && result.code == SIGINT)
    result.status = CommandResult::Status::interrupted;
  // Cancelled after its stdout's EOF, while waiting for its exit: killed for the cancel.
  if (options.cancel && options.cancel->load() && result.status != CommandResult::Status::exited)
    result.status = CommandResult::Status::cancelled;
  if (options.first_line_only && result.ok() &&
      first_line_length(result.output.view()) > options.max_output)
    result.status = CommandResult::Status::too_much_output;
  if (!result.ok()) result.output.clear();
  return result;
}

std::string describe_failure(std::string_view option, const CommandResult& r,
                             const CommandOptions& options) {
  const std::string who(option);
  switch (r.status) {
    case CommandResult::Status::exited:
      if (r.code == 127) return who + " exited with status 127 (command not found?)";
      return who + " exited with status " + std::to_string(r.code);
    case CommandResult::Status::signalled:
      return who + " was killed by signal " + std::to_string(r.code) + " (" + strsignal(r.code) +
             ")";
    case CommandResult::Status::interrupted:
      return who + " was interrupted (Ctrl-C)";
    case CommandResult::Status::timed_out:
      return who + " did not finish within " + format_setting_duration(options.timeout) +
             " and was killed";
    case CommandResult::Status::cancelled:
      return who + " was stopped: mailtap is shutting down";
    case CommandResult::Status::too_much_output:
      if (options.first_line_only)
        return who + " printed a first line longer than " + std::to_string(options.max_output) +
               " bytes; a secret helper prints the secret on its first line";
      return who + " printed more than " + std::to_string(options.max_output) +
             " bytes; a secret helper prints one line";
    case CommandResult::Status::not_started:
      return who + ": " + r.error;
  }
  return who + " failed";
}

}  // namespace mailtap::secrets
