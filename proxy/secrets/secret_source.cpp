#include "proxy/secrets/secret_source.hpp"

#include <fcntl.h>
#include <openssl/mem.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "proxy/common/private_file.hpp"
#include "proxy/secrets/run_command.hpp"
#include "proxy/secrets/stop_signals.hpp"
#include "proxy/secrets/terminal_prompt.hpp"

namespace mailtap::secrets {
namespace {

constexpr std::size_t kMaxSecret = 64 * 1024;
// What each source may hold beyond the secret: its first line's end, LF or CRLF. So every source
// takes a first line of exactly kMaxSecret octets, and refuses one octet more, alike.
constexpr std::size_t kLineEnd = 2;

SecretRead failed(std::string error) {
  SecretRead r;
  r.error = std::move(error);
  return r;
}

SecretRead first_line_of(smtp::Secret s, const std::string& who) {
  keep_first_line(s);
  if (s.empty()) return failed(who + ": the first line is empty");
  if (s.size() > kMaxSecret) return failed(who + ": the first line is longer than 64 KiB");
  SecretRead r;
  r.secret = std::move(s);
  return r;
}

// Why a start refuses the variable `variable` before reading it, or "".
std::string env_refusal(const std::string& who, const std::string& variable) {
  if (std::getenv(variable.c_str()) == nullptr) return who + ": the variable is not set";
  return {};
}

// Why a start refuses the password file `st` describes before reading it, or "". Pipes
// (--password-file <(pass show x)) belong to this process alone; a file on disk must be private
// to its owner, who must be the user running mailtap (or root).
std::string file_refusal(const std::string& who, const std::string& path, const struct stat& st) {
  if (S_ISDIR(st.st_mode)) return who + ": is a directory";
  if (S_ISREG(st.st_mode)) {
    const PrivacyProblem problem = privacy_problem(st, "a password file");
    if (problem.kind == PrivacyProblem::too_open)
      return who + ": " + problem.reason + " (chmod 600 " + path + ")";
    if (problem.kind != PrivacyProblem::none) return who + ": " + problem.reason;
  } else if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    return who + ": not a regular file or a pipe";
  }
  return {};
}

// Every entry of `variable` wiped where it lies (for inherited ones that is the memory
// /proc/PID/environ shows), not only the one getenv finds: execve allows a name twice. Then
// removed, so no command mailtap runs later inherits it.
void wipe_variable(const std::string& variable) {
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, variable.c_str(), variable.size()) != 0 ||
        (*entry)[variable.size()] != '=')
      continue;
    char* value = *entry + variable.size() + 1;
    OPENSSL_cleanse(value, std::strlen(value));
  }
  ::unsetenv(variable.c_str());
}

}  // namespace

void keep_first_line(smtp::Secret& s) {
  const std::string_view v = s.view();
  std::size_t end = v.find('\n');
  if (end == std::string_view::npos) end = v.size();
  if (end > 0 && v[end - 1] == '\r') --end;
  s.truncate(end);
}

SecretRead read_secret_from_env(const std::string& variable) {
  const std::string who = "--password-env " + variable;
  if (std::string refusal = env_refusal(who, variable); !refusal.empty())
    return failed(std::move(refusal));
  // Only the first line is copied, as --password-file reads only up to its first newline:
  // whatever follows it is none of mailtap's business, and is wiped with the rest.
  const std::string_view value = std::getenv(variable.c_str());
  const std::string_view line = value.substr(0, value.find('\n'));
  if (line.size() > kMaxSecret + kLineEnd) {
    wipe_variable(variable);
    return failed(who + ": the first line is longer than 64 KiB");
  }
  smtp::Secret s = smtp::Secret::copy_of(line);
  wipe_variable(variable);
  return first_line_of(std::move(s), who);
}

