// Asks for a secret on a terminal without echoing it, and puts the terminal back however the
// prompt ends: the line is entered, input ends, or a signal (Ctrl-C, SIGTERM, SIGHUP, Ctrl-Z)
// arrives; in the signal case the terminal is restored first and the signal then delivered
// with its usual effect, as ssh's readpassphrase does.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/secret.hpp"

namespace mailtap::secrets {

struct PromptResult {
  std::optional<smtp::Secret> secret;  // the line, without its line ending
  std::string error;
};

// Reads one line from `in_fd`, which must be a terminal, after writing `prompt` to `out_fd`.
// Single-threaded use only (it changes signal dispositions while it waits).
PromptResult prompt_without_echo(std::string_view prompt, int in_fd, int out_fd);

}  // namespace mailtap::secrets
