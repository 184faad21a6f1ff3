// `mailtap replay ID --to HOST:PORT`: sends the client side of a recorded session again, over
// the same kind of verified TLS link the proxy uses, flight by flight as the original client
// sent it, and compares every reply with the recorded one. The replay is recorded like a
// proxied session, linked to the original (replay_of).
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>
#include <memory>

#include "proxy/cli/secret_options.hpp"
#include "proxy/common/duration.hpp"
#include "proxy/common/log.hpp"
#include "proxy/net/deadline.hpp"
#include "proxy/net/delivery_wait.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/tls_client_context.hpp"
#include "proxy/net/upstream_connector.hpp"
#include "proxy/options/timeout_options.hpp"
#include "proxy/options/upstream_options.hpp"
#include "proxy/secrets/core_dumps.hpp"
#include "proxy/secrets/secret_source.hpp"
#include "proxy/session/session_record.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "tools/commands.hpp"
#include "tools/load_recording.hpp"
#include "tools/number_options.hpp"
#include "tools/replay_credentials.hpp"
#include "tools/replay_driver.hpp"
#include "tools/replay_report.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

struct ReplayArgs {
  std::int64_t id = 0;
  std::string to;
  options::UpstreamOptions connection;  // --tls, --ca-file, --tls-name, --insecure, --ehlo-name
  options::TimeoutOptions timeouts;     // --timeout-connect, --timeout-command, --timeout-data
  std::string auth_user;
  cli::SecretOptions secret;
  ToolOptions common;  // --db, --json
  bool no_record = false;
  bool unfinished = false;  // replay a session without an end
};

struct ReplayConfig {
  net::UpstreamTarget target;
  net::TrustSettings trust;
  std::string db_path;
  bool record = true;
  std::chrono::steady_clock::duration timeout_command{}, timeout_data{};
};

// Returns an error message, or "" when `cfg` was filled.
std::string build_config(const ReplayArgs& a, ReplayConfig& cfg) {
  if (auto why = net::unbracketed_ipv6_refusal(a.to); !why.empty()) return "--to " + why;
  auto to = net::parse_host_port(a.to);
  if (!to) {
    const std::string range = net::port_range_refusal(a.to);
    return "--to " + a.to + ": " + (range.empty() ? "expected HOST[:PORT]" : range);
  }
  cfg.target.host = to->host;
  cfg.target.port = to->port.value_or(587);
  if (auto e = a.connection.apply_to(cfg.target); !e.empty()) return e;
  cfg.trust = a.connection.trust();
  options::TimeoutOptions::Limits limits;
  if (auto e = a.timeouts.parse(limits); !e.empty()) return e;
  cfg.target.timeout = limits.connect;
  cfg.timeout_command = limits.command;
  cfg.timeout_data = limits.data;
  cfg.record = !a.no_record;
  std::string error;
  cfg.db_path = a.common.database_path(error);
  if (cfg.db_path.empty()) return error;
  return {};
}

struct ReplayRun {
  ReplayRun(const ReplayConfig& c, const RecordedDialogue& r, storage::Recorder* recorder,
            storage::SessionKey key)
      : cfg(c), recording(r), record(recorder, key) {}
  const ReplayConfig& cfg;
  const RecordedDialogue& recording;
  SessionRecord record;
  std::int64_t original_id = 0;
  std::optional<smtp::UpstreamLoginOptions> login;  // the original was authenticated by mailtap
  std::optional<ReplayReport> report;
  std::string failure;  // the upstream could not be set up

  std::vector<smtp::RecordedEvent> events;
  std::vector<smtp::UnrecordedBody> unrecorded_bodies;
  std::vector<smtp::Message> messages;

  // `driver`: once the dialogue runs, what it cut at --max-body goes to the record's digest too.
  asio::awaitable<void> flush(ReplayDriver* driver = nullptr) {
    if (driver != nullptr) unrecorded_bodies = driver->take_unrecorded_bodies();
    record.take(events, unrecorded_bodies, messages);
    co_await record.flush();
  }

  enum class Late : std::uint8_t {
    silent,       // no byte of the reply came
    replying,     // part of it came (a server trickling its reply)
    reading,      // the server did not take what the replay sent (reading it a few bytes at a time)
    taking_data,  // the server stopped taking the message body
  };

