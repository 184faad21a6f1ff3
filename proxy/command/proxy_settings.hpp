// How `mailtap proxy` takes its settings from the environment and the config file: the tables
// it reads ([upstream.NAME] for `mailtap proxy NAME`, then [proxy], then the top level), the
// keys only the file has (host and port, a password), and the checks on the file itself
// (docs/config.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/cli/config_file.hpp"
#include "proxy/cli/option_layers.hpp"

namespace mailtap::cli {

// Tables of the file `mailtap proxy [NAME]` reads, most specific first.
std::vector<std::string> proxy_tables(std::string_view upstream_name);

// Adds the proxy's file-only keys to `layers`, checks the file (known tables and keys, the
// upstream name, a password only in a private file) and applies the environment and the file.
// `other_commands` are the names of tables that belong to other commands. Returns an error
// message, or "".
std::string apply_proxy_settings(OptionLayers& layers, const ConfigFile& file,
                                 std::string_view upstream_name,
                                 const std::vector<std::string>& other_commands,
                                 const OptionLayers::Getenv& getenv);

}  // namespace mailtap::cli
