#include "proxy/secrets/terminal_prompt.hpp"

#include <openssl/mem.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "proxy/secrets/line_editor.hpp"

namespace mailtap::secrets {
namespace {

// The terminal's own line editing (canonical mode) keeps 4095 characters of a line and drops
// the rest without a word, and OAuth access tokens (Microsoft 365's) are often longer: the
// prompt reads the terminal character by character and edits the line itself, up to this.
constexpr std::size_t kMaxLine = 64 * 1024;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGALRM};

volatile sig_atomic_t caught_signal = 0;

extern "C" void remember_signal(int s) {
  caught_signal = s;
}

// Echo off for the life of the object; the destructor restores the terminal, then re-raises a
// signal that interrupted the prompt, with the dispositions the process had before.
// The signals stay blocked except inside the wait (ppoll with wait_mask()), so one that arrives
// just before the wait cannot be missed and leave the prompt blocked with the echo off.
class QuietTerminal {
 public:
  explicit QuietTerminal(int fd) : fd_(fd) {
    caught_signal = 0;
    sigset_t ours;
    sigemptyset(&ours);
    for (int s : kSignals) sigaddset(&ours, s);
    pthread_sigmask(SIG_BLOCK, &ours, &saved_mask_);
    wait_mask_ = saved_mask_;
    for (int s : kSignals) sigdelset(&wait_mask_, s);
    struct sigaction catcher {};
    catcher.sa_handler = remember_signal;
    sigemptyset(&catcher.sa_mask);
    catcher.sa_flags = 0;
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      sigaction(kSignals[i], &catcher, &saved_actions_[i]);
    }
    have_termios_ = ::tcgetattr(fd_, &saved_) == 0;
    if (have_termios_) {
      // Signal keys (ISIG) and flow control stay the terminal's; erasing is the editor's.
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ECHOE | ECHOK | ECHONL);
      quiet.c_cc[VMIN] = 1;
      quiet.c_cc[VTIME] = 0;
      ::tcsetattr(fd_, TCSAFLUSH, &quiet);
    }
  }
  QuietTerminal(const QuietTerminal&) = delete;
  QuietTerminal& operator=(const QuietTerminal&) = delete;
  ~QuietTerminal() {
    if (have_termios_) {
      while (::tcsetattr(fd_, TCSAFLUSH, &saved_) != 0 && errno == EINTR) {
      }
    }
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      sigaction(kSignals[i], &saved_actions_[i], nullptr);
    }
    // A signal that came while blocked is delivered here, to the process's own disposition;
    // the one that interrupted the prompt even if mailtap's start holds it blocked
    // (stop_signal_deferral.hpp): a Ctrl-C at the prompt ends mailtap there and then.
    const int interrupting = caught_signal;
    sigset_t delivering = saved_mask_;
    if (interrupting != 0) sigdelset(&delivering, interrupting);
    pthread_sigmask(SIG_SETMASK, &delivering, nullptr);
    if (interrupting != 0) {
      ::raise(interrupting);
      pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
    }
  }

  const sigset_t* wait_mask() const { return &wait_mask_; }
  // The editing keys the terminal had; none when its settings could not be read.
  EditingKeys keys() const { return have_termios_ ? EditingKeys::of(saved_) : EditingKeys{}; }

 private:
  int fd_;
  sigset_t saved_mask_{};
  sigset_t wait_mask_{};
  bool have_termios_ = false;
  termios saved_{};
  struct sigaction saved_actions_[std::size(kSignals)]{};
};

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

// How reading the line stopped: at its end, by a signal, or otherwise (Ctrl-D on an empty
// line, the terminal went away, a read error), or the line outgrew the secret's capacity.
enum class ReadEnd { complete, interrupted, stopped, too_long };

// Waits for and reads one byte into `c`; false when none came, with why in `why_not`.
bool read_byte(int in_fd, const QuietTerminal& quiet, char& c, ReadEnd& why_not) {
  for (;;) {
    pollfd p{in_fd, POLLIN, 0};
    if (::ppoll(&p, 1, nullptr, quiet.wait_mask()) < 0) {
      if (errno == EINTR && caught_signal == 0) continue;
      why_not = caught_signal != 0 ? ReadEnd::interrupted : ReadEnd::stopped;
      return false;
    }
    const ssize_t n = ::read(in_fd, &c, 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n == 1) return true;
    why_not = ReadEnd::stopped;  // the terminal went away, or a read error
    return false;
  }
}

// Reads one line from `in_fd`, one byte at a time, editing it into `line` (without the line's
// end). A line over the limit is still read to its end with the echo off, each byte dropped:
// the rest of a long paste would otherwise arrive once the echo is back, shown on screen and
// left for the shell (restoring the terminal flushes only what has arrived by then).
ReadEnd read_line(int in_fd, const QuietTerminal& quiet, smtp::Secret& line) {
  LineEditor editor(quiet.keys(), line);
  bool overflowed = false;
  ReadEnd end = ReadEnd::stopped;
  char c = 0;
  while (read_byte(in_fd, quiet, c, end)) {
    const LineEnd taken = editor.take(c);
    OPENSSL_cleanse(&c, 1);
    if (taken == LineEnd::too_long) overflowed = true;
    if (taken == LineEnd::complete) end = ReadEnd::complete;
    if (taken == LineEnd::complete || taken == LineEnd::input_ended) break;
  }
  return overflowed && end != ReadEnd::interrupted ? ReadEnd::too_long : end;
}

}  // namespace

PromptResult prompt_without_echo(std::string_view prompt, int in_fd, int out_fd) {
  PromptResult result;
  if (!::isatty(in_fd)) {
    result.error = "standard input is not a terminal, so the secret cannot be asked for";
    return result;
  }
  smtp::Secret line(kMaxLine);
  ReadEnd end = ReadEnd::stopped;
  {
    QuietTerminal quiet(in_fd);
    write_all(out_fd, prompt);
    end = read_line(in_fd, quiet, line);
    // The cursor goes to the next line, as the echoed Enter would have moved it.
    write_all(out_fd, "\n");
  }  // the terminal is restored here, and a caught signal delivered
  switch (end) {
    case ReadEnd::complete:
      result.secret = std::move(line);
      return result;
    case ReadEnd::interrupted:
      result.error = "interrupted";
      return result;
    case ReadEnd::too_long:
      result.error = "the line is longer than " + std::to_string(kMaxLine) + " bytes";
      return result;
    case ReadEnd::stopped:
      break;
  }
  result.error = "no input";
  return result;
}

}  // namespace mailtap::secrets
