// The record (the database, its -wal and -shm files, the body directory and its files) holds
// mail and user names, and may be put in a directory others can write (/tmp, a shared
// directory): what is found there must be the user's own, or another user made it to read what
// mailtap writes into it, or to point mailtap's writes elsewhere (docs/recording.md, "Whose the
// files are"). The writers (the recorder, prune) hold every piece of the record to these checks;
// the readers do not: reading a file someone else made gives them nothing.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

#include "storage/database.hpp"

namespace mailtap::storage {

// A descriptor that is closed when it goes out of scope.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept;
  void reset(int fd = -1) noexcept;

 private:
  int fd_;
};

// An error when `st` (of `path`, which `what` names: "the database file") is owned by another
// user than the one mailtap runs as (its effective uid).
Status refuse_foreign_owner(const struct stat& st, const std::string& path, std::string_view what);

// An error when `path` is a symbolic link another user made (root's are trusted, as the kernel's
// fs.protected_symlinks trusts them): planted in a directory others may write, it would choose
// where the record goes. A link of the user's own, or no link, is fine; so is nothing at all.
Status refuse_foreign_link(const std::string& path, std::string_view what);

// `path` opened with `flags` (O_CLOEXEC added) as `out`, with its fstat(2) in `st`, provided
// it is still the file `seen` describes: lstat(2) of `path` taken before (then the open does not
// follow a link), or, with `follow`, stat(2) of a link's target. Between the check and the open,
// whoever may write in the directory could have put another file, or a link, in its place (a
// link to a directory of the user's would pass every check of the owner made after it). An
// open that fails leaves `out` closed and its errno in `open_error` (0 otherwise); a file that
// is not the one seen is an error.
Status open_as_seen(const std::string& path, const struct stat& seen, bool follow, int flags,
                    std::string_view what, UniqueFd& out, struct stat& st, int& open_error);

// open_as_seen() of what is at `path` now: refused if it is another user's link (see
// refuse_foreign_link), followed if it is one of the user's own or root's. Nothing at `path`
// is an `open_error` (ENOENT), not an error.
Status open_checked(const std::string& path, int flags, std::string_view what, UniqueFd& out,
                    struct stat& st, int& open_error);

// Takes every permission away from group and others on the file or directory open as `fd`
// (owned by this user: see refuse_foreign_owner), whose fstat(2) is `st`; the owner's bits
// stay as they are. Not for SQLite's files: a descriptor of one opened and closed beside
// SQLite's own drops SQLite's locks on it (database.cpp, set_mode).
Status restrict_to_owner(int fd, const struct stat& st, const std::string& path);

}  // namespace mailtap::storage
