// What every read-the-record tool shares: --db (else $MAILTAP_DB, else the XDG default),
// --json, and whether stdout gets ANSI colour (only on a terminal, and never with NO_COLOR).
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "storage/reader.hpp"

namespace mailtap::tools {

struct ToolOptions {
  std::string db;     // --db; "" = default_database_path()
  bool json = false;  // --json

  // Adds --db (and --json when `with_json`) to `app`, writing into this object.
  void add_to(CLI::App& app, bool with_json = true);
  // The path the tool should open; "" with `error` set if none can be determined.
  std::string database_path(std::string& error) const;
  // Opens the database read-only; logs a clear error and returns nullptr on failure.
  std::unique_ptr<storage::Reader> open_reader(std::string_view tool) const;
};

// Terminal styling, decided once per run: no escapes unless stdout is a terminal and NO_COLOR
// is unset, so pipes and files get plain text.
class Style {
 public:
  static Style for_stdout();
  static Style plain() { return Style(false); }
  bool enabled() const { return on_; }
  std::string bold(std::string_view s) const { return wrap("1", s); }
  std::string dim(std::string_view s) const { return wrap("2", s); }
  std::string red(std::string_view s) const { return wrap("31", s); }
  std::string green(std::string_view s) const { return wrap("32", s); }
  std::string yellow(std::string_view s) const { return wrap("33", s); }
  std::string cyan(std::string_view s) const { return wrap("36", s); }
  std::string magenta(std::string_view s) const { return wrap("35", s); }

 private:
  explicit Style(bool on) : on_(on) {}
  std::string wrap(std::string_view code, std::string_view s) const;
  bool on_;
};

// Writes all of `bytes` to stdout (binary-safe); false on a write error.
bool write_stdout(std::string_view bytes);
// Writes `bytes` to `path` (created 0600: recordings hold mail); false with `error` on failure.
bool write_file(const std::string& path, std::string_view bytes, std::string& error);

}  // namespace mailtap::tools
