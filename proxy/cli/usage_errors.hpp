// CLI11's terse refusals of a command line in mailtap's words: "The following argument was not
// expected: --bogus" said neither that --bogus is no option nor which one was meant, and
// "--limit: 1 required N missing" left the reader to work out that a value was missing.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace mailtap::cli {

// What to say for `error`, raised while `command` (the command named, or mailtap itself) was
// parsed; "" to say CLI11's own text. An unknown option is named with the closest of the
// command's own, as unknown_first_word names one of mailtap's; a word more than the command
// takes is named with what it takes. Words are quoted as given: the caller escapes the whole
// text, as it does CLI11's (main.cpp's failure_message).
std::string usage_error_text(const CLI::App& command, const CLI::Error& error);

}  // namespace mailtap::cli
