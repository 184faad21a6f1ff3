// The command-line options that say where a password or an OAuth token comes from, with their
// --help, shared by every subcommand that needs a secret (encode, replay, audit; the proxy's
// --auth-user). None of them takes the secret itself: arguments are visible to every local user
// in /proc.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "proxy/secrets/secret_source.hpp"

namespace mailtap::cli {

struct SecretOptions {
  std::string password_env;
  std::string password_file;
  std::string password_cmd;
  std::string oauth2_token_cmd;

  // --password-env, --password-file, --password-cmd (at most one of them). `what` names the
  // secret in the help ("password", "password or access token").
  void add_password_options(CLI::App& app, const std::string& what = "password");
  // --password-env alone, for a command that takes a password from nowhere else (audit).
  void add_password_env_option(CLI::App& app, const std::string& what = "password");
  // --oauth2-token-cmd. With `exclusive` it excludes the three above (a command that needs
  // one secret); without, both may be given (the proxy uses the token where the server takes
  // one, else the password).
  void add_token_option(CLI::App& app, bool exclusive = true);

  bool has_password_source() const {
    return !password_env.empty() || !password_file.empty() || !password_cmd.empty();
  }
  // The source given, or a prompt on the terminal with `prompt` when none was.
  secrets::SecretSource password_source(std::string prompt) const;

 private:
  CLI::Option* env_ = nullptr;
  CLI::Option* file_ = nullptr;
  CLI::Option* cmd_ = nullptr;
};

}  // namespace mailtap::cli
