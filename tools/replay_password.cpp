#include "tools/replay_password.hpp"

#include <fcntl.h>
#include <openssl/mem.h>
#include <stdio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>

namespace mailtap::tools {

namespace {

void strip_line_end(std::string& s) {
  if (auto nl = s.find('\n'); nl != std::string::npos) {
    OPENSSL_cleanse(s.data() + nl, s.size() - nl);
    s.resize(nl);
  }
  if (!s.empty() && s.back() == '\r') s.pop_back();
}

bool from_command(const std::string& cmd, Secret& out, std::string& error) {
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) {
    error = "--password-cmd: cannot run the command";
    return false;
  }
  char buf[256];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.str().append(buf, n);
  OPENSSL_cleanse(buf, sizeof buf);
  const int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    error = "--password-cmd: the command failed (exit status " +
            std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
    return false;
  }
  strip_line_end(out.str());
  return true;
}

bool from_terminal(const std::string& prompt, Secret& out, std::string& error) {
  const int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    error = "no terminal to ask for the password: give --password-env VAR or --password-cmd CMD";
    return false;
  }
  termios saved{};
  const bool have_termios = ::tcgetattr(fd, &saved) == 0;
  if (have_termios) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  (void)!::write(fd, prompt.data(), prompt.size());
  char c;
  bool ok = false;
  while (::read(fd, &c, 1) == 1) {
    if (c == '\n') {
      ok = true;
      break;
    }
    out.str().push_back(c);
  }
  c = 0;
  if (have_termios) ::tcsetattr(fd, TCSAFLUSH, &saved);
  ::close(fd);
  if (!ok) {
    error = "no password was entered";
    return false;
  }
  strip_line_end(out.str());
  return true;
}

}  // namespace

Secret::~Secret() {
  OPENSSL_cleanse(value_.data(), value_.size());
}

bool read_password(const PasswordSource& source, Secret& out, std::string& error) {
  if (!source.env.empty()) {
    const char* v = std::getenv(source.env.c_str());
    if (!v) {
      error = "--password-env " + source.env + ": the variable is not set";
      return false;
    }
    out.str() = v;
    return true;
  }
  if (!source.cmd.empty()) return from_command(source.cmd, out, error);
  return from_terminal(source.prompt, out, error);
}

}  // namespace mailtap::tools
