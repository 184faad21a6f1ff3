#include "proxy/options/timeout_options.hpp"

#include "proxy/cli/parse.hpp"

namespace mailtap::options {

void TimeoutOptions::add_to(CLI::App& app, const Help& help) {
  app.add_option("--timeout-connect", connect,
                 "Limit for resolving, connecting (a name's addresses in turn, the next after "
                 "250ms), greeting, STARTTLS and TLS handshake; with --local-tls also for the "
                 "client's TLS handshake")
      ->capture_default_str();
  app.add_option("--timeout-command", command, help.command)->capture_default_str();
  app.add_option("--timeout-data", data, help.data)->capture_default_str();
}

std::string TimeoutOptions::parse(Limits& out) const {
  struct {
    const std::string& text;
    const char* flag;
    std::chrono::steady_clock::duration& out;
  } limits[] = {{connect, "--timeout-connect", out.connect},
                {command, "--timeout-command", out.command},
                {data, "--timeout-data", out.data}};
  for (auto& limit : limits) {
    std::chrono::milliseconds value{};
    if (std::string why = cli::parse_time_limit(limit.flag, limit.text, value); !why.empty())
      return why;
    limit.out = value;
  }
  return {};
}

}  // namespace mailtap::options
