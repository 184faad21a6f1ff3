#include "tools/web/peer_watch.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace mailtap::tools::web {

namespace {

// How long the first look waits for the reset that answers the early octet: on loopback it
// comes at once; a search that starts without it stops at its next look. A bound, not a sleep:
// poll returns when the reset comes, so only a client still reading waits it out, once. Nothing
// sooner tells the two apart: POLLRDHUP and a zero read say the client's FIN came, which a
// half-close sends as a close does; POLLHUP comes only with the reset.
constexpr int kResetWaitMs = 20;

// POLLERR or POLLHUP within `wait_ms`: reset, or closed both ways.
bool reset_or_hung_up(int fd, int wait_ms) {
  pollfd p{fd, 0, 0};  // no events asked: poll says only POLLERR, POLLHUP and POLLNVAL
  int n = 0;
  do n = ::poll(&p, 1, wait_ms);
  while (n < 0 && errno == EINTR);
  return n > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

// The client sent the end of its octets (a shutdown of its side, or a close: no telling which).
bool request_stream_ended(int fd) {
  char octet = 0;
  const ssize_t n = ::recv(fd, &octet, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0;
}

}  // namespace

bool PeerWatch::gone() {
  if (fd_ < 0 || gone_) return gone_;
  if (reset_or_hung_up(fd_, 0)) return gone_ = true;
  if (probed_ || !request_stream_ended(fd_)) return false;
  const ssize_t sent = ::send(fd_, &kProbe, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return gone_ = true;
  if (sent != 1) return false;  // nothing went: the response goes whole, a later look tries again
  probed_ = true;
  return gone_ = reset_or_hung_up(fd_, kResetWaitMs);
}

}  // namespace mailtap::tools::web
