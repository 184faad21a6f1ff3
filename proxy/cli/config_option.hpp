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
// (which may be missing; a named one may not). `watch`: as load_config_file's.
std::optional<ConfigFile> load_chosen_config(const std::string& flag_path,
                                             const OptionLayers::Getenv& getenv, std::string& error,
                                             stop_signals::WaitWatch* watch = nullptr);

// For a command that handles the stop signals: holds them from here for its handler
// (stop_signal_deferral.hpp) and reads the file as load_chosen_config does, under a WaitWatch.
// A stop signal while it is read (a FIFO nobody writes) ends the read: nullopt, `stopped`, and
// `error` the line that says so; the command stops there as it would once started (status 0).
std::optional<ConfigFile> load_chosen_config_deferring_stops(const std::string& flag_path,
                                                             const OptionLayers::Getenv& getenv,
                                                             std::string& error, bool& stopped);

// For a tool that reads the record: adds --config, and before it runs fills --db and --color
// (and web's --allow-local-user) from MAILTAP_DB / MAILTAP_COLOR (MAILTAP_ALLOW_LOCAL_USER),
// else the file's [TOOL] table, else its top level. Tools without any of them are left alone.
void layer_common_options(Subcommand& cmd);

}  // namespace mailtap::cli
