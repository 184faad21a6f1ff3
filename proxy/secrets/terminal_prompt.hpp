// Asks for a secret on a terminal without echoing it, and puts the terminal back however the
// prompt ends: the line is entered, input ends, or a signal (Ctrl-C, SIGTERM, SIGHUP, Ctrl-Z)
// arrives; in the signal case the terminal is restored first and the signal then delivered
// with its usual effect, as ssh's readpassphrase does.
// The terminal's line editing (canonical mode) is off too: it silently keeps only the first 4095
// characters of a line, and pasted OAuth tokens can be longer. The prompt reads key by key and
// applies the terminal's own editing keys (erase, kill, word erase, literal next, end of file)
// as that line editing would; the signal keys (Ctrl-C, Ctrl-Z) stay the terminal's.
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

// Reads one line (up to 65536 bytes; a longer one is an error, never cut) from `in_fd`,
// which must be a terminal, after writing `prompt` to `out_fd`.
// Single-threaded use only (it changes signal dispositions while it waits).
PromptResult prompt_without_echo(std::string_view prompt, int in_fd, int out_fd);

}  // namespace mailtap::secrets
