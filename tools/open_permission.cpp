#include "tools/open_permission.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <vector>

namespace mailtap::tools {

namespace {

// "root (uid 0)", or "uid 1234" for a uid with no name.
std::string user_name(uid_t uid) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr)
    return std::string(found->pw_name) + " (uid " + std::to_string(uid) + ")";
  return "uid " + std::to_string(uid);
}

std::string owner_and_mode(const struct stat& st) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "owned by " + user_name(st.st_uid) + ", mode " + mode;
}

// Denied `mode` access to `path` for the effective user (EACCES alone: not a missing file).
bool denied(const std::string& path, int mode) {
  return ::faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS) != 0 && errno == EACCES;
}

std::string runs_as() {
  return "and mailtap runs as " + user_name(::geteuid());
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
