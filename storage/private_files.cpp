#include "storage/private_files.hpp"

#include <fcntl.h>
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

Status refuse_foreign_link(const struct stat& st, const std::string& path, std::string_view what) {
  if (st.st_uid == ::geteuid() || st.st_uid == 0) return {};
  return Status::error(kSqliteCantOpen, std::string(what) + " " + quoted(path) +
                                            " is a symbolic link made by " + not_ours(st.st_uid) +
                                            ": that user would choose where the record goes");
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
  return refuse_foreign_link(st, path, what);
}

Status open_as_seen(const std::string& path, const struct stat& seen, bool follow, int flags,
                    std::string_view what, UniqueFd& out, struct stat& st, int& open_error) {
  open_error = 0;
  out.reset(::open(path.c_str(), flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW)));
  if (!out.valid()) {
    // With O_NOFOLLOW, a link where lstat saw none fails (ELOOP, or ENOTDIR with O_DIRECTORY):
    // a swap, not a failure to open, when what is there now is not what was seen.
    const int err = errno;
    struct stat now {};
    if (follow || (err != ELOOP && err != ENOTDIR) ||
        (::lstat(path.c_str(), &now) == 0 && now.st_dev == seen.st_dev &&
         now.st_ino == seen.st_ino)) {
      open_error = err;
      return {};
    }
  } else if (::fstat(out.get(), &st) != 0) {
    open_error = errno;
    out.reset();
    return {};
  } else if (st.st_dev == seen.st_dev && st.st_ino == seen.st_ino) {
    return {};
  }
  out.reset();
  return Status::error(kSqliteCantOpen, std::string(what) + " " + quoted(path) +
                                            " was replaced while it was being checked: whoever "
                                            "may write beside it would choose where the record "
                                            "goes");
}

Status open_checked(const std::string& path, int flags, std::string_view what, UniqueFd& out,
                    struct stat& st, int& open_error) {
  out.reset();
  open_error = 0;
  struct stat seen {};
  if (::lstat(path.c_str(), &seen) != 0) {
    open_error = errno;
    return {};
  }
  const bool link = S_ISLNK(seen.st_mode);
  if (link) {
    if (Status s = refuse_foreign_link(seen, path, what); !s.ok()) return s;
    if (::stat(path.c_str(), &seen) != 0) {
      open_error = errno;
      return {};
    }
  }
  return open_as_seen(path, seen, link, flags, what, out, st, open_error);
}

Status restrict_to_owner(int fd, const struct stat& st, const std::string& path) {
  if ((st.st_mode & 077) == 0) return {};
  if (::fchmod(fd, st.st_mode & 07700) == 0) return {};
  return Status::error(kSqliteCantOpen, "cannot restrict permissions of " + quoted(path) + " (" +
                                            octal_mode(st.st_mode) + "): " + std::strerror(errno));
}

}  // namespace mailtap::storage
