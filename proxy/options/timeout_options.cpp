#include "proxy/options/timeout_options.hpp"

#include "proxy/cli/parse.hpp"

namespace mailtap::options {

void TimeoutOptions::add_to(CLI::App& app, const Help& help) {
  app.add_option("--timeout-connect", connect,
                 "Limit for resolving, connecting (a name's addresses in turn, the next after "
                 "250ms), greeting, STARTTLS and TLS handshake")
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
    auto value = cli::parse_duration(limit.text);
    if (!value) return cli::duration_refusal(limit.flag, limit.text);
    if (value->count() == 0)
      return std::string(limit.flag) + " " + limit.text + ": expected a duration such as 30s or 5m";
    limit.out = *value;
  }
  return {};
}

}  // namespace mailtap::options
