// The first word of a command line: `mailtap sesions` or `mailtap --verison` named neither the
// word nor the command meant (CLI11 says "A subcommand is required"), and `mailtap help` is
// what git users type for the help.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "proxy/cli/command.hpp"

namespace mailtap::cli {

// `mailtap help [COMMAND]` in the command table, beside the others, so that --help, the man
// pages and the bash completion, all made from that table, list it (its COMMAND positional
// tells the completion to offer the commands). help_command_arguments answers it before the
// parse; run() prints mailtap's help should the parser ever choose it.
Subcommand add_help_command(CLI::App& root);

// `mailtap help [COMMAND [ARG...]]`, as `git help`: the arguments of `mailtap COMMAND --help`,
// the ARGs dropped (`help show extra` is the help of show, not a refusal of its session id).
// Any other `arguments` (the command line without the program name) are returned unchanged.
std::vector<std::string> help_command_arguments(std::vector<std::string> arguments);

// Why the first of `arguments` names neither a command nor an option of `root`, with the closest
// one when one is near: `unknown command "sesions" (did you mean sessions?) ...`; "" when it is
// one (or there is none: CLI11 then says a command is required). The word is quoted with its
// control characters escaped, as it is echoed to a terminal.
std::string unknown_first_word(const CLI::App& root, const std::vector<std::string>& arguments);

}  // namespace mailtap::cli
