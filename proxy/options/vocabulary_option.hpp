// An option whose value is one of a record enum's names (--tls starttls): checked and parsed
// with the enum's one name table (proxy/smtp/record_vocabulary.hpp), so no command keeps a
// list of its own or parses the name a second time.
//
// Not CLI::CheckedTransformer: CLI11 2.1.2 writes a transformed enum back into the option's
// results as its integer, and the results are what --print-config and the configuration
// layers show ("tls = 1"). The check keeps the name; the callback stores the enumerator.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/smtp/record_vocabulary.hpp"

namespace mailtap::options {

// An option naming one of a few choices that are no record enum (--record-failure stop): one
// table gives both the check and the value, as the record's name tables do for theirs. The
// default shown is the name of `out`'s value as the option is added.
template <typename Enum>
CLI::Option* add_choice_option(CLI::App& app, std::string name, Enum& out,
                               std::vector<std::pair<std::string, Enum>> choices,
                               std::string help) {
  std::vector<std::string> names;
  std::string default_name;
  for (const auto& [choice, value] : choices) {
    names.push_back(choice);
    if (value == out) default_name = choice;
  }
  CLI::Option* option = app.add_option_function<std::string>(
      std::move(name),
      [&out, choices](const std::string& text) {
        for (const auto& [choice, value] : choices)
          if (choice == text) out = value;
      },
      std::move(help));
  option->check(CLI::IsMember(std::move(names)));
  option->default_str(default_name);
  return option;
}

template <smtp::RecordEnum Enum>
CLI::IsMember vocabulary_check() {
  const auto& names = smtp::Vocabulary<Enum>::names;
  return CLI::IsMember(std::vector<std::string>(names.begin(), names.end()));
}

// `out` is an Enum (the default is its value when no name is given) or a std::optional<Enum>
// (nullopt: not given).
template <smtp::RecordEnum Enum, typename Target>
CLI::Option* add_vocabulary_option(CLI::App& app, std::string name, Target& out, std::string help) {
  CLI::Option* option = app.add_option_function<std::string>(
      std::move(name), [&out](const std::string& text) { out = *smtp::parse_name<Enum>(text); },
      std::move(help));
  option->check(vocabulary_check<Enum>());
  if constexpr (std::is_same_v<Target, Enum>)
    option->default_str(std::string(smtp::to_string(out)));
  return option;
}

}  // namespace mailtap::options
