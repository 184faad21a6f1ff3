#include "proxy/net/descriptor_reserve.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/error.hpp>
#include <atomic>
#include <cerrno>
#include <vector>

namespace mailtap::net {

bool out_of_descriptors(const std::error_code& ec) {
  return ec.category() == asio::error::get_system_category() &&
         (ec.value() == EMFILE || ec.value() == ENFILE);
}

std::string out_of_descriptors_refusal(const std::error_code& ec,
                                       std::string_view connections_flag) {
  std::string limit;
  if (rlimit lim{}; ec.value() == EMFILE && getrlimit(RLIMIT_NOFILE, &lim) == 0)
    limit = " (mailtap's open-file limit is " + std::to_string(lim.rlim_cur) + ")";
  // ENFILE: the kernel's table, every process's files together, is full; mailtap's own limit
  // is not what was reached, so raising it mends nothing.
  std::string mend = ec.value() == ENFILE ? "raise the system's file limit, sysctl fs.file-max"
                                          : "raise the limit, ulimit -n or LimitNOFILE=";
  if (!connections_flag.empty()) mend += ", or lower " + std::string(connections_flag);
  return "4.3.2 mailtap: " + ec.message() + limit +
         "; try again later (whoever runs mailtap: " + mend + ")";
}

std::error_code descriptor_shortage() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return {};
  }
  const std::error_code ec(errno, asio::error::get_system_category());
  return out_of_descriptors(ec) ? ec : std::error_code();
}

bool client_waiting(int listen_fd) {
  pollfd listening{listen_fd, POLLIN, 0};
  int ready = 0;
  do ready = ::poll(&listening, 1, 0);
  while (ready < 0 && errno == EINTR);
  return ready > 0 && (listening.revents & POLLIN) != 0;
}

namespace {
std::atomic<int> resolving_without_reserve{0};
}  // namespace

ResolvingWithoutReserve::ResolvingWithoutReserve() {
  ++resolving_without_reserve;
}

ResolvingWithoutReserve::~ResolvingWithoutReserve() {
  --resolving_without_reserve;
}

bool room_beside_resolves() {
  const int resolving = resolving_without_reserve.load();
  if (resolving == 0) return true;
  // The client's descriptor and the one kept for its socket, besides the resolvers'.
  std::vector<int> probes;
  bool room = true;
  for (int i = 0; room && i < resolving + 2; ++i) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      room = false;
    else
      probes.push_back(fd);
  }
  for (const int fd : probes) ::close(fd);
  return room;
}

}  // namespace mailtap::net
