// `--db=` is the empty value, as `--db ""` is (getopt_long reads it so). CLI11 2.1 drops a value
// that is empty after the `=` and takes the next argument instead: `show --db= 1` read the
// database "1", and `--db=` last on the line got CLI11's own "1 required TEXT missing" rather
// than mailtap's refusal of an empty path.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace mailtap::cli {

// `arguments` (the command line without the program name, first word first) with each
// `--NAME=` of an option that takes a value written as `--NAME` and an empty argument, so the
// option's own check sees the empty value. A flag's `--NAME=` is left to CLI11, as is
// everything after `--`.
std::vector<std::string> spell_out_empty_values(const CLI::App& root,
                                                std::vector<std::string> arguments);

}  // namespace mailtap::cli
