// How long mailtap waits on an SMTP server, the same for every command that talks to one over
// a relayed or replayed session (`mailtap proxy`, `replay`): --timeout-connect,
// --timeout-command and --timeout-data, their defaults and their check.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

namespace mailtap::options {

struct TimeoutOptions {
  std::string connect = "30s";  // --timeout-connect
  std::string command = "5m";   // --timeout-command
  std::string data = "10m";     // --timeout-data (RFC 5321 4.5.3.2); the proxy's is shorter

  // What the command and data limits cover differs between the commands.
  struct Help {
    std::string command;  // --timeout-command's whole text
    std::string data;     // --timeout-data's whole text
  };
  // Adds the three options to `app`, in that order, writing into this object.
  void add_to(CLI::App& app, const Help& help);

  struct Limits {
    std::chrono::steady_clock::duration connect{};
    std::chrono::steady_clock::duration command{};
    std::chrono::steady_clock::duration data{};
  };
  // Each limit is a duration above zero. Returns an error message naming the option, or "".
  std::string parse(Limits& out) const;
};

}  // namespace mailtap::options
