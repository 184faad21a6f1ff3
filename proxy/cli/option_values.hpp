// What a flag and a whole-number option take, on the command line, in a MAILTAP_… variable and
// in the config file alike (docs/config.md): a flag true or false (also 1/0, yes/no, on/off), a
// flag that counts (-vv) also a plain decimal count, a number plain decimal digits. CLI11 alone
// reads a flag's 2 as true and -1 or 0x1 as false, a number's 010 as 8 and 0x10 as 16 (which
// --print-config then shows as no TOML number), and throws std::out_of_range for a count past
// 2^63: each is a mistake to point out, not a value to guess at.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailtap::cli {

// What `option` takes, said as a refusal ends: "expected true or false (also 1/0, yes/no,
// on/off)", "expected a whole number".
std::string expected_value(const CLI::Option& option);

// Why `text` is no value of `option` (expected_value), or "" when it is one, or when `option`
// is neither a flag nor a whole number (its own check decides).
std::string option_value_problem(const CLI::Option& option, std::string_view text);

// Whether `text` gives the yes/no flag `option` false ("no-record = false"): such a value
// chooses nothing, so it contradicts no option it excludes.
bool says_no(const CLI::Option& option, std::string_view text);

// The count a counting flag (-v) holds once every layer is read, its values taken left to
// right (docs/config.md): a bare flag, or true/yes/on, adds one; a count (--verbose=2,
// MAILTAP_VERBOSE=2, verbose = 2), or false/no/off for 0, sets it. So `-v --verbose=2` is 2 and
// `--verbose=2 -v` is 3, where CLI11 adds up every value (3 for both, and false as -1).
std::int64_t flag_count(const CLI::Option& option);

// Checks every flag and whole-number option of `app` and of its subcommands with
// option_value_problem when the command line gives it ("--max-sessions: 010: expected a whole
// number"). The environment and the file go through OptionLayers, which checks them so too.
void check_option_values(CLI::App& app);

}  // namespace mailtap::cli
