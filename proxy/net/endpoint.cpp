#include "proxy/net/endpoint.hpp"

#include <charconv>

namespace mailtap::net {

namespace {
std::optional<std::uint16_t> port_number(std::string_view s) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v == 0 || v > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(v);
}
}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text) {
  HostPort out;
  if (text.empty()) return std::nullopt;
  if (text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close == 1) return std::nullopt;
    out.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return out;
    if (rest.front() != ':') return std::nullopt;
    out.port = port_number(rest.substr(1));
    if (!out.port) return std::nullopt;
    return out;
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    out.host = std::string(text);
    return out;
  }
  if (text.find(':') != colon) {  // bare IPv6 literal without brackets: no port
    out.host = std::string(text);
    return out;
  }
  out.host = std::string(text.substr(0, colon));
  out.port = port_number(text.substr(colon + 1));
  if (out.host.empty() || !out.port) return std::nullopt;
  return out;
}

std::string parse_listen_address(std::string_view text, bool allow_remote, std::string_view option,
                                 std::string_view exposure, asio::ip::tcp::endpoint& out) {
  const std::string flag(option);
  const std::string value(text);
  auto listen = parse_host_port(text);
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
