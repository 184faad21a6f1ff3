#include "proxy/net/descriptor_reserve.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
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
std::atomic<unsigned long> room_probes{0};

// Free descriptors this many or more under the process's limit: room, without a look.
constexpr long kPlentyBeyondNeed = 16;

// Descriptors still free under the process's limit, from the kernel's count of those open (the
// size stat(2) gives /proc/self/fd, Linux 6.2 on: one call, no descriptor); -1 when not known.
// A count that includes descriptors above a lowered limit says fewer than there are: the probe
// then looks.
long free_under_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return -1;
  struct stat fds {};
  if (::stat("/proc/self/fd", &fds) != 0 || fds.st_size <= 0) return -1;
  return static_cast<long>(lim.rlim_cur) - static_cast<long>(fds.st_size);
}
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
  // Far from the process's limit, no look: in a large burst that would be resolving+2 opens
  // for each accept. Near it, the probe looks, and sees the system's table too (ENFILE).
  const long needed = resolving + 2;
  if (const long free = free_under_limit(); free >= needed + kPlentyBeyondNeed) return true;
  ++room_probes;
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

unsigned long room_probes_made() {
  return room_probes.load();
}

}  // namespace mailtap::net
