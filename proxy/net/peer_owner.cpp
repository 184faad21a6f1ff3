#include "proxy/net/peer_owner.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

#include "proxy/common/log.hpp"

namespace mailtap::net {

namespace {

std::string errno_text(int e) {
  return std::system_category().message(e);
}

// The connection from the client's side; a v4-mapped pair (a dual-stack listener) is the IPv4
// connection it stands for, which is how the client's IPv4 socket knows it.
TcpConnection connection_of(const asio::ip::tcp::endpoint& local,
                            const asio::ip::tcp::endpoint& peer) {
  TcpConnection c;
  asio::ip::address server = local.address();
  asio::ip::address client = peer.address();
  if (server.is_v6() && client.is_v6() && server.to_v6().is_v4_mapped() &&
      client.to_v6().is_v4_mapped()) {
    server = asio::ip::make_address_v4(asio::ip::v4_mapped, server.to_v6());
    client = asio::ip::make_address_v4(asio::ip::v4_mapped, client.to_v6());
  }
  c.v6 = client.is_v6();
  if (c.v6) {
    const auto s = server.to_v6().to_bytes();
    const auto p = client.to_v6().to_bytes();
    std::memcpy(c.server_address.data(), s.data(), 16);
    std::memcpy(c.client_address.data(), p.data(), 16);
  } else {
    const auto s = server.to_v4().to_bytes();
    const auto p = client.to_v4().to_bytes();
    std::memcpy(c.server_address.data(), s.data(), 4);
    std::memcpy(c.client_address.data(), p.data(), 4);
  }
  // A link-local client (fe80::2%eth0) is found only on its interface.
  if (c.v6) c.interface = static_cast<std::uint32_t>(client.to_v6().scope_id());
  c.client_port = peer.port();
  c.server_port = local.port();
  return c;
}

// Who holds the client socket's line, reading the table to its end; nullopt if the line is not
// there, or the table cannot be read (`why` then says so).
std::optional<PeerOwner> owner_in_table(const char* path, const TcpConnection& c, bool table_v6,
                                        std::string& why) {
  FileDescriptor file(::open(path, O_RDONLY | O_CLOEXEC));
  if (file.fd < 0) {
    why += std::string(why.empty() ? "" : "; ") + path + ": " + errno_text(errno);
    return std::nullopt;
  }
  ProcTcpTableScan scan(c, table_v6);
  const auto found = [&scan]() -> std::optional<PeerOwner> {
    if (scan.gone()) return PeerOwner{PeerOwner::Kind::gone, 0, {}};
    if (scan.uid()) return PeerOwner{PeerOwner::Kind::user, *scan.uid(), {}};
    return std::nullopt;
  };
  std::array<char, 16384> buffer{};
  for (;;) {
    const ssize_t n = ::read(file.fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why += std::string(why.empty() ? "" : "; ") + path + ": " + errno_text(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    scan.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    if (auto owner = found()) return owner;
  }
  scan.finish();
  return found();
}

// /proc/net/tcp and tcp6: where netlink could not answer. Read only then: a table holds every
// socket of the namespace, a netlink lookup just the one.
PeerOwner owner_from_proc(const TcpConnection& c, const std::string& netlink_failure) {
  std::string why;
  std::optional<PeerOwner> owner;
  if (!c.v6) owner = owner_in_table("/proc/net/tcp", c, false, why);
  if (!owner) owner = owner_in_table("/proc/net/tcp6", c, true, why);
  if (owner) return *owner;
  if (why.empty()) return {PeerOwner::Kind::elsewhere, 0, {}};
  return {PeerOwner::Kind::unknown, 0, netlink_failure + "; " + why};
}

}  // namespace

bool is_loopback(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback();
  return address.is_loopback();
}

void PeerOwnerLookup::prepare() {
  if (netlink_.fd >= 0 || netlink_refused_) return;
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    // Out of descriptors is no lasting refusal: tried again with the next connection.
    netlink_refused_ = errno != EMFILE && errno != ENFILE;
    return;
  }
  netlink_.fd = fd;
  // The kernel answers at once; a bound keeps a lost answer from holding the acceptor.
  timeval limit{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
}

PeerOwner PeerOwnerLookup::find(int socket) {
  sockaddr_storage local{}, peer{};
  socklen_t local_size = sizeof local, peer_size = sizeof peer;
  if (::getsockname(socket, reinterpret_cast<sockaddr*>(&local), &local_size) != 0 ||
      ::getpeername(socket, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0)
    return {PeerOwner::Kind::unknown, 0, "the connection's addresses: " + errno_text(errno)};
  asio::ip::tcp::endpoint l, p;
  std::memcpy(l.data(), &local, std::min<std::size_t>(local_size, l.capacity()));
  std::memcpy(p.data(), &peer, std::min<std::size_t>(peer_size, p.capacity()));
  return find(l, p);
}

PeerOwner PeerOwnerLookup::find(const asio::ip::tcp::endpoint& local,
                                const asio::ip::tcp::endpoint& peer) {
  const TcpConnection c = connection_of(local, peer);
  std::string failure = "netlink sock_diag: ";
  prepare();
  if (netlink_.fd < 0) return owner_from_proc(c, failure + "no socket");
  const std::uint32_t sequence = ++sequence_;
  const std::string request = sock_diag_request(c, sequence);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(netlink_.fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0)
    return netlink_broke(c, failure + errno_text(errno));
  std::array<std::uint8_t, 8192> answer{};
  for (;;) {
    sockaddr_nl from{};
    socklen_t from_size = sizeof from;
    const ssize_t n = ::recvfrom(netlink_.fd, answer.data(), answer.size(), 0,
                                 reinterpret_cast<sockaddr*>(&from), &from_size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return netlink_broke(c, failure + errno_text(errno));
    if (from.nl_pid != 0) continue;  // not the kernel's: another process's datagram
    const SockDiagAnswer a =
        read_sock_diag_answer(std::span(answer.data(), static_cast<std::size_t>(n)), sequence, c);
    switch (a.kind) {
      case SockDiagAnswer::Kind::owner:
        return {PeerOwner::Kind::user, a.uid, {}};
      case SockDiagAnswer::Kind::gone:
        return {PeerOwner::Kind::gone, 0, {}};
      case SockDiagAnswer::Kind::none:
        continue;  // an answer to an earlier request that timed out
      case SockDiagAnswer::Kind::unreadable:
        return netlink_broke(c, failure + "an answer that could not be read");
      case SockDiagAnswer::Kind::error:
        return after_netlink_error(c, local, a.error);
    }
  }
}

// ENOENT is "no such socket", or "no inet_diag module" (the kernel says both so): a loopback
// client is always of this namespace, so for one the tables decide; any other client not found
// is elsewhere (remote), whose admission --allow-remote governs.
PeerOwner PeerOwnerLookup::after_netlink_error(const TcpConnection& c,
                                               const asio::ip::tcp::endpoint& local, int error) {
  if (error == ENOENT && !is_loopback(local.address())) return {PeerOwner::Kind::elsewhere, 0, {}};
  return owner_from_proc(c, "netlink sock_diag: " + errno_text(error));
}

// A socket whose exchange went wrong is closed (a next connection opens another), and the
// tables answer for this one.
PeerOwner PeerOwnerLookup::netlink_broke(const TcpConnection& c, const std::string& failure) {
  log::info("who connected: " + failure + "; reading /proc/net/tcp instead");
  ::close(netlink_.fd);
  netlink_.fd = -1;
  return owner_from_proc(c, failure);
}

}  // namespace mailtap::net
