#include "proxy/cli/command_word.hpp"

#include <cstdio>
#include <memory>

#include "proxy/common/closest_name.hpp"
#include "proxy/common/terminal_escape.hpp"

namespace mailtap::cli {

namespace {

std::string did_you_mean(const std::string& word, const std::vector<std::string>& known) {
  const std::string near = closest_name(word, known);
  return near.empty() ? "" : " (did you mean " + near + "?)";
}

std::string unknown_option(const CLI::App& root, const std::string& word) {
  const std::string name = word.substr(0, word.find('='));  // --version=x is CLI11's to refuse
  std::vector<std::string> known;
  for (const CLI::Option* option : root.get_options()) {
    for (const std::string& l : option->get_lnames()) known.push_back("--" + l);
    for (const std::string& s : option->get_snames()) known.push_back("-" + s);
  }
  for (const std::string& k : known)
    if (k == name) return "";
  return "unknown option " + escape_text(word) + did_you_mean(name, known) +
         "; mailtap --help lists the options and commands";
}

}  // namespace

Subcommand add_help_command(CLI::App& root) {
  auto command = std::make_shared<std::string>();
  Subcommand cmd;
  cmd.app = root.add_subcommand(
      "help", "Print the help of mailtap, or of COMMAND (as mailtap COMMAND --help does)");
  cmd.app->add_option("COMMAND", *command, "The command whose help to print");
  cmd.run = [&root, command] {
    std::fputs(root.help().c_str(), stdout);
    return 0;
  };
  return cmd;
}

std::vector<std::string> help_command_arguments(std::vector<std::string> arguments) {
  if (arguments.empty() || arguments.front() != "help") return arguments;
  // `mailtap help --help`: the help command's own help, as every command's.
  if (arguments.size() > 1 && (arguments[1] == "--help" || arguments[1] == "-h")) return arguments;
  // `mailtap help show extra`: the words after the command are not the help's to check (show
  // refused "extra" as a session id instead of printing its help), as git help ignores them.
  if (arguments.size() > 1 && !arguments[1].starts_with("-")) return {arguments[1], "--help"};
  arguments.erase(arguments.begin());
  arguments.emplace_back("--help");
  return arguments;
}

std::string unknown_first_word(const CLI::App& root, const std::vector<std::string>& arguments) {
  if (arguments.empty() || arguments.front() == "--") return "";
  const std::string& word = arguments.front();
  if (word.starts_with("-")) return unknown_option(root, word);
  std::vector<std::string> commands;
  for (const CLI::App* sub : root.get_subcommands({})) {
    if (sub->check_name(word)) return "";
    if (!sub->get_group().empty()) commands.push_back(sub->get_name());  // no hidden ones
  }
  return "unknown command \"" + escape_text(word) + "\"" + did_you_mean(word, commands) +
         "; mailtap --help lists the commands";
}

}  // namespace mailtap::cli
