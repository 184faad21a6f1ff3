// `mailtap proxy`'s AUTH options: --auth-user with where its password or token comes from, and
// --assist-auth. The secret is read once, at start, before any thread runs (docs/auth.md).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "proxy/cli/secret_options.hpp"
#include "proxy/session/proxy_config.hpp"

namespace mailtap::cli {

struct AuthArgs {
  std::string user;
  SecretOptions secrets;
  bool assist = false;
};

void add_auth_options(CLI::App& app, AuthArgs& args);

// Checks the combination, reads the password (prompting on a terminal when no source is
// given) and fills cfg's AUTH settings. Returns an error message, or "" on success.
std::string build_auth_config(const AuthArgs& args, ProxyConfig& cfg);

}  // namespace mailtap::cli
