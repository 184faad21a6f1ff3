// Where `mailtap replay` gets the password the record left out: an environment variable, a
// command's output, or a prompt on the terminal without echo. Never the command line (other
// users can read it in /proc).
#pragma once

#include <string>

namespace mailtap::tools {

// Holds a secret and wipes it when destroyed.
class Secret {
 public:
  Secret() = default;
  ~Secret();
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  std::string& str() { return value_; }
  const std::string& str() const { return value_; }

 private:
  std::string value_;
};

struct PasswordSource {
  std::string env;     // --password-env VAR
  std::string cmd;     // --password-cmd CMD (run with /bin/sh -c; first line of its output)
  std::string prompt;  // shown on /dev/tty when neither is given
};

// False with `error` set (never containing the password) when no password could be read.
bool read_password(const PasswordSource& source, Secret& out, std::string& error);

}  // namespace mailtap::tools
