// Addresses as users write them and as mailtap shows them, and the listening sockets of the
// servers mailtap runs (the proxy's plain side, mock, the web page): one parse, one refusal
// of exposure, one way to bind.
#pragma once

#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace mailtap::net {

struct HostPort {
  std::string host;  // without brackets for IPv6 literals
  std::optional<std::uint16_t> port;
};
// Whether `host` can name a server: what is_tls_name takes (the name a certificate is checked
// against by default), an IP address or a DNS name of ASCII letters, digits, '-' and '_' in
// labels between single dots (an internationalised name in its xn-- form).
bool is_host(std::string_view host);
// Whether `name` can be a server's name in its certificate and in SNI (--tls-name): an IP
// address, or a DNS name whose labels are 1 to 63 letters, digits, '-' or '_' between single
// dots, with at most one dot at the end (an absolute name; SNI carries it without, RFC 6066 3).
bool is_tls_name(std::string_view name);
// Whether `name` can follow EHLO (RFC 5321 4.1.1.1, 4.1.3): a domain of ASCII letters, digits,
// '-' and '_' in labels of 1 to 63 between single dots, none starting or ending with '-' (an
// internationalised name in its xn-- form), or an address literal, "[192.0.2.1]" or
// "[IPv6:2001:db8::1]" (the tag in any case).
bool is_ehlo_name(std::string_view name);
// "host", "host:25", "[::1]:25", "::1"; nullopt if malformed, or if the host is none (is_host).
std::optional<HostPort> parse_host_port(std::string_view text);
// Why parse_host_port refused `text` when it ends in a port that is a number out of range
// ("h.test:65536", "[::1]:0"): "port 65536 is out of range: ...", naming the range; or "".
std::string port_range_refusal(std::string_view text);
// Why `text` is refused although parse_host_port reads it, or "": an IPv6 address followed by
// a port without brackets ("::1:2525"), which would be looked up as a host name. Names the
// bracketed forms to write instead (the whole text as one address too, unless a port is
// required: --listen).
std::string unbracketed_ipv6_refusal(std::string_view text, bool port_required = false);
// "mx.example.com:587", "[::1]:587": a host as parse_host_port gives it, with its port.
std::string host_port_label(std::string_view host, std::uint16_t port);

// A listening address: "ADDR:PORT" with an IP literal or localhost (port 0: any free port, which
// the server then names from its socket, as every listener mailtap runs does), and loopback only
// unless the user asked for --allow-remote. Fills `out` and returns "" on success; otherwise a
// message naming `option` ("--listen") and, for a non-loopback address without
// `allow_remote`, why it is refused (`exposure`: "the plain-text side carries passwords and
// mail").
std::string parse_listen_address(std::string_view text, bool allow_remote, std::string_view option,
                                 std::string_view exposure, asio::ip::tcp::endpoint& out);

// "127.0.0.1:2525", "[::1]:2525".
std::string endpoint_label(const asio::ip::tcp::endpoint& ep);

// Opens, binds (with SO_REUSEADDR, so a restart does not wait out TIME_WAIT) and listens.
std::error_code open_acceptor(asio::ip::tcp::acceptor& acceptor, const asio::ip::tcp::endpoint& at);

}  // namespace mailtap::net