  // The server's clock: when its turn began (restarting with each complete reply), and how
  // far it has taken what the replay wrote (DeliveryWait: the kernel may still hold megabytes
  // of body once the end of data is written).
  struct ServerClock {
    std::chrono::steady_clock::time_point turn = std::chrono::steady_clock::now();
    std::uint64_t replies = 0;
    std::uint64_t written = 0;  // octets handed to the link
    net::DeliveryWait delivery;
  };

  // Of the octets handed to the link, those it no longer holds (DeliveryWait::observe).
  static std::uint64_t output_left(net::Link& link, const ServerClock& clock) {
    return clock.written - std::min<std::uint64_t>(link.unsent(), clock.written);
  }

  // Hands the server the flights and reads its replies until the dialogue ends. The server's
  // limit (--timeout-command, --timeout-data) is for a whole reply: its clock starts when the
  // replay waits for a reply and restarts only when one is complete, so a server that trickles
  // its reply a byte at a time, or reads a command a few bytes at a time, cannot hold the
  // replay (each read getting the limit anew let it). A message body is the exception, as in
  // the proxy: each 64 KiB of it the server takes restarts the clock (a server reading a large
  // body steadily is not cut off for its size), and the clock for the reply to its end starts
  // once the server has the end (its kernel acknowledged it), not once it is written.
  asio::awaitable<void> converse(net::Link& link, ReplayDriver& driver) {
    ServerClock clock;
    clock.replies = driver.dialogue().upstream_replies();
    for (;;) {
      if (co_await write_to_server(link, driver, clock) == Wrote::failed) {
        driver.set_time(storage::Clock::now());
        driver.upstream_closed();
      }
      co_await flush(&driver);
      if (driver.finished()) break;
      if (driver.sending()) {  // the next piece of a large flight, once the last was written
        driver.set_time(storage::Clock::now());
        driver.send_more();
        continue;
      }
      co_await await_server(link, driver, clock);
    }
  }

  // When the server's time is up, and what it will have been late with.
  struct Due {
    std::chrono::steady_clock::time_point at;
    Late late = Late::silent;
  };

  Due server_due(const ReplayDriver& driver, const ServerClock& clock) const {
    const bool taking = clock.delivery.waiting();
    const Late replying = driver.dialogue().reply_partly_received() ? Late::replying : Late::silent;
    // A body and its end: timed on taking it, then on the reply from when the server had it.
    if (sending_data(driver))
      return {std::max(clock.turn, clock.delivery.since()) + cfg.timeout_data,
              taking ? Late::taking_data : replying};
    return {clock.turn + cfg.timeout_command, taking ? Late::reading : replying};
  }

  // One read of the server's reply, cut short to look again while the server may not have all
  // that was written; a reply completed restarts the clock, and a deadline passed ends the
  // dialogue.
  asio::awaitable<void> await_server(net::Link& link, ReplayDriver& driver, ServerClock& clock) {
    const Due due = server_due(driver, clock);
    const bool looking = clock.delivery.waiting();
    const auto until =
        looking
            ? std::min(due.at, std::chrono::steady_clock::now() + net::DeliveryWait::look_interval)
            : due.at;
    const bool in_time = co_await read_from_server(link, driver, until);
    if (driver.dialogue().upstream_replies() != clock.replies) {
      clock.replies = driver.dialogue().upstream_replies();
      clock.turn = std::chrono::steady_clock::now();
      co_return;
    }
    if (in_time || driver.finished()) co_return;
    const auto now = std::chrono::steady_clock::now();
    if (looking) net::observe_delivery({&clock.delivery}, link, output_left(link, clock), now);
    const Due late = server_due(driver, clock);
    if (now >= late.at)
      time_out(driver, sending_data(driver) ? cfg.timeout_data : cfg.timeout_command, late.late);
  }

  // One read of the server's reply, due by `due`; false if the deadline ended it. Bytes that
  // came with the expiry reach the dialogue first (they may complete the reply).
  asio::awaitable<bool> read_from_server(net::Link& link, ReplayDriver& driver,
                                         std::chrono::steady_clock::time_point due) {
    std::array<char, 16 * 1024> buf;
    net::Deadline deadline(co_await asio::this_coro::executor, due,
                           [&link] { link.socket().cancel(); });
    auto [ec, n] = co_await link.read_some(asio::buffer(buf));
    driver.set_time(storage::Clock::now());
    if (n > 0) driver.upstream_bytes(std::string_view(buf.data(), n));
    if (deadline.expired()) co_return false;
    if (ec && n == 0) driver.upstream_closed();
    co_return true;
  }

