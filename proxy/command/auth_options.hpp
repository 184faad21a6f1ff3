// `mailtap proxy`'s AUTH options: --auth-user with where its password or token comes from, and
// --assist-auth. The secret is read once, at start, before any thread runs (docs/auth.md).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "proxy/cli/config_file.hpp"
#include "proxy/cli/secret_options.hpp"
#include "proxy/session/proxy_config.hpp"

namespace mailtap::cli {

struct AuthArgs {
  std::string user;
  SecretOptions secrets;
  bool assist = false;
  // `password = ...` of a private config file (docs/config.md), read where --password-*
  // would be; the entry is wiped with the file.
  const ConfigEntry* configured_password = nullptr;
};

void add_auth_options(CLI::App& app, AuthArgs& args);

// Checks the combination, reads the password (prompting on a terminal when no source is
// given) and fills cfg's AUTH settings. Returns an error message, or "" on success. Without
// `read_password` (--print-config) no password is read, prompted for or run for.
std::string build_auth_config(const AuthArgs& args, ProxyConfig& cfg, bool read_password = true);

}  // namespace mailtap::cli
