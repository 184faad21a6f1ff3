// Who owns the client's end of a connection, as the kernel says it (proxy/net/
// socket_owner_answers.hpp): a sock_diag answer read from whatever datagram arrives, and the
// /proc/net/tcp{,6} tables read in pieces cut anywhere, which find what the whole text finds.
//
// Input: 38 octets of the connection asked about (v6 flag, two addresses, two ports), one
// octet choosing the table scan's family and piece size, then the datagram / table text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>

#include "proxy/net/socket_owner_answers.hpp"

namespace {

using namespace mailtap::net;

constexpr std::size_t kHead = 1 + 16 + 16 + 2 + 2 + 1;

TcpConnection connection(const std::uint8_t* data) {
  TcpConnection c;
  c.v6 = (data[0] & 1) != 0;
  std::memcpy(c.client_address.data(), data + 1, 16);
  std::memcpy(c.server_address.data(), data + 17, 16);
  c.client_port = static_cast<std::uint16_t>(data[33] << 8 | data[34]);
  c.server_port = static_cast<std::uint16_t>(data[35] << 8 | data[36]);
  if (!c.v6) {  // an IPv4 connection's addresses are its first 4 octets only
    std::memset(c.client_address.data() + 4, 0, 12);
    std::memset(c.server_address.data() + 4, 0, 12);
  }
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kHead) return 0;
  const TcpConnection c = connection(data);
  const std::uint8_t choice = data[kHead - 1];
  const std::span<const std::uint8_t> rest(data + kHead, size - kHead);

  // The datagram: whatever it holds, the reader stays within it; an owner it reports is of a
  // message describing the socket asked for.
  const std::uint32_t sequence = choice;
  const SockDiagAnswer a = read_sock_diag_answer(rest, sequence, c);
  if (a.kind == SockDiagAnswer::Kind::error && a.error <= 0) std::abort();
  // The request mailtap sends is one well-formed message of its own length.
  const std::string request = sock_diag_request(c, sequence);
  std::uint32_t length = 0;
  std::memcpy(&length, request.data(), 4);
  if (length != request.size()) std::abort();

  // The table, whole and in pieces: the same line found.
  const bool table_v6 = (choice & 0x80) != 0;
  const std::size_t piece = (choice & 0x7f) + 1u;
  const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());
  ProcTcpTableScan whole(c, table_v6);
  whole.feed(text);
  whole.finish();
  ProcTcpTableScan pieces(c, table_v6);
  for (std::size_t at = 0; at < text.size(); at += piece) pieces.feed(text.substr(at, piece));
  pieces.finish();
  if (whole.uid() != pieces.uid()) std::abort();
  return 0;
}