  // The replay is sending a message body (a piece at a time) or awaits the reply to its end:
  // --timeout-data applies, as the proxy gives it. While the body goes, the clock restarts
  // with each 64 KiB the server takes; the reply's clock starts once the server has the end of
  // data (ServerClock).
  static bool sending_data(const ReplayDriver& driver) {
    return driver.awaiting_end_of_data() || driver.dialogue().in_data();
  }

  enum class Wrote : std::uint8_t { all, failed, timed_out };

  // What the dialogue has for the server, while the server's clock (server_due) runs beside
  // the writes. On timed_out the dialogue has been ended.
  asio::awaitable<Wrote> write_to_server(net::Link& link, ReplayDriver& driver,
                                         ServerClock& clock) {
    using namespace asio::experimental::awaitable_operators;
    const bool data = sending_data(driver);
    const smtp::UpstreamOutput out = driver.take_to_upstream();
    if (out.empty()) co_return Wrote::all;
    clock.delivery.begin(clock.written + out.size(),
                         {output_left(link, clock), link.socket_octets()},
                         std::chrono::steady_clock::now());
    for (const smtp::UpstreamOutput::Piece& piece : out.pieces()) {
      clock.written += piece.view().size();
      auto written =
          co_await (link.write(asio::buffer(piece.view())) || server_time_up(link, driver, clock));
      if (written.index() == 1) {
        driver.set_time(storage::Clock::now());
        time_out(driver, data ? cfg.timeout_data : cfg.timeout_command,
                 data ? Late::taking_data : Late::reading);
        co_return Wrote::timed_out;
      }
      if (std::get<0>(std::get<0>(written))) co_return Wrote::failed;
    }
    co_return Wrote::all;
  }

  // Beside a write: returns once the server's time is up, looking at how far it has taken the
  // output every look_interval (not at once: the write states what it left first).
  asio::awaitable<void> server_time_up(net::Link& link, const ReplayDriver& driver,
                                       ServerClock& clock) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      timer.expires_at(
          std::min(server_due(driver, clock).at, now + net::DeliveryWait::look_interval));
      auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      if (ec) co_return;  // the write is over
      const auto looked = std::chrono::steady_clock::now();
      net::observe_delivery({&clock.delivery}, link, output_left(link, clock), looked);
      if (looked >= server_due(driver, clock).at) co_return;
    }
  }

  void time_out(ReplayDriver& driver, std::chrono::steady_clock::duration limit, Late how) const {
    const std::string flag = sending_data(driver) ? "--timeout-data" : "--timeout-command";
    const std::string within = " within " + format_setting_duration(limit);
    const std::string host = cfg.target.host;
    std::string reply_text, reason;
    switch (how) {
      case Late::silent:
        reply_text = "no reply from " + host + within;
        reason = "no reply from the server" + within + " (" + flag + ")";
        break;
      case Late::replying:
        reply_text = "the reply from " + host + " was not complete" + within;
        reason = "the reply from the server was not complete" + within + " (" + flag +
                 " is for the whole reply, not each piece of it: give more if the server is "
                 "only slow)";
        break;
      case Late::reading:
        reply_text = host + " did not take what mailtap sent" + within;
        reason = "the server did not take what the replay sent" + within + " (" + flag +
                 " is for what the replay sends and the whole reply to it: give more if the "
                 "server is only slow)";
        break;
      case Late::taking_data:
        reply_text = host + " did not take what mailtap sent" + within;
        reason = "the server did not take what the replay sent" + within + " (" + flag +
                 " restarts with each piece of the message the server takes: give more if the "
                 "server pauses that long)";
        break;
    }
    driver.abort("4.4.2 mailtap: " + reply_text + "; closing",
                 {smtp::Ending::Kind::timeout, reason});
  }

  asio::awaitable<void> run(asio::ssl::context& tls) {
    auto ex = co_await asio::this_coro::executor;
    record.add(storage::SessionOpened{record.key(), storage::Clock::now(), "mailtap replay", "",
                                      cfg.target.host, cfg.target.port, cfg.target.mode,
                                      cfg.target.ehlo_name, cfg.target.insecure, original_id});
    net::Link link(ex, tls);
    net::UpstreamSetup setup = co_await net::establish_upstream(link, cfg.target, events);
    record.add(storage::SessionTls{setup.tls, record.key()});
    if (!setup.ok) {
      failure = setup.failure_reason();
      record.close(setup.outcome, failure, nullptr);
      co_await flush();
      link.close();
      co_return;
    }
    co_await flush();

    smtp::DialogueOptions opts;
    opts.phase = cfg.target.mode == net::TlsMode::none ? smtp::Phase::plain : smtp::Phase::tls;
    opts.upstream_label = net::host_port_label(cfg.target.host, cfg.target.port);
    opts.starttls_refusal = cfg.target.mode == net::TlsMode::none
                                ? smtp::starttls_refusal_plain_relay()
                                : smtp::starttls_refusal_upstream_encrypted(opts.upstream_label);
    opts.login = login;
    opts.certificate_request_note = setup.certificate_request_note;
    // --local-tls starttls: mailtap's own STARTTLS offer and 220 are made again the same way
    // (the driver stands in for the client's handshake), not compared with a refusal.
    if (recording.client_starttls) opts.client_tls = smtp::ClientTls::starttls;
    ReplayDriver driver(recording, std::move(opts), events, messages);
    driver.set_time(storage::Clock::now());
    driver.start(*setup.greeting, setup.greeting_phase);

    co_await converse(link, driver);
    const smtp::Ending ending = driver.dialogue().ending().value_or(
        smtp::Ending{smtp::Ending::Kind::error, "replay ended unexpectedly"});
    record.close(smtp::outcome_of(ending.kind), ending.reason, &driver.dialogue());
    co_await flush(&driver);
    if (driver.dialogue().abandon_upstream() || ending.kind == smtp::Ending::Kind::upstream_closed)
      link.close();
    else
      co_await link.close_gracefully();
    report = driver.report();
  }
};

