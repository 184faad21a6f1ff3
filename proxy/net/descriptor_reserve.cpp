#include "proxy/net/descriptor_reserve.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mailtap::net {

DescriptorReserve::DescriptorReserve() {
  take();
}

DescriptorReserve::~DescriptorReserve() {
  if (fd_ >= 0) ::close(fd_);
}

void DescriptorReserve::take() {
  if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

bool DescriptorReserve::turn_away_one(int listen_fd, std::string_view line) {
  if (fd_ < 0) {
    take();  // descriptors may have freed up since it was spent
    return false;
  }
  ::close(fd_);
  fd_ = -1;
  const int client = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (client >= 0) {
    // A client just connected has sent nothing yet (SMTP waits for the greeting), so the close
    // after the half-close ends the connection in order and the line is read.
    (void)::send(client, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(client, SHUT_WR);
    ::close(client);
  }
  take();
  return client >= 0;
}

}  // namespace mailtap::net
