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

std::string private_key_refusal(const struct stat& st, const std::string& path,
                                const std::string& what, const std::string& alternative) {
  if (!S_ISREG(st.st_mode))
    return what + " is not a regular file" + (alternative.empty() ? "" : ": " + alternative);
  const PrivacyProblem problem = privacy_problem(st, "a private key");
  if (problem.kind == PrivacyProblem::none) return {};
  return what + ": " + problem.reason + " (" +
         (problem.kind == PrivacyProblem::too_open ? "chmod 600 " + path : "chown it to yourself") +
         (alternative.empty() ? "" : ", or " + alternative) + ")";
}

int open_private_key(const std::string& path, const std::string& what,
                     const std::string& alternative, bool missing_ok, std::string& error) {
  // O_NONBLOCK: a FIFO put where the key was would hold the open until something writes to it;
  // fstat below refuses it, as anything but a regular file.
  FileDescriptor key_file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (key_file.fd < 0) {
    if (errno == ENOENT && missing_ok) return -1;
    error = what + " cannot be read (" + std::strerror(errno) + ")";
    if (!alternative.empty()) error += ": make it yours (chown), or " + alternative;
    return -1;
  }
  struct stat st {};
  if (::fstat(key_file.fd, &st) != 0) {
    error = what + " cannot be read (" + std::strerror(errno) + ")";
    return -1;
  }
  error = private_key_refusal(st, path, what, alternative);
  if (!error.empty()) return -1;
  return std::exchange(key_file.fd, -1);
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