// The database id the recorder gave the replay (its key, unless another writer raced it).
std::optional<std::int64_t> find_replay_id(const std::string& db, std::int64_t original,
                                           storage::SessionKey key) {
  std::string error;
  auto reader = storage::Reader::open(db, error);
  if (!reader) return std::nullopt;
  std::optional<storage::SessionSummary> s;  // the row alone, not the replayed body
  if (reader->session_summary(static_cast<std::int64_t>(key), s, error) && s &&
      s->session.replay_of == original)
    return s->session.id;
  std::vector<storage::SessionRow> rows;
  storage::SessionFilter f;
  if (!reader->list_sessions(f, rows, error)) return std::nullopt;
  for (const auto& r : rows)
    if (r.replay_of == original) return r.id;
  return std::nullopt;
}

// The password for the replay, from its source (never argv): asked for only when the client's
// AUTH lines need one, or mailtap authenticated the session itself. False (logged) if none.
bool read_replay_password(const ReplayArgs& args, const RecordedDialogue& recording,
                          const AuthNeeds& needs, std::shared_ptr<const smtp::Secret>& password) {
  if (!needs.password && !recording.mailtap_login) return true;
  // A crash while the password is held must not write it into a core file (docs/auth.md).
  std::string error;
  if (!secrets::forbid_core_dumps(error)) {
    log::error("replay: " + error);
    return false;
  }
  const std::string session = "session " + std::to_string(args.id);
  const std::string prompt =
      needs.password ? "Password for AUTH " + needs.mechanism + " of " + session + ": "
                     : "Password for mailtap's own AUTH (--auth-user) of " + session + ": ";
  secrets::SecretRead read = secrets::read_secret(args.secret.password_source(prompt));
  if (!read.secret) {
    log::error("replay: " + read.error);
    return false;
  }
  password = std::make_shared<const smtp::Secret>(std::move(*read.secret));
  return true;
}

// The password a replay sends goes only inside TLS with a verified certificate, as proxy
// --auth-user's does: --tls none sends it in plain text, and --insecure to whoever presents a
// certificate, an attacker on the path too. Empty when the link protects it.
std::string exposed_password_refusal(const net::UpstreamTarget& target) {
  if (target.mode == net::TlsMode::none)
    return "--tls none would send it in plain text; replay it over TLS, or replay a session "
           "recorded without AUTH";
  if (target.insecure)
    return "--insecure would send it to a server whose certificate is not verified: anyone on the "
           "path can take it. Drop --insecure and give the server's certificate, or the CA that "
           "issued it, with --ca-file FILE (and --tls-name NAME if the certificate names the "
           "server otherwise)";
  return {};
}

