// Where a command that accepts connections listens (`mailtap proxy`, `mock`, `web`): --listen
// and --allow-remote. Loopback only unless --allow-remote says otherwise (secure by default).
#pragma once

#include <CLI/CLI.hpp>
#include <asio/ip/tcp.hpp>
#include <string>
#include <string_view>

namespace mailtap::options {

struct ListenOptions {
  std::string address;  // --listen ADDR:PORT; its value when the option is added is the default
  bool allow_remote = false;  // --allow-remote

  // Adds --listen ("ADDR:PORT `purpose`", e.g. "to listen on") and --allow-remote (with
  // `remote_note` in parentheses, if given: what a remote peer could see) to `app`.
  void add_to(CLI::App& app, std::string_view purpose, std::string_view remote_note = {});

  // The address to listen on into `out`. Returns an error message, or "": a non-loopback
  // address without --allow-remote is refused with `exposure` ("the mock answers whoever
  // reaches it") as the reason.
  std::string endpoint(std::string_view exposure, asio::ip::tcp::endpoint& out) const;
};

}  // namespace mailtap::options
