#include "proxy/cli/listen_address.hpp"

#include "proxy/cli/parse.hpp"

namespace mailtap::cli {

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

}  // namespace mailtap::cli
