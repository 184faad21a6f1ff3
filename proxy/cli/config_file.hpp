// mailtap's config file (docs/config.md): where it lives, and reading it.
//
// The syntax is the TOML that people write by hand for tools: `[section]` and `[upstream.NAME]`
// tables, `key = value` with "basic strings" (escapes), 'literal strings', integers, booleans
// and `#` comments; an unquoted value is taken as a string up to a comment (as INI files have
// it). CLI11 2.1.2's own reader is not used: it cuts a quoted value at `#` or `,` and keeps
// escapes raw, so `password = "a#b"` would silently become `"a`.
//
// The whole text is wiped from memory once read: a value may be a password.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::cli {

struct ConfigEntry {
  // The value may be a password: destruction wipes it, and so does a move, from the source (a
  // short string lives inside the object, and a move only copies it).
  ConfigEntry() = default;
  ConfigEntry(const ConfigEntry&) = default;
  ConfigEntry(ConfigEntry&& other) noexcept;
  ConfigEntry& operator=(const ConfigEntry&) = default;
  ConfigEntry& operator=(ConfigEntry&& other) noexcept;
  ~ConfigEntry();

  std::string section;  // "" for keys before any table, else "proxy", "upstream.gmail" ...
  std::string key;      // as written, with '_' turned into '-' ("ca_file" -> "ca-file")
  std::string value;    // unquoted, escapes resolved; true/false/numbers as written
  int line = 0;
};

// A table the file names, where it first does: its [header], or the first dotted key that
// names it (upstream.gmail.host = ...). A table may hold no key and still be a mistake ([shwo]).
struct ConfigTable {
  std::string name;  // as ConfigEntry::section names it: "proxy", "upstream.gmail" ...
  int line = 0;
};

// What a file's text holds: its keys, and the tables named, in file order.
struct ConfigText {
  std::vector<ConfigEntry> entries;
  std::vector<ConfigTable> tables;
};

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

// Parses `text`; on a syntax error returns nullopt with `error` = "LINE: what" (no value quoted:
// it may be a secret).
std::optional<ConfigText> parse_config_text(std::string_view text, std::string& error);

// A value as a TOML basic string: "..." with \ " and control characters escaped.
std::string toml_quoted(std::string_view value);

// The header of the table `section` (a ConfigEntry's) as TOML writes it, which the file reads
// back as the same table: [proxy], [upstream.gmail], [upstream."a.b"] (an upstream name is one
// key, quoted when it is no bare key).
std::string written_table(std::string_view section);

// Why `value`, given outside the file (a MAILTAP_ variable), cannot be meant, or "": what the
// file refuses in its values too, bytes that are not UTF-8 and control characters other than
// tab and newline (a NUL or an ESC that no option means), in the file's words.
std::string unmeant_value_problem(std::string_view value);

// $XDG_CONFIG_HOME/mailtap/config.toml if XDG_CONFIG_HOME is absolute, else
// $HOME/.config/mailtap/config.toml; "" when neither is set.
std::string default_config_path(const std::function<const char*(const char*)>& getenv);
std::string default_config_path();

// Reads `path`. A missing file is an error when `explicit_path` (--config), else an empty
// ConfigFile. A file (or pipe) that group or others may write, or that someone other than
// this user or root owns, is refused (docs/config.md). Returns nullopt with `error` set on failure.
std::optional<ConfigFile> load_config_file(const std::string& path, bool explicit_path,
                                           std::string& error);

}  // namespace mailtap::cli
