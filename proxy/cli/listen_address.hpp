// The listening address of a server mailtap runs (the proxy's plain side, the web page):
// "ADDR:PORT" with an IP literal or localhost, and loopback only unless the user asked for
// --allow-remote. Shared so every listener refuses exposure the same way.
#pragma once

#include <asio/ip/tcp.hpp>
#include <string>
#include <string_view>

namespace mailtap::cli {

// Fills `out` and returns "" on success; otherwise a message naming `option` ("--listen") and,
// for a non-loopback address without `allow_remote`, why it is refused (`exposure`: "the
// plain-text side carries passwords and mail").
std::string parse_listen_address(std::string_view text, bool allow_remote, std::string_view option,
                                 std::string_view exposure, asio::ip::tcp::endpoint& out);

// "127.0.0.1:2525", "[::1]:2525".
std::string endpoint_label(const asio::ip::tcp::endpoint& ep);

}  // namespace mailtap::cli
