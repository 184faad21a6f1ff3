#include "tools/open_permission.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "proxy/common/private_file.hpp"
#include "proxy/common/user_name.hpp"

namespace mailtap::tools {

namespace {

std::string owner_and_mode(const struct stat& st) {
  return "owned by " + user_label(st.st_uid) + ", mode " + octal_mode(st.st_mode);
}

// Denied `mode` access to `path` for the effective user (EACCES alone: not a missing file).
bool denied(const std::string& path, int mode) {
  return ::faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS) != 0 && errno == EACCES;
}

std::string runs_as() {
  return "and mailtap runs as " + user_label(::geteuid());
}

}  // namespace

std::string permission_denied_reason(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return "";
  // The directories on the way, from the root down: the first that cannot be entered.
  std::filesystem::path dir;
  for (const auto& part : absolute.parent_path()) {
    dir /= part;
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return "";  // a missing directory is not permissions
    if (S_ISDIR(st.st_mode) && denied(dir.string(), X_OK))
      return "permission denied: cannot enter '" + dir.string() + "' (" + owner_and_mode(st) +
             "), " + runs_as();
  }
  // The database, then the files SQLite reads beside it.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string file = path + suffix;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) continue;
    if (denied(file, R_OK))
      return "permission denied: '" + file + "' is " + owner_and_mode(st) + ", " + runs_as();
  }
  return "";
}

}  // namespace mailtap::tools
