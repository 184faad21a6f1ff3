#include "tools/tool_options.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "proxy/session/log.hpp"
#include "storage/default_path.hpp"

namespace mailtap::tools {

void ToolOptions::add_to(CLI::App& app, bool with_json) {
  app.add_option("--db", db,
                 "database file (default: $MAILTAP_DB, else "
                 "$XDG_DATA_HOME/mailtap/mailtap.db, else ~/.local/share/mailtap/mailtap.db)");
  if (with_json) app.add_flag("--json", json, "machine-readable JSON output");
}

std::string ToolOptions::database_path(std::string& error) const {
  if (!db.empty()) return db;
  return storage::default_database_path(error);
}

std::unique_ptr<storage::Reader> ToolOptions::open_reader(std::string_view tool) const {
  std::string error;
  const std::string path = database_path(error);
  if (path.empty()) {
    log::error(std::string(tool) + ": no database path: " + error + " (give --db PATH)");
    return nullptr;
  }
  auto reader = storage::Reader::open(path, error);
  if (!reader) log::error(std::string(tool) + ": " + error);
  return reader;
}

Style Style::for_stdout() {
  const char* no_color = std::getenv("NO_COLOR");
  const bool on = ::isatty(STDOUT_FILENO) == 1 && (no_color == nullptr || *no_color == '\0');
  return Style(on);
}

std::string Style::wrap(std::string_view code, std::string_view s) const {
  if (!on_) return std::string(s);
  std::string out = "\x1b[";
  out += code;
  out += 'm';
  out += s;
  out += "\x1b[0m";
  return out;
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

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

bool write_stdout(std::string_view bytes) {
  return write_all(STDOUT_FILENO, bytes);
}

bool write_file(const std::string& path, std::string_view bytes, std::string& error) {
  Fd f;
  f.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (f.fd < 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  if (!write_all(f.fd, bytes)) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  if (::close(f.fd) != 0) {
    f.fd = -1;
    error = path + ": " + std::strerror(errno);
    return false;
  }
  f.fd = -1;
  return true;
}

}  // namespace mailtap::tools
