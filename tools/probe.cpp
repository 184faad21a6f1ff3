// `mailtap probe HOST[:PORT]`: a user's first question about a server, answered without a
// proxy. The same connector as the proxy (resolve, connect, greeting, EHLO, STARTTLS, verified
// handshake) opens the link; then EHLO over TLS shows what a client would be offered, and QUIT
// ends the session politely.
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <csignal>
#include <memory>

#include "proxy/cli/color_option.hpp"
#include "proxy/cli/parse.hpp"
#include "proxy/common/duration.hpp"
#include "proxy/common/log.hpp"
#include "proxy/common/terminal_escape.hpp"
#include "proxy/net/deadline.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/tls_client_context.hpp"
#include "proxy/options/upstream_options.hpp"
#include "proxy/secrets/core_dumps.hpp"
#include "tools/commands.hpp"
#include "tools/probe_report.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

struct ProbeArgs {
  std::string target;
  options::UpstreamOptions connection;  // --tls, --ca-file, --tls-name, --insecure, --ehlo-name
  std::string timeout = "30s";
  bool json = false;
  ColorChoice color = ColorChoice::auto_detect;
};

// Returns an error message, or "" when `target` and `report` were filled.
std::string build_target(const ProbeArgs& a, net::UpstreamTarget& target, ProbeReport& report) {
  if (auto why = net::unbracketed_ipv6_refusal(a.target); !why.empty()) return why;
  auto hp = net::parse_host_port(a.target);
  if (!hp || hp->host.empty()) {
    const std::string range = net::port_range_refusal(a.target);
    return a.target + ": " + (range.empty() ? "expected HOST[:PORT]" : range);
  }
  target.host = hp->host;
  target.port = hp->port.value_or(587);
  if (auto e = a.connection.apply_to(target); !e.empty()) return e;
  std::chrono::milliseconds timeout{};
  if (auto e = cli::parse_time_limit("--timeout", a.timeout, timeout); !e.empty()) return e;
  target.timeout = timeout;
  target.timeout_flag = "--timeout";
  target.report_when_insecure = true;

  report.host = target.host;
  report.port = target.port;
  report.mode = target.mode;
  report.mode_given = a.connection.tls.has_value();
  report.tls_name = target.tls_name;
  report.insecure = a.connection.insecure;
  report.ca_file = a.connection.ca_file;
  report.trust_source = target.trust_source;
  report.client_cert = a.connection.client_cert;
  report.client_key = a.connection.client_key;
  return {};
}

class Probe {
 public:
  Probe(const net::UpstreamTarget& target, ProbeReport& report)
      : target_(target), report_(report) {}

  asio::awaitable<void> run(asio::ssl::context& tls) {
    auto ex = co_await asio::this_coro::executor;
    net::Link link(ex, tls);
    // A set-up refused by the server's reply has said QUIT already (establish_upstream).
    if (co_await set_up(link))
      co_await converse(link);
    else
      link.close();
  }

 private:
  // The proxy's own set-up: resolve, connect, greeting, EHLO, STARTTLS, verified handshake.
  asio::awaitable<bool> set_up(net::Link& link) {
    std::vector<smtp::RecordedEvent> events;
    const net::UpstreamSetup setup = co_await net::establish_upstream(link, target_, events);
    take_setup(report_, setup, events);
    co_return setup.ok;
  }

  // What a client does next: EHLO (over TLS, unless --tls none), then QUIT.
  asio::awaitable<void> converse(net::Link& link) {
    auto ex = co_await asio::this_coro::executor;
    // The connector's deadline covered the set-up; this one covers the rest.
    net::Deadline deadline(ex, target_.timeout, [&link] { link.close(); });
    auto& ehlo = target_.mode == net::TlsMode::none ? report_.ehlo_plain : report_.ehlo_tls;
    ehlo = co_await exchange(link, "EHLO " + target_.ehlo_name + "\r\n");
    report_.quit = co_await exchange(link, "QUIT\r\n");
    const bool expired = deadline.expired();
    deadline.cancel();
    if (!ehlo || ehlo->code != 250) {
      report_.failure_kind = ProbeFailure::connection;
      report_.failure = !ehlo ? expired ? late_ehlo_reply()
                                        : "the server closed the connection instead of "
                                          "answering EHLO"
                        : ehlo->code == 421 && !report_.certificate_request_note.empty()
                            ? "the server answered EHLO with " + std::to_string(ehlo->code) + " " +
                                  escape_line(ehlo->lines.front()) + ": it " +
                                  report_.certificate_request_note
                            : "the server refused EHLO " + target_.ehlo_name + " (" +
                                  net::ehlo_refusal_advice(*ehlo) + ")";
    }
    if (expired)
      link.close();
    else
      co_await link.close_gracefully();
  }

