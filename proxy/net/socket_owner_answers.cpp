#include "proxy/net/socket_owner_answers.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

namespace mailtap::net {

namespace {

// The kernel's lines are about 150 octets: anything far longer is no line of its table.
constexpr std::size_t kLongestLine = 4096;

// One address (4 or 16 octets) as /proc/net/tcp{,6} prints it: each 32-bit word of the address
// as the machine holds it, in upper-case hex, then the port (host order).
std::string proc_address(const std::uint8_t* address, std::size_t octets, std::uint16_t port) {
  std::string out;
  char word_text[9];
  for (std::size_t i = 0; i < octets; i += 4) {
    std::uint32_t word = 0;
    std::memcpy(&word, address + i, 4);
    std::snprintf(word_text, sizeof word_text, "%08X", word);
    out += word_text;
  }
  char port_text[6];
  std::snprintf(port_text, sizeof port_text, "%04X", port);
  return out + ":" + port_text;
}

// The connection's IPv4 addresses as an IPv6 socket holds them (::ffff:a.b.c.d).
std::array<std::uint8_t, 16> v4_mapped(const std::array<std::uint8_t, 16>& v4) {
  std::array<std::uint8_t, 16> out{};
  out[10] = 0xff;
  out[11] = 0xff;
  std::memcpy(out.data() + 12, v4.data(), 4);
  return out;
}

bool same_text_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// The next field of a line separated by spaces; empty at its end.
std::string_view next_field(std::string_view& rest) {
  const std::size_t start = rest.find_first_not_of(" \t");
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  const std::size_t end = std::min(rest.find_first_of(" \t"), rest.size());
  const std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end);
  return field;
}

std::optional<std::uint32_t> decimal_uid(std::string_view text) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (value > 0xffffffffu) return std::nullopt;
  return static_cast<std::uint32_t>(value);
}

// An address as an IPv6 socket holds it: an IPv4 one (first 4 octets) v4-mapped.
std::array<std::uint8_t, 16> as_v6(const void* address, bool v6) {
  std::array<std::uint8_t, 16> out{};
  if (v6) {
    std::memcpy(out.data(), address, 16);
  } else {
    std::memcpy(out.data(), address, 4);
    out = v4_mapped(out);
  }
  return out;
}

// Whether the socket a diag message describes is the one asked for (a kernel answers only that
// one; the check keeps a stray message from passing for it). A dual-stack client's socket (IPv6,
// connected to ::ffff:127.0.0.1) answers an IPv4 lookup in its own family, v4-mapped: the same
// connection.
bool describes(const inet_diag_msg& m, const TcpConnection& asked) {
  const bool answer_v6 = m.idiag_family == AF_INET6;
  return m.id.idiag_sport == htons(asked.client_port) &&
         m.id.idiag_dport == htons(asked.server_port) &&
         as_v6(m.id.idiag_src, answer_v6) == as_v6(asked.client_address.data(), asked.v6) &&
         as_v6(m.id.idiag_dst, answer_v6) == as_v6(asked.server_address.data(), asked.v6);
}

// A socket its process closed: an orphan finishing its close, or a TIME_WAIT entry. The kernel
// gives it uid 0 and inode 0, which must not pass for root's.
constexpr std::uint8_t kTcpTimeWait = 6;

}  // namespace

std::string sock_diag_request(const TcpConnection& c, std::uint32_t sequence) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST;  // one socket, looked up: no dump
  message.header.nlmsg_seq = sequence;
  message.request.sdiag_family = c.v6 ? AF_INET6 : AF_INET;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = ~0u;
  // Looked up as a packet to the client's socket would be: its own end is the source here.
  message.request.id.idiag_sport = htons(c.client_port);
  message.request.id.idiag_dport = htons(c.server_port);
  const std::size_t octets = c.v6 ? 16 : 4;
  std::memcpy(message.request.id.idiag_src, c.client_address.data(), octets);
  std::memcpy(message.request.id.idiag_dst, c.server_address.data(), octets);
  // A link-local address names a socket only on its interface.
  message.request.id.idiag_if = c.interface;
  message.request.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  message.request.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  return {reinterpret_cast<const char*>(&message), sizeof message};
}

