// What every read-the-record tool shares: --db (else $MAILTAP_DB, else the XDG default),
// --json, and for the ones that colour their output, --color.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/common/terminal_style.hpp"
#include "storage/reader.hpp"

namespace mailtap::tools {

struct ToolOptions {
  std::string db;                                // --db; "" = default_database_path()
  bool json = false;                             // --json
  ColorChoice color = ColorChoice::auto_detect;  // --color

  // Adds --db (and --json when `with_json`) to `app`, writing into this object.
  void add_to(CLI::App& app, bool with_json = true);
  // Adds --db alone, its help saying what the database is to this command ("Database holding
  // the session"), then where the default comes from. An empty path is a usage error.
  void add_db_to(CLI::App& app, std::string_view what);
  // Adds --color to `app`.
  void add_color_to(CLI::App& app);
  // How stdout is styled: --color, NO_COLOR and whether stdout is a terminal.
  Style stdout_style() const { return Style::for_stdout(color); }
  // The path the tool should open; "" with `error` set if none can be determined.
  std::string database_path(std::string& error) const;
  // Opens the database read-only; logs a clear error and returns nullptr on failure, with
  // `failure_status` the exit status that failure means: 2 when no path can be made (no --db,
  // MAILTAP_DB, db in the config file, XDG_DATA_HOME or HOME: a usage error, as the proxy has
  // it), else 1 (the database cannot be read).
  std::unique_ptr<storage::Reader> open_reader(std::string_view tool, int& failure_status) const;
  // For "no database at PATH": that PATH is the default, as nothing named one (--db,
  // MAILTAP_DB, db in the config file), where the proxy and its systemd user unit record; or,
  // when an older unit's record is left in its state directory, that file, which the tool
  // does not read by itself (two records would be one unnoticed). "" when one was named.
  // Without parentheses.
  std::string missing_database_note(const std::string& path) const;
  // `error`, a failure to open the database at `path`, with missing_database_note() added in
  // parentheses when `path` does not exist and is the default: every tool says the same there.
  std::string explain_open_error(const std::string& path, std::string error) const;
};

// Names the tool in write_stdout's error ("sessions"): set once, before the command runs.
void set_stdout_tool(std::string_view tool);
// Writes all of `bytes` to stdout (binary-safe); false on a write error. The first error is said
// here, once ("mailtap: TOOL: stdout: No space left on device"), so callers only stop; and it
// ends the output: what was written stops at an unknown point, so every later call writes
// nothing and returns false at once. A loop that makes output asks stdout_failed() to stop
// early. (With SIGPIPE at its default a closed pipe ends the process instead, status 141.)
bool write_stdout(std::string_view bytes);
bool stdout_failed();
// Writes `bytes` to `path`, mode 0600 (recordings hold mail): written to a new file beside it
// and renamed over `path` once complete, so that a failure leaves an existing file as it was; a
// symbolic link is not followed. False with `error` on failure, then nothing was written.
bool write_file(const std::string& path, std::string_view bytes, std::string& error);

// A file written in pieces (a message or a document too large to hold), made as write_file
// makes it: the pieces go to a temporary file (mode 0600, created with O_EXCL) in the same
// directory, put in the place of `path` by close() only; destroyed before that, the temporary
// file is removed and an existing file at `path` is left untouched. A FIFO or device is
// written directly; a symbolic link is not followed. Each call returns false with `error` set
// (naming the file) on failure.
class OutputFile {
 public:
  OutputFile() = default;
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  bool open(const std::string& path, std::string& error);
  bool write(std::string_view bytes, std::string& error);
  bool close(std::string& error);

 private:
  std::string path_;
  std::string temp_path_;  // the file being written, until close() renames it to path_
  int fd_ = -1;
};

}  // namespace mailtap::tools
