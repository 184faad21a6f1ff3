#include "proxy/secrets/terminal_prompt.hpp"

#include <openssl/mem.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

namespace mailtap::secrets {
namespace {

// Longer than a canonical-mode terminal line can be (4095): nobody types more.
constexpr std::size_t kMaxLine = 4096;
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
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK);
      quiet.c_lflag |= ECHONL;  // the Enter still moves the cursor to the next line
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
    // A signal that came while blocked is delivered here, to the process's own disposition.
    pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
    if (caught_signal != 0) ::raise(caught_signal);
  }

  const sigset_t* wait_mask() const { return &wait_mask_; }

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

// How reading the line stopped: at its newline, by a signal, or otherwise (Ctrl-D, the
// terminal went away, a read error, or the line is too long).
enum class LineEnd { complete, interrupted, stopped };

// Reads one line from `in_fd`, one byte at a time, into `line` (without the newline).
LineEnd read_line(int in_fd, const QuietTerminal& quiet, smtp::Secret& line) {
  LineEnd end = LineEnd::stopped;
  char c = 0;
  for (;;) {
    pollfd p{in_fd, POLLIN, 0};
    if (::ppoll(&p, 1, nullptr, quiet.wait_mask()) < 0) {
      if (errno == EINTR && caught_signal == 0) continue;
      if (caught_signal != 0) end = LineEnd::interrupted;
      break;
    }
    const ssize_t n = ::read(in_fd, &c, 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // Ctrl-D, or the terminal went away
    if (c == '\n') {
      end = LineEnd::complete;
      break;
    }
    if (!line.push_back(c)) break;
  }
  OPENSSL_cleanse(&c, 1);
  return end;
}

}  // namespace

PromptResult prompt_without_echo(std::string_view prompt, int in_fd, int out_fd) {
  PromptResult result;
  if (!::isatty(in_fd)) {
    result.error = "standard input is not a terminal, so the secret cannot be asked for";
    return result;
  }
  smtp::Secret line(kMaxLine);
  bool complete = false;
  bool interrupted = false;
  {
    QuietTerminal quiet(in_fd);
    write_all(out_fd, prompt);
    const LineEnd end = read_line(in_fd, quiet, line);
    complete = end == LineEnd::complete;
    interrupted = end == LineEnd::interrupted;
    if (interrupted) write_all(out_fd, "\n");
  }  // the terminal is restored here, and a caught signal delivered
  if (!complete) {
    result.error = interrupted        ? "interrupted"
                   : line.room() == 0 ? "the line is too long"
                                      : "no input";
    return result;
  }
  if (!line.empty() && line.view().back() == '\r') line.truncate(line.size() - 1);
  result.secret = std::move(line);
  return result;
}

}  // namespace mailtap::secrets
