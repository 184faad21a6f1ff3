// The text of mailtap's config file (docs/config.md), read and written: plain C++ over a string,
// no file (config_file.hpp reads the file; tests/fuzz/fuzz_config_text reads any text).
//
// The syntax is the TOML that people write by hand for tools: `[section]` and `[upstream.NAME]`
// tables, `key = value` with "basic strings" (escapes), 'literal strings', integers, booleans
// and `#` comments; an unquoted value is taken as a string up to a comment (as INI files have
// it). CLI11 2.1.2's own reader is not used: it cuts a quoted value at `#` or `,` and keeps
// escapes raw, so `password = "a#b"` would silently become `"a`.
#pragma once

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

// Parses `text`; on a syntax error returns nullopt with `error` = "line N: what" (no value quoted:
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
// tab and newline (a NUL, an ESC or a C1 control that no option means, judged by character,
// not by byte), in the file's words. `meant`: "value", or "name" for a key or table's name.
std::string unmeant_value_problem(std::string_view value, std::string_view meant = "value");

// NAME of a named upstream's table ("upstream.NAME"); empty if `section` is not one.
inline constexpr std::string_view kUpstreamPrefix = "upstream.";
std::string_view upstream_table_name(std::string_view section);

// Every byte the string's buffer holds wiped, not just up to its size (a value may be a
// password), and the string left empty.
void wipe(std::string& s) noexcept;

}  // namespace mailtap::cli
