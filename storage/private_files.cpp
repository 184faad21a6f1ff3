#include "storage/private_files.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/common/private_file.hpp"

namespace mailtap::storage {

namespace {

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

std::string not_ours(uid_t owner) {
  return "uid " + std::to_string(owner) + ", not by the user running mailtap (uid " +
         std::to_string(::geteuid()) + ")";
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

int UniqueFd::release() noexcept {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status refuse_foreign_owner(const struct stat& st, const std::string& path, std::string_view what) {
  if (st.st_uid == ::geteuid()) return {};
  return Status::error(kSqliteCantOpen,
                       std::string(what) + " " + quoted(path) + " is owned by " +
                           not_ours(st.st_uid) +
                           ": its owner could read the mail recorded in it, and change it");
}

Status refuse_foreign_link(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return {};
  if (st.st_uid == ::geteuid() || st.st_uid == 0) return {};
  return Status::error(kSqliteCantOpen, std::string(what) + " " + quoted(path) +
                                            " is a symbolic link made by " + not_ours(st.st_uid) +
                                            ": that user would choose where the record goes");
}

Status restrict_to_owner(int fd, const struct stat& st, const std::string& path) {
  if ((st.st_mode & 077) == 0) return {};
  if (::fchmod(fd, st.st_mode & 07700) == 0) return {};
  return Status::error(kSqliteCantOpen, "cannot restrict permissions of " + quoted(path) + " (" +
                                            octal_mode(st.st_mode) + "): " + std::strerror(errno));
}

}  // namespace mailtap::storage
