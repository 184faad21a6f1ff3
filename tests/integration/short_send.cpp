// Fault injection for the integration tests, preloaded into mailtap (LD_PRELOAD): one large
// send() comes out short, as on a socket with little room left, at a point the test picks by
// size. The first send() of at least MAILTAP_SHORT_SEND_AT octets sends its first half, and the
// send() right after it on that descriptor fails with EAGAIN (the socket "full"); every other
// send() goes through untouched, so the socket is writable again at once. A short send is what
// a full socket does, but never at a moment a test can choose. MAILTAP_SHORT_SEND_MARK names a
// file created when it happened: the test knows it exercised what it meant to.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

namespace {

using SendFn = ssize_t (*)(int, const void*, size_t, int);

SendFn real_send() {
  static const auto fn = reinterpret_cast<SendFn>(dlsym(RTLD_NEXT, "send"));
  return fn;
}

std::size_t short_send_at() {
  static const std::size_t at = [] {
    const char* s = std::getenv("MAILTAP_SHORT_SEND_AT");
    return s != nullptr ? static_cast<std::size_t>(std::strtoull(s, nullptr, 10)) : 0;
  }();
  return at;
}

void mark() {
  const char* path = std::getenv("MAILTAP_SHORT_SEND_MARK");
  if (path == nullptr) return;
  const int fd = ::open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
}

enum Stage { waiting, shortened, done };
std::atomic<int> stage{waiting};
std::atomic<int> shortened_fd{-1};

}  // namespace

extern "C" ssize_t send(int fd, const void* buf, size_t len, int flags) {
  const std::size_t at = short_send_at();
  if (at > 0 && stage.load() != done) {
    int expected = waiting;
    if (len >= at && stage.compare_exchange_strong(expected, shortened)) {
      shortened_fd.store(fd);
      mark();
      return real_send()(fd, buf, len / 2, flags);
    }
    expected = shortened;
    if (fd == shortened_fd.load() && stage.compare_exchange_strong(expected, done)) {
      errno = EAGAIN;
      return -1;
    }
  }
  return real_send()(fd, buf, len, flags);
}