  // The deadline covers the whole reply, so a server trickling it (a tarpit) is told from one
  // that says nothing.
  std::string late_ehlo_reply() const {
    const std::string within = " within " + format_setting_duration(target_.timeout);
    return parser_.buffered() > 0
               ? "the reply to EHLO was not complete" + within +
                     " (see --timeout: it is for the whole reply, not each piece of it)"
               : "no reply to EHLO" + within + " (see --timeout)";
  }

  // Sends `line` and reads one reply; nullopt if the link failed or the reply was malformed.
  asio::awaitable<std::optional<smtp::Reply>> exchange(net::Link& link, std::string line) {
    auto [wec, written] = co_await link.write(asio::buffer(line));
    if (wec) co_return std::nullopt;
    for (;;) {
      if (auto reply = parser_.next()) co_return reply;
      if (parser_.error() != smtp::ReplyParser::Error::none) co_return std::nullopt;
      auto [ec, n] = co_await link.read_some(asio::buffer(buffer_));
      if (ec) co_return std::nullopt;
      parser_.feed(std::string_view(buffer_.data(), n));
    }
  }

  const net::UpstreamTarget& target_;
  ProbeReport& report_;
  smtp::ReplyParser parser_;
  std::array<char, 4096> buffer_{};
};

int run_probe(const ProbeArgs& a) {
  net::UpstreamTarget target;
  ProbeReport report;
  // The client key stays in memory for the run: no core file may hold it (docs/auth.md).
  std::string why;
  if (a.connection.holds_client_key() && !secrets::forbid_core_dumps(why)) {
    log::error("probe: " + why);
    return 1;
  }
  if (std::string e = build_target(a, target, report); !e.empty()) {
    log::error("probe: " + e);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (const std::string warning =
          options::UpstreamOptions::client_certificate_warning(target.client_certificate.get());
      !warning.empty())
    log::warning("probe: " + warning);
  // Even under --insecure the trust store is loaded: the probe reports what verification
  // would have said, and only goes on regardless.
  std::string error;
  auto tls = net::make_tls_client_context({a.connection.ca_file, false}, error,
                                          target.client_certificate.get());
  if (!tls) {
    log::error("probe: " + error);
    return 2;
  }
  if (target.insecure && target.mode != net::TlsMode::none)
    log::warning("probe: WARNING: --insecure: going on even if the certificate of " + target.host +
                 " cannot be verified");

  Probe probe(target, report);
  asio::io_context io;
  asio::co_spawn(io, probe.run(*tls), asio::detached);
  io.run();

  const auto now = storage::Clock::now();
  const std::string out = a.json ? render_probe_json(report, now)
                                 : render_probe_text(report, Style::for_stdout(a.color), now);
  if (!write_stdout(out)) return 1;
  if (report.failure_kind != ProbeFailure::none) log::error("probe: " + report.failure);
  return report.exit_status();
}

}  // namespace

cli::Subcommand add_probe_command(CLI::App& parent) {
  auto args = std::make_shared<ProbeArgs>();
  CLI::App* app = parent.add_subcommand(
      "probe",
      "Connect to an SMTP server and show its greeting, EHLO, STARTTLS, TLS and certificate "
      "chain, with a plain-language summary (no proxy needed)");
  app->add_option("HOST[:PORT]", args->target, "the server (port 587 if omitted)")->required();
  args->connection.add_to(
      *app, {"HOST",
             "Go on when the certificate cannot be verified, to show its chain (the failure is "
             "still reported, and the exit status says so)",
             "Name to give in EHLO"});
  app->add_option("--timeout", args->timeout,
                  "Limit for connecting, greeting, STARTTLS and handshake, and again for EHLO "
                  "and QUIT after it (whole replies, not each piece)")
      ->capture_default_str();
  app->add_flag("--json", args->json, "machine-readable JSON output");
  cli::add_color_option(*app, args->color);
  app->footer(
      "Exit status: 0 the server offers TLS with a verified certificate, 1 it could not be "
      "reached or refused the session, 2 bad usage, 3 no TLS (no STARTTLS, refused, injected "
      "into, handshake failed), 4 the certificate is not trusted for the name (also with "
      "--insecure).\n"
      "Examples: mailtap probe smtp.gmail.com\n"
      "          mailtap probe smtp.office365.com:587 --json");
  return {app, [args] { return run_probe(*args); }};
}

}  // namespace mailtap::tools