// Fills the secrets the record left out: the user name from --auth-user, the password from
// its source. False (logged) if the session cannot be replayed.
bool fill_recorded_secrets(const ReplayArgs& args, const ReplayConfig& cfg,
                           RecordedDialogue& recording,
                           std::shared_ptr<const smtp::Secret>& password) {
  const std::string session = "session " + std::to_string(args.id);
  AuthNeeds needs = auth_needs(recording);
  if (needs.refusal.empty())
    needs.refusal =
        mailtap_login_refusal(recording, args.auth_user, cfg.target.mode != net::TlsMode::none);
  if (!needs.refusal.empty()) {
    log::error("replay: " + session + " cannot be replayed: " + needs.refusal);
    return false;
  }
  if (needs.user && args.auth_user.empty()) {
    log::error("replay: " + session + " cannot be replayed without --auth-user: " + needs.user_why);
    return false;
  }
  if (const std::string refusal = exposed_password_refusal(cfg.target);
      (needs.password || recording.mailtap_login) && !refusal.empty()) {
    log::error("replay: " + session + " cannot be replayed: " +
               (needs.password ? "its AUTH" : "mailtap's own AUTH (--auth-user)") +
               " needs the password, and " + refusal);
    return false;
  }
  if (!read_replay_password(args, recording, needs, password)) return false;
  std::string error;
  if (!fill_secrets(recording, args.auth_user, password ? password->view() : std::string_view(),
                    error)) {
    log::error("replay: " + session + " cannot be replayed: " + error);
    return false;
  }
  return true;
}

// mailtap's own AUTH for a session it authenticated itself (proxy --auth-user), as the proxy
// does it: --auth-user or the recorded user, the password read for the replay.
std::optional<smtp::UpstreamLoginOptions> replay_login(
    const ReplayArgs& args, const ReplayConfig& cfg, const RecordedDialogue& recording,
    std::shared_ptr<const smtp::Secret> password) {
  if (!recording.mailtap_login) return std::nullopt;
  smtp::UpstreamLoginOptions login;
  login.user = args.auth_user.empty() ? recording.mailtap_login->user : args.auth_user;
  login.password = std::move(password);
  login.host = cfg.target.host;
  login.port = cfg.target.port;
  return login;
}

// The recorder for the replay, unless --no-record; false (logged) if it cannot be opened.
bool open_replay_recorder(const ReplayConfig& cfg, std::unique_ptr<storage::Recorder>& recorder) {
  if (!cfg.record) return true;
  std::string error;
  recorder = open_recorder(cfg.db_path, std::string("mailtap ") + MAILTAP_VERSION, error);
  if (!recorder) {
    log::error("replay: cannot record to " + cfg.db_path + ": " + error + " (or give --no-record)");
    return false;
  }
  return true;
}

