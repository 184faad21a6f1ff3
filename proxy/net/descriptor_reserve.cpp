#include "proxy/net/descriptor_reserve.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/error.hpp>
#include <cerrno>

namespace mailtap::net {

bool out_of_descriptors(const std::error_code& ec) {
  return ec.category() == asio::error::get_system_category() &&
         (ec.value() == EMFILE || ec.value() == ENFILE);
}

std::string out_of_descriptors_refusal(const std::error_code& ec) {
  std::string limit;
  if (rlimit lim{}; ec.value() == EMFILE && getrlimit(RLIMIT_NOFILE, &lim) == 0)
    limit = " (mailtap's open-file limit is " + std::to_string(lim.rlim_cur) + ")";
  return "4.3.2 mailtap: " + ec.message() + limit +
         "; try again later (whoever runs mailtap: raise the limit, ulimit -n or LimitNOFILE=, "
         "or lower --max-sessions)";
}

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
