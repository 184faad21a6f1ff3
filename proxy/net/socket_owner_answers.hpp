// What the kernel says about who owns the client's end of a TCP connection to mailtap, read as
// plain C++ over bytes (no sockets here; peer_owner asks): the request and the answer of a
// NETLINK_SOCK_DIAG exact lookup, and the /proc/net/tcp and /proc/net/tcp6 tables that stand in
// for it where netlink is unavailable. Both readers take whatever the kernel hands them, odd or
// cut short, without reading past it (fuzz_socket_owner).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mailtap::net {

// One TCP connection, from the client's side: its socket's own address and port are
// `client_*`, mailtap's are `server_*`. Addresses in network order: an IPv4 one in the first 4
// octets (v6 false), an IPv6 one in all 16 (v4-mapped ones included, v6 true).
struct TcpConnection {
  bool v6 = false;
  std::array<std::uint8_t, 16> client_address{};
  std::array<std::uint8_t, 16> server_address{};
  std::uint16_t client_port = 0;
  std::uint16_t server_port = 0;
  // The client's IPv6 scope (interface index) for a link-local address (fe80::1%eth0), else 0:
  // such an address names a socket only together with its interface.
  std::uint32_t interface = 0;
};

// The SOCK_DIAG_BY_FAMILY request (one netlink message, no dump) for the socket whose local end
// is the connection's client end and whose remote end is mailtap's: the client's socket.
std::string sock_diag_request(const TcpConnection& c, std::uint32_t sequence);

struct SockDiagAnswer {
  enum class Kind : std::uint8_t {
    owner,       // the socket was found: `uid` owns it
    gone,        // found, but no process holds it any more (closed: an orphan, or TIME_WAIT)
    error,       // the kernel refused or found nothing: `error` is the errno (ENOENT: none)
    none,        // nothing in this datagram answers `sequence` (a stale answer): read on
    unreadable,  // a message that claims more octets than there are, or too few for its type
  };
  Kind kind = Kind::none;
  std::uint32_t uid = 0;
  int error = 0;
};

// The answer to request `sequence` for `asked` in one datagram from the kernel.
SockDiagAnswer read_sock_diag_answer(std::span<const std::uint8_t> datagram, std::uint32_t sequence,
                                     const TcpConnection& asked);

// Looks for the connection's client socket in /proc/net/tcp (`table_v6` false) or
// /proc/net/tcp6 (true; an IPv4 connection appears there v4-mapped, from a client's IPv6 socket)
// as it is read, in pieces cut anywhere.
class ProcTcpTableScan {
 public:
  ProcTcpTableScan(const TcpConnection& c, bool table_v6);
  void feed(std::string_view piece);
  void finish();  // the text is over: a last line without its newline counts too
  // The uid column of the client socket's line, once one was read.
  std::optional<std::uint32_t> uid() const { return uid_; }
  // The client socket's line was read, but no process holds that socket any more.
  bool gone() const { return gone_; }

 private:
  void read_line(std::string_view line);

  std::string client_;  // "0100007F:D431", as the kernel prints the addresses of this table
  std::string server_;
  std::string partial_;    // a line not yet ended
  bool overlong_ = false;  // the line being read is longer than any of the kernel's: skipped
  std::optional<std::uint32_t> uid_;
  bool gone_ = false;
};

}  // namespace mailtap::net
