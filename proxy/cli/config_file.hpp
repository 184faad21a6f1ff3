// mailtap's config file (docs/config.md): where it lives, and reading it. What its text says is
// config_text.hpp's.
//
// The whole text is wiped from memory once read: a value may be a password.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cli/config_text.hpp"
#include "proxy/common/stop_signal_deferral.hpp"

namespace mailtap::cli {

struct ConfigFile {
  std::string path;               // "" when there is no file (the default one does not exist)
  bool private_to_owner = false;  // owned by this user, no access for group or others
  unsigned mode = 0;              // the permission bits, for messages
  unsigned owner = 0;             // the owner's uid, for messages
  // The absolute directory of a file on disk, which relative paths in it are relative to (as
  // git takes an include's); "" for a pipe, where a relative path has no directory to be in.
  std::string directory;
  std::vector<ConfigEntry> entries;
  std::vector<ConfigTable> tables;

  // The entry for `key` in `section`, or nullptr.
  const ConfigEntry* find(std::string_view section, std::string_view key) const;
  // Every entry of `section`, in file order.
  std::vector<const ConfigEntry*> section(std::string_view section) const;
  // NAME of every [upstream.NAME] table, in file order.
  std::vector<std::string> upstream_names() const;
  // The first table, in file order, that is none of `known` ("" for the keys before any table)
  // and no [upstream.NAME], or nullptr. [upstream] itself holds the [upstream.NAME] tables and
  // is known while it holds no key of its own.
  const ConfigTable* first_unknown_table(const std::vector<std::string>& known) const;
  // "PATH:LINE" for messages.
  std::string where(const ConfigEntry& e) const;
  std::string where(const ConfigTable& t) const;
};

// $XDG_CONFIG_HOME/mailtap/config.toml if XDG_CONFIG_HOME is absolute, else
// $HOME/.config/mailtap/config.toml; "" when neither is set.
std::string default_config_path(const std::function<const char*(const char*)>& getenv);
std::string default_config_path();

// Reads `path`. A missing file is an error when `explicit_path` (--config), else an empty
// ConfigFile. A file (or pipe) that group or others may write, or that someone other than
// this user or root owns, is refused (docs/config.md). Returns nullopt with `error` set on failure.
// Under a `watch` (a command that handles the stop signals, which are deferred), a stop signal
// ends the read, a FIFO's wait for its writer included: nullopt, `error` saying it was stopped,
// and WaitWatch::caught() the signal.
std::optional<ConfigFile> load_config_file(const std::string& path, bool explicit_path,
                                           std::string& error,
                                           stop_signals::WaitWatch* watch = nullptr);

}  // namespace mailtap::cli
