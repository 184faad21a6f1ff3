#include "tools/tool_options.hpp"

#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/cli/color_option.hpp"
#include "proxy/common/log.hpp"
#include "proxy/options/database_path_option.hpp"
#include "storage/default_path.hpp"

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

std::unique_ptr<storage::Reader> ToolOptions::open_reader(std::string_view tool) const {
  std::string error;
  const std::string path = database_path(error);
  if (path.empty()) {
    log::error(std::string(tool) + ": " + error);
    return nullptr;
  }
  auto reader = storage::Reader::open(path, error, storage::Reader::Use::one_shot);
  if (!reader) {
    std::error_code ec;
    if (const std::string note = missing_database_note();
        !note.empty() && !std::filesystem::exists(path, ec))
      error += " (" + note + ")";
    log::error(std::string(tool) + ": " + error);
  }
  return reader;
}

std::string ToolOptions::missing_database_note() const {
  // MAILTAP_DB and the config file's db arrive as --db's value: empty means the XDG default.
  if (!db.empty()) return "";
  return "the default database; the systemd user unit records to "
         "~/.local/state/mailtap/mailtap.db: give --db PATH or set MAILTAP_DB to read that";
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

bool write_stdout(std::string_view bytes) {
  return write_all(STDOUT_FILENO, bytes);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool OutputFile::open(const std::string& path, std::string& error) {
  path_ = path;
  // Not O_TRUNC: an existing file is emptied only once it is 0600, so the mail never sits in
  // a file others can read.
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    error = errno == ELOOP ? path + ": a symbolic link; not followed (give the path it points to)"
                           : path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  // A FIFO or a device (/dev/null) keeps its mode: it is not a file the mail stays in.
  if (S_ISREG(st.st_mode)) {
    if ((st.st_mode & 07777) != 0600 && ::fchmod(fd_, 0600) != 0) {
      error = path + ": cannot set mode 0600, so no mail is written to it: " + std::strerror(errno);
      return false;
    }
    if (::ftruncate(fd_, 0) != 0) {
      error = path + ": " + std::strerror(errno);
      return false;
    }
  }
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
  if (::close(fd) == 0) return true;
  error = path_ + ": " + std::strerror(errno);
  return false;
}

bool write_file(const std::string& path, std::string_view bytes, std::string& error) {
  OutputFile f;
  return f.open(path, error) && f.write(bytes, error) && f.close(error);
}

}  // namespace mailtap::tools
