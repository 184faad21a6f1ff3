// Where a password (or a pasted token) comes from, never the command line, whose arguments any
// local user can read in /proc:
//   --password-env VAR   the variable's first line; the variable is then wiped and removed
//                        from mailtap's environment, so no command mailtap runs inherits it
//   --password-file PATH its first line; refused when group or others may access the file, or
//                        when someone else owns it (as ssh refuses a private key)
//   --password-cmd CMD   the first line of what `/bin/sh -c CMD` prints, if it exits 0
//   a prompt             on the terminal without echo, when none of them is given
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/secret.hpp"

namespace mailtap::secrets {

struct SecretRead {
  std::optional<smtp::Secret> secret;  // set on success: one line, never empty
  std::string error;  // else why, naming the option: "--password-file /x: ..." (no secret)
};

SecretRead read_secret_from_env(const std::string& variable);
SecretRead read_secret_from_file(const std::string& path);
SecretRead read_secret_from_command(const std::string& command,
                                    std::string_view option = "--password-cmd",
                                    std::chrono::milliseconds timeout = std::chrono::minutes(2));
// The prompt goes to `out_fd`; `in_fd` must be a terminal.
SecretRead read_secret_from_terminal(std::string_view prompt, int in_fd = 0, int out_fd = 2);

struct SecretSource {
  enum class Kind : std::uint8_t { env, file, command, prompt };
  Kind kind = Kind::prompt;
  std::string value;  // the variable, path or command; for prompt, the prompt text
};

SecretRead read_secret(const SecretSource& source);

// What reading `source` would refuse before it reads anything, checked without reading it
// (--print-config): an unset --password-env variable; a --password-file that is missing,
// unreadable, open to group or others, or someone else's. The same checks, and messages, as
// read_secret. Runs no command and asks no question. Returns an error message, or "".
std::string check_secret_source(const SecretSource& source);

// Keeps the first line of `s` (a trailing CR too is removed) and wipes the rest.
void keep_first_line(smtp::Secret& s);

}  // namespace mailtap::secrets
