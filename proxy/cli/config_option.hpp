// --config PATH for every command that reads the config file, which file that is, and the
// options the record-reading tools take from it (docs/config.md).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "proxy/cli/command.hpp"
#include "proxy/cli/config_file.hpp"
#include "proxy/cli/option_layers.hpp"

namespace mailtap::cli {

// Adds --config PATH, writing into `path`.
CLI::Option* add_config_option(CLI::App& app, std::string& path);

// The file named by --config (`flag_path`), else by $MAILTAP_CONFIG, else the default one
// (which may be missing; a named one may not).
std::optional<ConfigFile> load_chosen_config(const std::string& flag_path,
                                             const OptionLayers::Getenv& getenv,
                                             std::string& error);

// For a tool that reads the record: adds --config, and before it runs fills --db and --color
// from MAILTAP_DB / MAILTAP_COLOR, else the file's [TOOL] table, else its top level. Tools
// without either option are left alone.
void layer_common_options(Subcommand& cmd);

}  // namespace mailtap::cli