SecretRead read_secret_from_file(const std::string& path) {
  const std::string who = "--password-file " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return failed(who + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return failed(who + ": " + std::strerror(errno));
  if (std::string refusal = file_refusal(who, path, st); !refusal.empty())
    return failed(std::move(refusal));
  // Only up to the first newline: the rest of the file is none of mailtap's business.
  smtp::Secret s(kMaxSecret + kLineEnd);
  for (;;) {
    const std::size_t want = std::min<std::size_t>(s.room(), 4096);
    if (want == 0) return failed(who + ": the first line is longer than 64 KiB");
    const std::size_t before = s.size();
    char* at = s.extend(want);
    const ssize_t n = ::read(fd, at, want);
    if (n < 0) {
      s.truncate(before);
      if (errno == EINTR) continue;
      return failed(who + ": " + std::strerror(errno));
    }
    s.truncate(before + static_cast<std::size_t>(n));
    if (n == 0 || std::memchr(at, '\n', static_cast<std::size_t>(n)) != nullptr) break;
  }
  return first_line_of(std::move(s), who);
}

SecretRead read_secret_from_command(const std::string& command, std::string_view option,
                                    std::chrono::milliseconds timeout) {
  const std::string who(option);
  CommandOptions options;
  options.timeout = timeout;
  options.interactive = true;  // a helper may ask for a passphrase on the terminal
  options.max_output = kMaxSecret;
  options.first_line_only = true;  // what follows the first line is read and dropped
  const StopSignalsCaught stop_signals;
  options.cancel = &stop_signals.stop_requested();
  CommandResult r = run_command(command, options);
  // A stop caught at any moment of the run (after the helper's EOF, just after it exited, or
  // the Ctrl-C that also killed the helper) is the outcome: mailtap must not go on to listen.
  if (r.status == CommandResult::Status::cancelled || stop_signals.stop_requested().load()) {
    const int signo = stop_signal_caught();
    const char* name = sigabbrev_np(signo);
    return failed(who + " was ended: mailtap was stopped (SIG" + (name ? name : "?") +
                  ") while it ran");
  }
  if (r.status == CommandResult::Status::interrupted) {
    count_as_stop(SIGINT);  // as if mailtap had got the Ctrl-C: a stop, not a failure
    return failed(who + " was interrupted (Ctrl-C at its prompt): mailtap stops");
  }
  if (!r.ok()) return failed(describe_failure(option, r, options));
  if (r.output.empty()) return failed(who + " printed nothing");
  return first_line_of(std::move(r.output), who);
}

SecretRead read_secret_from_terminal(std::string_view prompt, int in_fd, int out_fd) {
  if (!::isatty(in_fd)) {
    return failed(
        "no secret source was given and standard input is not a terminal to ask on: give "
        "--password-env VAR, --password-file PATH or --password-cmd CMD");
  }
  PromptResult p = prompt_without_echo(prompt, in_fd, out_fd);
  if (!p.secret) return failed("no secret was entered (" + p.error + ")");
  if (p.secret->empty()) return failed("no secret was entered (an empty line)");
  SecretRead r;
  r.secret = std::move(p.secret);
  return r;
}

SecretRead read_secret(const SecretSource& source) {
  switch (source.kind) {
    case SecretSource::Kind::env:
      return read_secret_from_env(source.value);
    case SecretSource::Kind::file:
      return read_secret_from_file(source.value);
    case SecretSource::Kind::command:
      return read_secret_from_command(source.value);
    case SecretSource::Kind::prompt:
      return read_secret_from_terminal(source.value);
  }
  return failed("no secret source");
}

std::string check_secret_source(const SecretSource& source) {
  switch (source.kind) {
    case SecretSource::Kind::env:
      return env_refusal("--password-env " + source.value, source.value);
    case SecretSource::Kind::file: {
      const std::string who = "--password-file " + source.value;
      // stat, not open: opening a FIFO or a device could disturb whoever is at its other end.
      struct stat st {};
      if (::stat(source.value.c_str(), &st) != 0) return who + ": " + std::strerror(errno);
      if (std::string refusal = file_refusal(who, source.value, st); !refusal.empty())
        return refusal;
      if (S_ISREG(st.st_mode) && ::faccessat(AT_FDCWD, source.value.c_str(), R_OK, AT_EACCESS) != 0)
        return who + ": " + std::strerror(errno);
      return {};
    }
    case SecretSource::Kind::command:
    case SecretSource::Kind::prompt:
      return {};
  }
  return {};
}

}  // namespace mailtap::secrets
