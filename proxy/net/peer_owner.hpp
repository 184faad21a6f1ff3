// Which local user's process holds the other end of a TCP connection mailtap accepted: the
// kernel's answer to a NETLINK_SOCK_DIAG lookup of that one socket (what `ss -tne` asks; no
// privilege needed), else, where netlink is unavailable (no module, seccomp), the uid column
// of /proc/net/tcp and /proc/net/tcp6. Loopback is no boundary between the users of one
// machine: this is how mailtap tells them apart (docs/proxy.md, "Who may connect").
#pragma once

#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <string>

#include "proxy/common/file_descriptor.hpp"
#include "proxy/net/socket_owner_answers.hpp"

namespace mailtap::net {

struct PeerOwner {
  enum class Kind : std::uint8_t {
    user,       // a socket of this network namespace: `uid` owns it
    elsewhere,  // no such socket here: the client is on another machine or namespace
    gone,       // the client closed its socket before it was looked up: no one holds it
    unknown,    // neither lookup could tell: `why`
  };
  Kind kind = Kind::unknown;
  std::uint32_t uid = 0;
  std::string why;
};

// A loopback address, a v4-mapped one (::ffff:127.0.0.1, on a dual-stack listener) included:
// a client from one is always of this machine and network namespace.
bool is_loopback(const asio::ip::address& address);

// Not thread-safe: one per thread that accepts (the proxy's acceptor keeps one; its netlink
// socket is opened once and reused, one round trip per connection).
class PeerOwnerLookup {
 public:
  PeerOwnerLookup() = default;
  PeerOwnerLookup(const PeerOwnerLookup&) = delete;
  PeerOwnerLookup& operator=(const PeerOwnerLookup&) = delete;

  // Opens the netlink socket ahead of the first connection (while descriptors are plenty).
  void prepare();
  // `local` is mailtap's end of the connection, `peer` the client's.
  PeerOwner find(const asio::ip::tcp::endpoint& local, const asio::ip::tcp::endpoint& peer);
  // The same for a connected socket's descriptor.
  PeerOwner find(int socket);

 private:
  PeerOwner after_netlink_error(const TcpConnection& c, const asio::ip::tcp::endpoint& local,
                                int error);
  PeerOwner netlink_broke(const TcpConnection& c, const std::string& failure);

  FileDescriptor netlink_;
  std::uint32_t sequence_ = 0;
  bool netlink_refused_ = false;  // socket() failed once: not tried again
};

}  // namespace mailtap::net
