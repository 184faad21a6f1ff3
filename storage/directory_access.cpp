#include "storage/directory_access.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "proxy/common/private_file.hpp"
#include "proxy/common/user_name.hpp"

namespace mailtap::storage {

std::string unwritable_directory_reason(const std::string& db_path) {
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(db_path, ec);
  if (ec) return "";
  const std::string dir = absolute.parent_path().string();
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "";
  // As the kernel will judge the creation: the effective user and groups.
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) == 0) return "";
  const int err = errno;
  const std::string need =
      "mailtap must create the database's -wal and -shm files and its -bodies directory beside "
      "it, and '" +
      dir + "' ";
  if (err == EROFS)
    return need + "is on a read-only file system (or made read-only for mailtap, as the " +
           "systemd unit's sandbox does outside ReadWritePaths=): choose a database in a " +
           "directory mailtap may write";
  if (err != EACCES) return "";
  return need + "(owned by " + user_label(st.st_uid) + ", mode " + octal_mode(st.st_mode) +
         ") is not writable by " + user_label(::geteuid()) +
         ", as whom mailtap runs: let this user write in that directory, or choose a database "
         "in one it may write";
}

bool write_access_lacking(const std::string& db_path) {
  if (!unwritable_directory_reason(db_path).empty()) return true;
  // Another user's piece of the record, or a link they made there, is refused
  // (private_files.hpp) until they or root remove it.
  for (const char* suffix : {"", "-wal", "-shm", "-bodies"}) {
    struct stat st {};
    if (::lstat((db_path + suffix).c_str(), &st) == 0 && st.st_uid != ::geteuid()) return true;
  }
  struct stat st {};
  if (::stat(db_path.c_str(), &st) != 0) return false;
  return ::faccessat(AT_FDCWD, db_path.c_str(), W_OK, AT_EACCESS) != 0 &&
         (errno == EACCES || errno == EROFS);
}

}  // namespace mailtap::storage
