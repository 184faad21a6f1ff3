#include "proxy/cli/config_option.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <vector>

#include "proxy/cli/unknown_variables.hpp"
#include "proxy/common/log.hpp"
#include "proxy/common/stop_signal_deferral.hpp"
#include "proxy/options/database_path_option.hpp"

namespace mailtap::cli {

namespace {

CLI::Validator config_path_check(std::string_view option) {
  return options::path_validator(option, "config file",
                                 "give a path, or --config /dev/null for none");
}

}  // namespace

CLI::Option* add_config_option(CLI::App& app, std::string& path) {
  return app
      .add_option("--config", path,
                  "Config file (default: $MAILTAP_CONFIG, else "
                  "$XDG_CONFIG_HOME/mailtap/config.toml, else ~/.config/mailtap/config.toml); "
                  "a file named here must exist")
      ->type_name("PATH")
      // Empty (an unset variable, `--config "$CFG"`) must not mean the default file: that
      // would run against the user's real upstream and credentials.
      ->check(config_path_check("--config"));
}

std::optional<ConfigFile> load_chosen_config(const std::string& flag_path,
                                             const OptionLayers::Getenv& getenv, std::string& error,
                                             stop_signals::WaitWatch* watch) {
  if (!flag_path.empty()) return load_config_file(flag_path, true, error, watch);
  if (const char* env = getenv("MAILTAP_CONFIG"); env != nullptr && *env != '\0') {
    // ~/ as in every other MAILTAP_ path; what is still no path is refused as --config's is.
    std::string path = home_expanded(env, getenv);
    if (std::string why = config_path_check("MAILTAP_CONFIG")(path); !why.empty()) {
      error = "env MAILTAP_CONFIG: " + why;
      return std::nullopt;
    }
    return load_config_file(path, true, error, watch);
  }
  return load_config_file(default_config_path(getenv), false, error, watch);
}

namespace {

// The tool's own checks of the file, as the proxy makes its own: a table named after no
// command is refused by every command alike (a typo, [shwo], is never silently ignored by the
// tool it was meant for while the proxy refuses it), and a key of this command's own table must
// be one it takes. Other commands' tables, and the keys before any table, are theirs to check.
std::string check_tool_tables(const ConfigFile& file, const CLI::App& app,
                              const OptionLayers& layers) {
  std::vector<std::string> commands = {""};
  if (const CLI::App* parent = app.get_parent())
    for (const CLI::App* sub : parent->get_subcommands({})) commands.push_back(sub->get_name());
  if (const ConfigTable* t = file.first_unknown_table(commands))
    return file.where(*t) + ": unknown table " + written_table(t->name) +
           " in the config file; its tables are [upstream.NAME] and one per command ([proxy], "
           "[" +
           app.get_name() + "] ...)";
  return layers.check_keys(file, {app.get_name()});
}

}  // namespace

std::optional<ConfigFile> load_chosen_config_deferring_stops(const std::string& flag_path,
                                                             const OptionLayers::Getenv& getenv,
                                                             std::string& error, bool& stopped) {
  stop_signals::defer();
  stop_signals::WaitWatch watch;
  auto file = load_chosen_config(flag_path, getenv, error, &watch);
  stopped = !file && stop_signals::WaitWatch::caught() != 0;
  return file;
}

void layer_common_options(Subcommand& cmd) {
  // allow-local-user: `mailtap web`'s, as the proxy's (who besides its own user may read it).
  static const std::vector<std::string> common = {"db", "color", "allow-local-user"};
  CLI::App& app = *cmd.app;
  const bool takes_any = std::any_of(common.begin(), common.end(), [&](const std::string& name) {
    return app.get_option_no_throw("--" + name) != nullptr;
  });
  // The stop signals held from here for the command's handler (command.hpp), whether or not it
  // takes any option of the file's; one that comes while the file is read stops it there.
  const bool handles_stops = cmd.handles_stop_signals;
  if (!takes_any) {
    if (handles_stops) {
      cmd.run = [run = std::move(cmd.run)] {
        stop_signals::defer();
        return run();
      };
    }
    return;
  }
  auto path = std::make_shared<std::string>();
  add_config_option(app, *path);
  cmd.run = [&app, path, handles_stops, run = std::move(cmd.run)] {
    const auto getenv = [](const char* name) -> const char* { return std::getenv(name); };
    std::string error;
    bool stopped = false;
    auto file = handles_stops ? load_chosen_config_deferring_stops(*path, getenv, error, stopped)
                              : load_chosen_config(*path, getenv, error);
    if (stopped) {
      log::notice(error);
      return 0;
    }
    if (file) {
      OptionLayers layers(app, common);
      layers.add_path_keys({"db"});
      error = check_tool_tables(*file, app, layers);
      if (error.empty()) error = layers.apply(*file, {app.get_name(), ""}, getenv);
    }
    if (!error.empty()) {
      log::error(app.get_name() + ": " + error);
      return 2;
    }
    warn_about_unknown_variables(app, {});
    return run();
  };
}

}  // namespace mailtap::cli
