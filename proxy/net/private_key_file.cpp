#include "proxy/net/private_key_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "proxy/common/file_descriptor.hpp"
#include "proxy/common/private_file.hpp"

namespace mailtap::net {

std::string file_kind_refusal(const struct stat& st, const std::string& what) {
  if (S_ISDIR(st.st_mode)) return what + ": a directory, not a file";
  if (!S_ISREG(st.st_mode)) return what + ": not a regular file";
  return {};
}

std::string private_key_refusal(const struct stat& st, const std::string& path,
                                const std::string& what, const std::string& alternative) {
  if (std::string refusal = file_kind_refusal(st, what); !refusal.empty())
    return alternative.empty() ? refusal : refusal + " (" + alternative + ")";
  const PrivacyProblem problem = privacy_problem(st, "a private key");
  if (problem.kind == PrivacyProblem::none) return {};
  return what + ": " + problem.reason + " (" +
         (problem.kind == PrivacyProblem::too_open ? "chmod 600 " + path : "chown it to yourself") +
         (alternative.empty() ? "" : ", or " + alternative) + ")";
}

int open_regular_file(const std::string& path, const std::string& what, struct stat& st,
                      std::string& error) {
  FileDescriptor file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  int err = 0;
  if (file.fd < 0 || ::fstat(file.fd, &st) != 0) {
    err = errno;
    error = what + ": " + std::strerror(err);
  } else {
    error = file_kind_refusal(st, what);
    if (error.empty()) return std::exchange(file.fd, -1);
  }
  // Closed here, so that errno is set after the close and not taken from it.
  if (file.fd >= 0) ::close(std::exchange(file.fd, -1));
  errno = err;
  return -1;
}

int open_private_key(const std::string& path, const std::string& what,
                     const std::string& alternative, bool missing_ok, std::string& error) {
  struct stat st {};
  FileDescriptor key_file{open_regular_file(path, what, st, error)};
  if (key_file.fd >= 0) {
    error = private_key_refusal(st, path, what, alternative);
    return error.empty() ? std::exchange(key_file.fd, -1) : -1;
  }
  if (errno == ENOENT && missing_ok) {
    error.clear();
  } else if (!alternative.empty()) {
    // There but not ours to read (another user's 0600 key): made ours, it is held to the
    // privacy rule like any other.
    error += errno == EACCES ? " (chown it to yourself, or " + alternative + ")"
                             : " (" + alternative + ")";
  }
  return -1;
}

std::optional<smtp::Secret> read_private_file(int fd, std::size_t max, const std::string& what,
                                              std::string& error) {
  // One allocation of the largest size allowed: the buffer never grows, so no copy of a
  // key is left behind in memory freed by a reallocation (smtp::Secret).
  smtp::Secret bytes(max + 1);
  for (;;) {
    const std::size_t want = std::min<std::size_t>(bytes.room(), 64 * 1024);
    if (want == 0) {
      error = what + " is longer than " + std::to_string(max / 1024) + " KiB: not a key file";
      return std::nullopt;
    }
    const std::size_t before = bytes.size();
    char* at = bytes.extend(want);
    const ssize_t n = ::read(fd, at, want);
    bytes.truncate(before + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = what + " cannot be read (" + std::strerror(errno) + ")";
      return std::nullopt;
    }
    if (n == 0) return bytes;
  }
}

}  // namespace mailtap::net
