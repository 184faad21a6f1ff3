#include "proxy/options/listen_options.hpp"

#include "proxy/net/endpoint.hpp"

namespace mailtap::options {

void ListenOptions::add_to(CLI::App& app, std::string_view purpose, std::string_view remote_note) {
  app.add_option("--listen", address,
                 "ADDR:PORT " + std::string(purpose) + " (loopback unless --allow-remote)")
      ->capture_default_str();
  std::string allow_help = "Allow a non-loopback --listen address";
  if (!remote_note.empty()) allow_help += " (" + std::string(remote_note) + ")";
  app.add_flag("--allow-remote", allow_remote, allow_help);
}

std::string ListenOptions::endpoint(std::string_view exposure, asio::ip::tcp::endpoint& out) const {
  return net::parse_listen_address(address, allow_remote, "--listen", exposure, out);
}

}  // namespace mailtap::options
