// Command-line arguments that are numbers (session ids, counts, days, a port), read by
// parse_decimal. A value that is not one is a usage error (exit status 2) whose message says
// what the value should be: "not a session id: 0x1 (a session id is a number such as 12, see
// `mailtap sessions`)", "--limit: not a number of sessions: -1 (...)".
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace mailtap::tools {

// What a number argument is and which values it takes.
struct NumberKind {
  std::string what;  // "a session id", "a number of sessions"
  std::string hint;  // the values it takes, by example: "a whole number such as 20, or 0 for all"
  std::uint64_t minimum = 0;
  // SQLite's integers (session ids, LIMIT) end here.
  std::uint64_t maximum = std::numeric_limits<std::int64_t>::max();
};

// The number `text` gives `option` ("--limit"; a positional's name), which must be of `kind`;
// else throws the CLI11 error that says so (an option's name leads the message, a
// positional's does not).
std::uint64_t number_argument(const std::string& option, const NumberKind& kind,
                              const std::string& text);

// Adds the positional `name` taking one session id (the ID column of `mailtap sessions`).
CLI::Option* add_session_id(CLI::App& app, const std::string& name, std::int64_t& id,
                            const std::string& help);
// Adds the positional `name` taking any number of session ids.
CLI::Option* add_session_ids(CLI::App& app, const std::string& name, std::vector<std::int64_t>& ids,
                             const std::string& help);

// Adds the option `name` taking one number of `kind` into `out` (an integer, or an optional
// one that stays empty unless given).
template <class Number>
CLI::Option* add_number_option(CLI::App& app, const std::string& name, const NumberKind& kind,
                               Number& out, const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [name, kind, &out](const std::string& text) {
            out = static_cast<Number>(number_argument(name, kind, text));
          },
          help)
      ->type_name("N");
}

}  // namespace mailtap::tools