namespace {
// One netlink message of ours: the kernel's error, or its answer about one socket.
SockDiagAnswer read_our_message(const nlmsghdr& header, const std::uint8_t* payload,
                                std::size_t payload_size, const TcpConnection& asked) {
  if (header.nlmsg_type == NLMSG_ERROR) {
    nlmsgerr e{};
    if (payload_size < sizeof e.error) return {SockDiagAnswer::Kind::unreadable};
    std::memcpy(&e.error, payload, sizeof e.error);
    // An acknowledgement (0) was not asked for; anything else is -errno.
    if (e.error < 0) return {SockDiagAnswer::Kind::error, 0, -e.error};
    return {SockDiagAnswer::Kind::none};
  }
  inet_diag_msg m{};
  if (payload_size < sizeof m) return {SockDiagAnswer::Kind::unreadable};
  std::memcpy(&m, payload, sizeof m);
  // Ours, yet not the socket asked for: no later datagram will be the answer.
  if (!describes(m, asked)) return {SockDiagAnswer::Kind::unreadable};
  if (m.idiag_inode == 0 || m.idiag_state == kTcpTimeWait) return {SockDiagAnswer::Kind::gone};
  return {SockDiagAnswer::Kind::owner, m.idiag_uid, 0};
}
}  // namespace

SockDiagAnswer read_sock_diag_answer(std::span<const std::uint8_t> datagram, std::uint32_t sequence,
                                     const TcpConnection& asked) {
  std::size_t at = 0;
  while (datagram.size() - at >= sizeof(nlmsghdr)) {
    nlmsghdr header{};
    std::memcpy(&header, datagram.data() + at, sizeof header);
    const std::size_t length = header.nlmsg_len;
    if (length < sizeof header || length > datagram.size() - at)
      return {SockDiagAnswer::Kind::unreadable};
    if (header.nlmsg_seq == sequence &&
        (header.nlmsg_type == NLMSG_ERROR || header.nlmsg_type == SOCK_DIAG_BY_FAMILY)) {
      const SockDiagAnswer answer = read_our_message(header, datagram.data() + at + sizeof header,
                                                     length - sizeof header, asked);
      if (answer.kind != SockDiagAnswer::Kind::none) return answer;
    }
    at += NLMSG_ALIGN(length);
    if (at >= datagram.size()) break;
  }
  return {SockDiagAnswer::Kind::none};
}

ProcTcpTableScan::ProcTcpTableScan(const TcpConnection& c, bool table_v6) {
  if (table_v6 && !c.v6) {
    const auto client = v4_mapped(c.client_address);
    const auto server = v4_mapped(c.server_address);
    client_ = proc_address(client.data(), 16, c.client_port);
    server_ = proc_address(server.data(), 16, c.server_port);
  } else if (table_v6 == c.v6) {
    client_ = proc_address(c.client_address.data(), c.v6 ? 16 : 4, c.client_port);
    server_ = proc_address(c.server_address.data(), c.v6 ? 16 : 4, c.server_port);
  }
  // An IPv6 connection is in no IPv4 table: the empty addresses match no line.
}

void ProcTcpTableScan::feed(std::string_view piece) {
  while (!piece.empty()) {
    const std::size_t end = piece.find('\n');
    const std::string_view part = piece.substr(0, end);
    if (!overlong_ && partial_.size() + part.size() <= kLongestLine) {
      partial_.append(part);
    } else {
      overlong_ = true;
      partial_.clear();
    }
    if (end == std::string_view::npos) return;
    if (!overlong_) read_line(partial_);
    partial_.clear();
    overlong_ = false;
    piece.remove_prefix(end + 1);
  }
}

void ProcTcpTableScan::finish() {
  if (!overlong_ && !partial_.empty()) read_line(partial_);
  partial_.clear();
  overlong_ = false;
}

// "  0: 0100007F:D431 0100007F:09DD 01 00000000:00000000 00:00000000 00000000  1000 ..."
void ProcTcpTableScan::read_line(std::string_view line) {
  if (uid_ || gone_ || client_.empty()) return;
  std::string_view rest = line;
  next_field(rest);  // the slot number
  const std::string_view local = next_field(rest);
  const std::string_view remote = next_field(rest);
  if (!same_text_ignoring_case(local, client_) || !same_text_ignoring_case(remote, server_)) return;
  const std::string_view state = next_field(rest);
  for (int skipped = 0; skipped < 3; ++skipped) next_field(rest);  // queues, timer, retransmits
  const std::optional<std::uint32_t> uid = decimal_uid(next_field(rest));
  next_field(rest);  // timeout
  const std::string_view inode = next_field(rest);
  if (!uid) return;
  if (state == "06" || inode == "0") {  // TIME_WAIT, or closed by its process: uid 0 is no one's
    gone_ = true;
    return;
  }
  uid_ = uid;
}

}  // namespace mailtap::net