// The replay sends the recorded messages again (a password never: see
// exposed_password_refusal): say so when the link does not protect them.
void warn_about_exposure(const net::UpstreamTarget& target) {
  if (target.insecure && target.mode != net::TlsMode::none)
    log::warning("replay: WARNING: --insecure: the certificate of " + target.host +
                 " is not verified; anyone on the path can read and change the replay");
  if (target.mode == net::TlsMode::none)
    log::warning("replay: WARNING: --tls none: the replay travels in plain text");
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// Prints the comparison (or why there is none) and returns the exit status.
int report_replay(const ReplayArgs& args, const ReplayConfig& cfg, const ReplayRun& run,
                  bool recorded) {
  const std::string target = net::host_port_label(cfg.target.host, cfg.target.port);
  ReplayHeader header;
  header.original_id = args.id;
  header.target = target;
  if (recorded) header.replay_id = find_replay_id(cfg.db_path, args.id, run.record.key());
  // Not a difference: nothing was compared (exit 3, so that a script tells it from one).
  if (!run.failure.empty() || !run.report) {
    const std::string failure =
        run.failure.empty() ? std::string("the replay did not run") : run.failure;
    log::error("replay of session " + std::to_string(args.id) + " to " + target +
               " failed: " + failure);
    if (args.common.json) print(format_replay_failure_json(header, failure));
    return 3;
  }
  print(args.common.json ? format_replay_json(header, *run.report)
                         : format_replay_text(header, *run.report));
  return run.report->all_match() ? 0 : 1;
}

int run_replay(const ReplayArgs& args) {
  ReplayConfig cfg;
  // The client key stays in memory for the run: no core file may hold it (docs/auth.md).
  std::string why;
  if (args.connection.holds_client_key() && !secrets::forbid_core_dumps(why)) {
    log::error(why);
    return 1;
  }
  if (std::string e = build_config(args, cfg); !e.empty()) {
    log::error("replay: " + e);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::string error;
  RecordedDialogue recording;
  if (!load_recorded_dialogue(cfg.db_path, args.id, "replayed", recording, error)) {
    log::error("replay: " + args.common.explain_open_error(cfg.db_path, error));
    return 2;
  }
  if (!recording.unfinished.empty()) {
    const std::string session = "session " + std::to_string(args.id);
    if (!args.unfinished) {
      log::error("replay: " + session + " cannot be replayed: it " + unfinished_reason(recording) +
                 "; record it again, or give --unfinished to replay the part recorded");
      return 2;
    }
    log::warning("replay: " + session + " " + unfinished_reason(recording) +
                 ": replayed as recorded up to it (--unfinished)");
  }
  std::shared_ptr<const smtp::Secret> password;
  if (!fill_recorded_secrets(args, cfg, recording, password)) return 2;
  auto tls = net::make_tls_client_context(cfg.trust, error, cfg.target.client_certificate.get());
  if (!tls) {
    log::error("replay: " + error);
    return 2;
  }
  if (const std::string warning =
          options::UpstreamOptions::client_certificate_warning(cfg.target.client_certificate.get());
      !warning.empty())
    log::warning(warning);
  std::unique_ptr<storage::Recorder> recorder;
  if (!open_replay_recorder(cfg, recorder)) return 2;
  warn_about_exposure(cfg.target);

  ReplayRun run(cfg, recording, recorder.get(), recorder ? recorder->new_session_key() : 1);
  run.original_id = args.id;
  run.login = replay_login(args, cfg, recording, std::move(password));
  asio::io_context io;
  asio::co_spawn(io, run.run(*tls), asio::detached);
  io.run();

  const bool record_failed = recorder && !stop_recorder(*recorder);
  const int status = report_replay(args, cfg, run, recorder && !record_failed);
  return status == 0 && record_failed ? 1 : status;
}

}  // namespace

cli::Subcommand add_replay_command(CLI::App& parent) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* app = parent.add_subcommand(
      "replay",
      "Send the client side of a recorded session to a server again and compare the replies");
  add_session_id(*app, "ID", args->id, "Session to replay (as listed by mailtap sessions)")
      ->required();
  app->add_option("--to", args->to, "HOST[:PORT] of the SMTP server (port 587 if omitted)")
      ->required();
  args->connection.add_to(*app, {"the --to host", "Do not verify the server certificate (loudly)"});
  args->timeouts.add_to(*app, {"Limit for each whole reply (and sending what it answers)",
                               "Limit for each 64 KiB of a message body the server takes, then "
                               "for the whole reply to its end from when the server has it"});
  app->add_option(
      "--auth-user", args->auth_user,
      "User name for the AUTH exchange, the client's or mailtap's own (default: the recorded one)");
  args->secret.add_password_options(*app, "AUTH password the record left out");
  args->common.add_db_to(*app, "Database holding the session, where the replay is recorded too");
  app->add_flag("--no-record", args->no_record, "Do not record the replay");
  app->add_flag("--json", args->common.json, "Print the comparison as JSON");
  app->add_flag("--unfinished", args->unfinished,
                "Replay a session that has no end (cut, or still in progress) up to its last "
                "recorded event");
  app->footer(
      "Without --password-env, --password-file or --password-cmd, a password the record left out "
      "is asked for on the terminal without echo (never give it on the command line).\n"
      "Exit status: 0 every reply has the class (first digit) of the recorded one, 1 otherwise, "
      "2 the session cannot be replayed or bad usage, 3 the server could not be reached or "
      "verified (nothing compared).\n"
      "Example: mailtap replay 12 --to smtp.gmail.com:587 --password-env SMTP_PASSWORD");
  return {app, [args] { return run_replay(*args); }};
}

}  // namespace mailtap::tools
