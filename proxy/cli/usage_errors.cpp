#include "proxy/cli/usage_errors.hpp"

#include <string_view>
#include <vector>

#include "proxy/common/closest_name.hpp"

namespace mailtap::cli {

namespace {

std::string command_line(const CLI::App& command) {
  std::string words = "mailtap";
  if (command.get_parent() != nullptr) words += " " + command.get_name();
  return words;
}

// `--bogus`: unknown to `command`, with the closest option it has.
std::string unknown_option(const CLI::App& command, const std::string& word) {
  const std::string name = word.substr(0, word.find('='));
  std::vector<std::string> known;
  for (const CLI::Option* option : command.get_options()) {
    if (option->get_group().empty()) continue;  // hidden
    for (const std::string& l : option->get_lnames()) known.push_back("--" + l);
    for (const std::string& s : option->get_snames()) known.push_back("-" + s);
  }
  for (const std::string& k : known)
    if (k == name) return "";  // known, and refused for another reason: CLI11's words
  const std::string near = closest_name(name, known);
  return "unknown option " + word + (near.empty() ? "" : " (did you mean " + near + "?)") + "; " +
         command_line(command) + " --help lists its options";
}

// A word after all that `command` takes: what it takes, as its usage line writes it.
std::string extra_word(const CLI::App& command, const std::string& word) {
  std::string takes;
  for (const CLI::Option* p : command.get_options(
           [](const CLI::Option* o) { return !o->nonpositional() && !o->get_group().empty(); })) {
    if (!takes.empty()) takes += " ";
    takes += p->get_items_expected_max() > 1 ? p->get_name() + "..." : "one " + p->get_name();
  }
  return "unexpected argument \"" + word + "\": " + command_line(command) +
         (takes.empty() ? " takes options only" : " takes " + takes + " and options");
}

}  // namespace

std::string usage_error_text(const CLI::App& command, const CLI::Error& error) {
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) {
    const std::vector<std::string> words = command.remaining(false);
    if (words.empty()) return "";
    const std::string& word = words.front();
    if (word.size() > 1 && word.front() == '-') return unknown_option(command, word);
    return extra_word(command, word);
  }
  // "--limit: 1 required N missing": the one value of an option last on the line.
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr) {
    const std::string_view text = error.what();
    const std::size_t at = text.find(": 1 required ");
    if (at != std::string_view::npos && text.ends_with(" missing")) {
      const std::string_view name = text.substr(0, at);
      const std::size_t type_at = at + std::string_view(": 1 required ").size();
      const std::string_view type =
          text.substr(type_at, text.size() - type_at - std::string_view(" missing").size());
      return std::string(name) + ": a value is missing (" + std::string(name) + " " +
             std::string(type) + ")";
    }
  }
  return "";
}

}  // namespace mailtap::cli
