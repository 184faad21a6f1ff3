#include "tools/tool_options.hpp"

#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>  // mkostemp
#include <cstring>

#include "proxy/cli/color_option.hpp"
#include "proxy/common/installed_docs.hpp"
#include "proxy/common/log.hpp"
#include "proxy/options/database_path_option.hpp"
#include "storage/default_path.hpp"
#include "tools/open_permission.hpp"

namespace mailtap::tools {

void ToolOptions::add_to(CLI::App& app, bool with_json) {
  add_db_to(app, "database file");
  if (with_json) app.add_flag("--json", json, "machine-readable JSON output");
}

void ToolOptions::add_db_to(CLI::App& app, std::string_view what) {
  app.add_option("--db", db,
                 std::string(what) +
                     " (default: $MAILTAP_DB, else db in the config file, else "
                     "$XDG_DATA_HOME/mailtap/mailtap.db, else "
                     "~/.local/share/mailtap/mailtap.db; an empty path, or one that begins "
                     "with '-' or '~', is refused)")
      ->check(options::database_path_validator(""));
}

void ToolOptions::add_color_to(CLI::App& app) {
  cli::add_color_option(app, color);
}

std::string ToolOptions::database_path(std::string& error) const {
  if (!db.empty()) return db;
  return storage::default_database_path(error);
}

std::unique_ptr<storage::Reader> ToolOptions::open_reader(std::string_view tool,
                                                          int& failure_status) const {
  std::string error;
  const std::string path = database_path(error);
  if (path.empty()) {
    log::error(std::string(tool) + ": " + error);
    failure_status = 2;
    return nullptr;
  }
  failure_status = 1;
  auto reader = storage::Reader::open(path, error, storage::Reader::Use::one_shot);
  if (!reader) log::error(std::string(tool) + ": " + explain_open_error(path, error));
  return reader;
}

std::string ToolOptions::explain_open_error(const std::string& path, std::string error) const {
  std::error_code ec;
  if (const std::string note = missing_database_note(path);
      !note.empty() && !std::filesystem::exists(path, ec))
    error += " (" + note + ")";
  else if (const std::string why = permission_denied_reason(path); !why.empty())
    error += " (" + why + ")";
  return error;
}

std::string ToolOptions::missing_database_note(const std::string& path) const {
  // MAILTAP_DB and the config file's db arrive as --db's value: empty means the XDG default.
  if (!db.empty()) return "";
  if (const std::string older = storage::older_unit_database_left(path); !older.empty())
    return "the default database; the systemd user unit of an older mailtap recorded to " + older +
           ", which is there: give --db " + older + " to read it, or move it to the default (see " +
           documentation_path("install.md") + ", \"Upgrading\")";
  return "the default database, where mailtap proxy and its systemd user unit record: give "
         "--db PATH or set MAILTAP_DB to read another";
}

namespace {
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}
}  // namespace

namespace {
// The process has one stdout, so whether it failed is the process's: kept once, here, whichever
// part of a tool writes to it.
std::string stdout_tool;
bool stdout_broken = false;
}  // namespace

void set_stdout_tool(std::string_view tool) {
  stdout_tool = tool;
}

bool write_stdout(std::string_view bytes) {
  if (stdout_broken) return false;
  if (write_all(STDOUT_FILENO, bytes)) return true;
  stdout_broken = true;
  log::error((stdout_tool.empty() ? "" : stdout_tool + ": ") + "stdout: " + std::strerror(errno));
  return false;
}

bool stdout_failed() {
  return stdout_broken;
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

bool OutputFile::open(const std::string& path, std::string& error) {
  path_ = path;
  struct stat st {};
  const bool exists = ::lstat(path.c_str(), &st) == 0;
  if (exists && S_ISLNK(st.st_mode)) {
    error = path + ": a symbolic link; not followed (give the path it points to)";
    return false;
  }
  // A FIFO or a device (/dev/null) is written as it is, and keeps its mode: it is not a file
  // the mail stays in, nor one to put another in the place of.
  if (exists && !S_ISREG(st.st_mode)) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0) error = path + ": " + std::strerror(errno);
    return fd_ >= 0;
  }
  // A file: written beside it, and put in its place only once complete (close()), so that a
  // write that fails partway leaves the file there before untouched. mkostemp makes it 0600
  // with O_EXCL (no link followed): the mail never sits in a file others can read.
  std::string temp = path + ".partial-XXXXXX";
  fd_ = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd_ < 0) {
    error = path + ": cannot create a file beside it to write: " + std::strerror(errno);
    return false;
  }
  temp_path_ = std::move(temp);
  return true;
}

bool OutputFile::write(std::string_view bytes, std::string& error) {
  if (write_all(fd_, bytes)) return true;
  error = path_ + ": " + std::strerror(errno);
  return false;
}

bool OutputFile::close(std::string& error) {
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    error = path_ + ": " + std::strerror(errno);
    return false;
  }
  if (temp_path_.empty()) return true;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    error = path_ + ": " + std::strerror(errno);
    return false;  // the destructor removes the temporary file
  }
  temp_path_.clear();
  return true;
}

bool write_file(const std::string& path, std::string_view bytes, std::string& error) {
  OutputFile f;
  return f.open(path, error) && f.write(bytes, error) && f.close(error);
}

}  // namespace mailtap::tools
