// `mailtap upstream-names` (hidden): the NAME of every [upstream.NAME] table of the config
// file, one a line, for the bash completion of `mailtap proxy NAME`. It only reads the file,
// as every command does (refusing one that others may change); it runs none of its commands
// and reads no password, so completing a word can never start a password manager.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "proxy/cli/config_option.hpp"
#include "proxy/common/log.hpp"
#include "tools/commands.hpp"

namespace mailtap::tools {

namespace {

// A name the shell can take as one word without quoting: other names are left out of the
// completion (a space or a quote would need escaping that compgen -W does not do).
bool plain_word(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '@' || c == '+';
  });
}

int run_upstream_names(const std::string& config_path) {
  std::string error;
  const auto getenv = [](const char* name) -> const char* { return std::getenv(name); };
  const auto file = cli::load_chosen_config(config_path, getenv, error);
  if (!file) {
    log::error("upstream-names: " + error);
    return 2;
  }
  for (const std::string& name : file->upstream_names())
    if (plain_word(name)) std::printf("%s\n", name.c_str());
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

cli::Subcommand add_upstream_names_command(CLI::App& parent) {
  auto config_path = std::make_shared<std::string>();
  CLI::App* app = parent.add_subcommand(
      "upstream-names", "Print the names of the config file's [upstream.NAME] tables");
  app->group("");  // hidden: for the bash completion, not a user's command
  cli::add_config_option(*app, *config_path);
  return {app, [config_path] { return run_upstream_names(*config_path); }};
}

}  // namespace mailtap::tools
