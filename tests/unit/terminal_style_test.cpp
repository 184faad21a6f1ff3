#include "proxy/common/terminal_style.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace mailtap {
namespace {

// Sets (or, with nullopt, unsets) an environment variable for one test, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The far end of a pseudo-terminal: a file descriptor for which isatty() is true.
class Pty {
 public:
  Pty() {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ >= 0 && ::grantpt(master_) == 0 && ::unlockpt(master_) == 0)
      slave_ = ::open(::ptsname(master_), O_RDWR | O_NOCTTY);
  }
  ~Pty() {
    if (slave_ >= 0) ::close(slave_);
    if (master_ >= 0) ::close(master_);
  }
  int fd() const { return slave_; }

 private:
  int master_ = -1;
  int slave_ = -1;
};

TEST(TerminalStyle, ParsesTheThreeChoices) {
  EXPECT_EQ(parse_color_choice("auto"), ColorChoice::auto_detect);
  EXPECT_EQ(parse_color_choice("always"), ColorChoice::always);
  EXPECT_EQ(parse_color_choice("never"), ColorChoice::never);
  EXPECT_FALSE(parse_color_choice("yes"));
}

TEST(TerminalStyle, AutoColoursATerminalOnly) {
  ScopedEnv no_color("NO_COLOR", std::nullopt);
  ScopedEnv term("TERM", "xterm");
  Pty pty;
  ASSERT_GE(pty.fd(), 0);
  EXPECT_TRUE(Style::for_fd(pty.fd(), ColorChoice::auto_detect).enabled());
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_FALSE(Style::for_fd(pipe_fds[1], ColorChoice::auto_detect).enabled());
  EXPECT_TRUE(Style::for_fd(pipe_fds[1], ColorChoice::always).enabled());
  EXPECT_FALSE(Style::for_fd(pty.fd(), ColorChoice::never).enabled());
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(TerminalStyle, NoColorAnyNonEmptyValueDisablesAuto) {
  Pty pty;
  ASSERT_GE(pty.fd(), 0);
  ScopedEnv term("TERM", "xterm");
  {
    ScopedEnv no_color("NO_COLOR", "0");
    EXPECT_FALSE(Style::for_fd(pty.fd(), ColorChoice::auto_detect).enabled());
    // An explicit --color always is the user's word for this run: it wins.
    EXPECT_TRUE(Style::for_fd(pty.fd(), ColorChoice::always).enabled());
  }
  {
    ScopedEnv no_color("NO_COLOR", "");
    EXPECT_TRUE(Style::for_fd(pty.fd(), ColorChoice::auto_detect).enabled());
  }
  {
    ScopedEnv no_color("NO_COLOR", std::nullopt);
    ScopedEnv dumb("TERM", "dumb");
    EXPECT_FALSE(Style::for_fd(pty.fd(), ColorChoice::auto_detect).enabled());
  }
}

TEST(TerminalStyle, PlainStyleWritesNoEscapes) {
  EXPECT_EQ(Style::plain().red("x"), "x");
  EXPECT_EQ(Style::coloured().red("x"), "\x1b[31mx\x1b[0m");
  EXPECT_EQ(Style::coloured().bold("x"), "\x1b[1mx\x1b[0m");
}

}  // namespace
}  // namespace mailtap
