#include "proxy/net/endpoint.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include "proxy/smtp/command.hpp"

namespace mailtap::net {

namespace {
// A port from 1 (or `lowest`: 0, any free port, for a listening address) to 65535.
std::optional<std::uint16_t> port_number(std::string_view s, unsigned lowest = 1) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < lowest || v > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

// Whether `name` is labels of 1 to 63 octets between single dots, at most 253 in all (RFC 1035
// 2.3.4, without the root's dot), each of which `label_ok` takes.
bool dotted_labels(std::string_view name, bool (*label_ok)(std::string_view)) {
  if (name.empty() || name.size() > 253) return false;
  for (;;) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || !label_ok(label)) return false;
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

// A label of a name in a certificate: letters, digits, '-' and '_' anywhere (names that break
// the host name rules exist in certificates, and --tls-name must be able to expect them).
bool name_label(std::string_view label) {
  return std::all_of(label.begin(), label.end(), name_char);
}

// A label after EHLO: RFC 5321's sub-domain (Ldh-str: no '-' first or last, which Postfix's
// reject_invalid_helo_hostname refuses with a 501), with the '_' that real host names have
// and servers take (Postfix's valid_hostname does).
bool ehlo_label(std::string_view label) {
  return name_label(label) && label.front() != '-' && label.back() != '-';
}

// An IP address as Asio reads it, but for a zone (after '%' in an IPv6 address): Asio takes any
// text there (an interface it does not find is zone 0), which only the lookup would refuse; an
// interface's name (at most 15 octets) or number, in the characters of a host name, is taken. Asio
// reads a C string: a NUL would end the text it looks at.
bool is_address(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return false;
  if (const std::size_t zone = text.find('%'); zone != std::string_view::npos) {
    const std::string_view name = text.substr(zone + 1);
    constexpr std::size_t kLongestInterfaceName = 15;  // IFNAMSIZ, less its NUL
    if (name.empty() || name.size() > kLongestInterfaceName ||
        !std::all_of(name.begin(), name.end(), name_char))
      return false;
  }
  std::error_code ec;
  asio::ip::make_address(std::string(text), ec);
  return !ec;
}

// `out`, once its host is checked: a space, a '/' or a control character would only fail the
// lookup of every session, long after the start (and --print-config) took it.
std::optional<HostPort> checked(HostPort out) {
  if (!is_host(out.host)) return std::nullopt;
  return out;
}
}  // namespace

// A host is looked up by the name it goes out as in SNI and is verified against by default:
// "a..b" or "." would pass a check of its characters only to fail every session's lookup.
bool is_host(std::string_view host) {
  return is_tls_name(host);
}

bool is_tls_name(std::string_view name) {
  if (is_address(name)) return true;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return dotted_labels(name, name_label);
}

bool is_ehlo_name(std::string_view name) {
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    std::string_view literal = name.substr(1, name.size() - 2);
    if (literal.find('\0') != std::string_view::npos) return false;  // Asio would stop there
    std::error_code ec;
    // The tag is case-insensitive, as every ABNF string is (RFC 5234 2.3).
    if (smtp::iequals(literal.substr(0, 5), "IPv6:")) {
      // asio takes a zone ("%eth0"), which means nothing to the server.
      if (literal.find('%') != std::string_view::npos) return false;
      asio::ip::make_address_v6(std::string(literal.substr(5)), ec);
    } else {
      asio::ip::make_address_v4(std::string(literal), ec);
    }
    return !ec;
  }
  // A trailing dot (an absolute name) is no RFC 5321 Domain, unlike in --tls-name: its empty
  // last label is refused. A dotted IPv4 address passes as labels of digits.
  return dotted_labels(name, ehlo_label);
}

namespace {

// The digits after the port's colon ("h:99999", "[::1]:0"), if that is what follows it.
std::optional<std::string_view> port_digits(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
  const bool bracketed = !text.empty() && text.front() == '[';
  if (bracketed ? text[colon - 1] != ']' : text.find(':') != colon) return std::nullopt;
  const std::string_view digits = text.substr(colon + 1);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return digits;
}

std::optional<HostPort> parse_host_port_from(std::string_view text, unsigned lowest_port) {
  HostPort out;
  if (text.empty()) return std::nullopt;
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    out.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return checked(std::move(out));
    if (rest.front() != ':') return std::nullopt;
    out.port = port_number(rest.substr(1), lowest_port);
    if (!out.port) return std::nullopt;
    return checked(std::move(out));
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    out.host = std::string(text);
    return checked(std::move(out));
  }
  if (text.find(':') != colon) {  // bare IPv6 literal without brackets: no port
    out.host = std::string(text);
    return checked(std::move(out));
  }
  out.host = std::string(text.substr(0, colon));
  out.port = port_number(text.substr(colon + 1), lowest_port);
  if (out.host.empty() || !out.port) return std::nullopt;
  return checked(std::move(out));
}
}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text) {
  return parse_host_port_from(text, 1);
}

std::string port_range_refusal(std::string_view text) {
  const auto digits = port_digits(text);
  if (!digits || port_number(*digits)) return {};
  return "port " + std::string(*digits) +
         " is out of range: a server's port is a number from 1 to 65535";
}

std::string unbracketed_ipv6_refusal(std::string_view text, bool port_required) {
  const std::size_t last = text.rfind(':');
  if (text.empty() || text.front() == '[' || last == std::string_view::npos ||
      text.find(':') == last)
    return {};
  const std::string address(text.substr(0, last));
  const std::string_view port = text.substr(last + 1);
  if (!is_address(address) || !port_number(port)) return {};  // two colons: IPv6, if anything
  std::string why = std::string(text) + ": an IPv6 address with a port is written in brackets: [" +
                    address + "]:" + std::string(port);
  if (port_required) return why;
  if (is_address(text))
    why += " (or [" + std::string(text) + "] for that whole address, on the default port)";
  return why;
}

std::string host_port_label(std::string_view host, std::uint16_t port) {
  const std::string h(host);
  return (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(port);
}

std::string parse_listen_address(std::string_view text, bool allow_remote, std::string_view option,
                                 std::string_view exposure, asio::ip::tcp::endpoint& out) {
  const std::string flag(option);
  const std::string value(text);
  if (std::string why = unbracketed_ipv6_refusal(text, true); !why.empty()) return flag + " " + why;
  auto listen = parse_host_port_from(text, 0);
  if (const auto digits = port_digits(text); digits && !listen && !port_number(*digits, 0))
    return flag + " " + value + ": port " + std::string(*digits) +
           " is out of range: a port to listen on is a number from 1 to 65535, or 0 for any "
           "free port";
  if (!listen || !listen->port) return flag + " " + value + ": expected ADDR:PORT";
  std::string host = listen->host == "localhost" ? "127.0.0.1" : listen->host;
  std::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return flag + " " + value + ": expected an IP address (or localhost) and a port";
  if (!address.is_loopback() && !allow_remote)
    return "refusing to listen on " + value + ": " + std::string(exposure) +
           "; listen on loopback, or add --allow-remote if you really mean to expose it";
  out = asio::ip::tcp::endpoint(address, *listen->port);
  return "";
}

std::string endpoint_label(const asio::ip::tcp::endpoint& ep) {
  if (ep.address().is_v6())
    return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::error_code open_acceptor(asio::ip::tcp::acceptor& acceptor,
                              const asio::ip::tcp::endpoint& at) {
  std::error_code ec;
  acceptor.open(at.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(at, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  return ec;
}

}  // namespace mailtap::net
