// Runs a user's secret helper (`pass show mail/gmail`, `oama access alice@gmail.com`) through
// /bin/sh -c and captures its stdout into a Secret. Its stderr is mailtap's stderr, so the
// helper's own error messages reach the person; its stdout never goes anywhere but the Secret.
// The child gets mailtap's environment (from which --password-env variables were removed when
// read), default signal dispositions (mailtap ignores SIGPIPE), and a process group of its own,
// so a timeout kills everything it started. Unless it is interactive its stdin is /dev/null.
// It inherits no descriptor but stdin, stdout and stderr: not mailtap's sockets, which an agent
// the helper leaves running would otherwise hold after mailtap closed them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/smtp/secret.hpp"

namespace mailtap::secrets {

struct CommandOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // A password helper may ask something on the terminal: it then keeps mailtap's stdin, and
  // when that is the terminal mailtap has in the foreground, the helper's process group gets
  // the terminal (so it can read it, and Ctrl-C reaches it) until it ends, as a shell does.
  bool interactive = false;
  std::size_t max_output = 64 * 1024;
  // Keep stdout only up to its first newline (included); what follows is read and dropped, so
  // a helper may print any amount after it while mailtap holds at most max_output and the
  // line's end (LF or CRLF). Then too_much_output means a first line longer than max_output.
  bool first_line_only = false;
  // Set from another thread to kill the command now (shutdown).
  const std::atomic<bool>* cancel = nullptr;
};

struct CommandResult {
  enum class Status : std::uint8_t {
    exited,
    signalled,
    // Ended by SIGINT while it held the terminal: the person pressed Ctrl-C at its prompt
    // (mailtap, in the background then, got none), which means they gave up, not a crash.
    interrupted,
    timed_out,
    cancelled,
    too_much_output,
    not_started,
  };
  Status status = Status::not_started;
  int code = 0;         // exit status (exited) or signal number (signalled)
  smtp::Secret output;  // what it wrote on stdout (up to the first newline: first_line_only)
  std::string error;    // not_started: why
  bool ok() const { return status == Status::exited && code == 0; }
};

CommandResult run_command(const std::string& command, const CommandOptions& options);

// Whether process group `pgid` has a member that is not a zombie (kill(-pgid, 0) counts the
// zombie of a leader not yet reaped, which run_command keeps so that the id is not reused).
// Where /proc cannot say whether a member is a zombie (no descriptor left to read its stat; a
// member running a set-user-ID program under hidepid=1, which getpgid() still finds), kill's
// answer stands: alive, and a killed command's group gets its grace before the SIGKILL. What
// /proc does not list at all (such a member under hidepid=2) is not seen. The decision is
// ProcessGroupLook's (process_group_look.hpp); this does the asking.
bool process_group_alive(pid_t pgid);

// "--password-cmd exited with status 1", "... timed out after 30s": for a failed result.
std::string describe_failure(std::string_view option, const CommandResult& result,
                             const CommandOptions& options);

}  // namespace mailtap::secrets
