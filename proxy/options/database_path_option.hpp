// --db PATH, for the proxy and the tools alike, and --config PATH: one check, one wording of
// what it refuses.
#pragma once

#include <CLI/CLI.hpp>
#include <string_view>

namespace mailtap::options {

// Refuses a --db value that names no database file: an empty one (a variable that expanded to
// nothing, db = "" in the config file), which taken for the default would read or record where
// nobody meant to look; and one that begins with '-', which is the next option taken as the
// value (`--db --json`); and one that begins with '~', which nothing expanded (HOME unset, or
// quoted on the command line), and which would make a directory literally named ~. `instead`
// ("--no-record") names a further way out, or is empty.
CLI::Validator database_path_validator(std::string_view instead);

// The same refusals for any option `option` ("--config") whose value is a path to a `what`
// ("config file"); `empty_fix` says what to give instead of "" ("give a path, or ...").
CLI::Validator path_validator(std::string_view option, std::string_view what,
                              std::string_view empty_fix);

// The same for a file a tool writes where "-" alone is standard output (export -o): an empty
// path (`-o "$OUT"` with OUT unset) would otherwise quietly write there, and save nothing.
CLI::Validator output_path_validator(std::string_view option);

}  // namespace mailtap::options
