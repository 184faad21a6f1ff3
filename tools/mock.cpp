// `mailtap mock ID --listen 127.0.0.1:PORT`: a plain-text SMTP server that answers from a
// recorded session, for testing mail-sending code offline. It reports whether each client
// played the recorded dialogue to its end, or where it left it (see tools/mock_session.hpp).
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string_view>

#include "proxy/cli/parse.hpp"
#include "proxy/common/duration.hpp"
#include "proxy/common/log.hpp"
#include "proxy/common/stop_signal_deferral.hpp"
#include "proxy/net/deadline.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/lingering_close.hpp"
#include "proxy/options/listen_options.hpp"
#include "tools/commands.hpp"
#include "tools/load_recording.hpp"
#include "tools/mock_session.hpp"
#include "tools/number_options.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

struct MockArgs {
  std::int64_t id = 0;
  options::ListenOptions listen{"127.0.0.1:2525"};  // --listen, --allow-remote
  bool once = false;
  bool loop = false;
  ToolOptions common;  // --db
  std::string timeout = "5m";
  std::string wait_for_client;  // "": wait until stopped
  bool unfinished = false;      // serve a session without an end
};

void say(const std::string& line) {
  std::string l = line + "\n";
  std::fwrite(l.data(), 1, l.size(), stdout);
  std::fflush(stdout);
}

// A client that comes while another is served is told so at once (RFC 5321 §3.8: a server
// that cannot take a client may answer its connection with a 421), not left waiting for a
// greeting or reset when the mock exits.
constexpr std::string_view kBusyReply =
    "421 4.3.2 mailtap mock: busy with another client (the mock serves one client at a time); "
    "try again later\r\n";
// How long a turned-away client, or one cut off by a stop, has to take the mock's 421.
constexpr auto kLastWordTime = std::chrono::seconds(2);

class MockServer {
 public:
  MockServer(asio::io_context& io, const RecordedDialogue& recording, std::int64_t id, bool loop,
             std::chrono::steady_clock::duration timeout)
      : io_(io),
        recording_(recording),
        id_(id),
        loop_(loop),
        timeout_(timeout),
        acceptor_(io),
        signals_(io, SIGINT, SIGTERM),
        client_wait_(io) {}

  asio::ip::tcp::acceptor& acceptor() { return acceptor_; }

  // Serves until SIGINT/SIGTERM, the first client's end (without --loop) or, with `wait_for`,
  // no client within it.
  void start(std::optional<std::chrono::milliseconds> wait_for, const std::string& wait_text) {
    await_signal();
    if (wait_for) {
      client_wait_.expires_after(*wait_for);
      client_wait_.async_wait([this, wait_text](const std::error_code& e) {
        if (e || clients() > 0 || serving_) return;
        stop_reason_ = "no client connected within " + wait_text + " (--wait-for-client)";
        stop();
      });
    }
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  }

  // The mock's exit status (mock.md, Exit status), saying why where no client said it.
  int exit_status() const {
    if (clients() == 0) {
      log::error("mock: " + stop_reason_ + "; no client played session " + std::to_string(id_));
      return 1;
    }
    return diverged_ == 0 ? 0 : 1;
  }

 private:
  enum class Sent : std::uint8_t { all, failed, not_read };

  std::size_t clients() const { return completed_ + diverged_; }

  void await_signal() {
    signals_.async_wait([this](const std::error_code& e, int signal) {
      if (e) return;
      if (stopping_) {  // a second signal: do not wait for the client's last word
        report_cut_off_client();
        io_.stop();
        return;
      }
      signal_name_ = signal == SIGINT ? "SIGINT" : "SIGTERM";
      stop_reason_ = "stopped (" + signal_name_ + ") before any client connected";
      stop();
      await_signal();
    });
  }

  // Stops accepting; a client being served is told, and the mock exits once it has been.
  void stop() {
    stopping_ = true;
    std::error_code ignored;
    acceptor_.close(ignored);
    client_wait_.cancel();
    cut_wait_for_client();
    finish_if_idle();
  }

  // The client being served gets the stop's 421 next. A read it would answer is cancelled; a
  // reply being written is not, or the client would get half of it, but the client has only
  // the last-word time to take it.
  void cut_wait_for_client() {
    if (!serving_) return;
    asio::ip::tcp::socket& socket = *serving_;
    if (waiting_ == Waiting::read) {
      std::error_code ignored;
      socket.cancel(ignored);
    } else if (waiting_ == Waiting::write) {
      last_word_.emplace(socket.get_executor(), kLastWordTime, [&socket] {
        std::error_code ignored;
        socket.cancel(ignored);
      });
    }
  }

  // A second signal ends the mock at once: the client being served is cut off, and counted.
  void report_cut_off_client() {
    if (!serving_session_) return;
    MockSession& session = *serving_session_;
    serving_session_ = nullptr;
    session.mock_stopped(signal_name_);
    report(serving_label_, session);
  }

  void finish_if_idle() {
    if (accepting_ || serving_) return;
    client_wait_.cancel();
    signals_.cancel();
  }

  // A client that does not read must not hold the mock once its buffers are full (a large
  // recorded reply, many pipelined commands): a write it does not take within --timeout ends
  // the connection, as a line it does not complete does. Once the mock is stopping, its last
  // words get only a short while.
  asio::awaitable<Sent> send(asio::ip::tcp::socket& socket, const std::string& out) {
    const auto limit = stopping_ ? std::chrono::steady_clock::duration(kLastWordTime) : timeout_;
    net::Deadline deadline(socket.get_executor(), limit, [&socket] {
      std::error_code ignored;
      socket.cancel(ignored);
    });
    waiting_ = Waiting::write;
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(out), use_tuple);
    waiting_ = Waiting::nothing;
    last_word_.reset();  // a stop's limit on this write; a cut one failed (the stop says why)
    if (!ec) co_return Sent::all;
    co_return deadline.expired() ? Sent::not_read : Sent::failed;
  }

  enum class Wrote : std::uint8_t { nothing, all, over, dropped };

  // Writes what the session has for the client. over: the connection failed; dropped: the
  // client did not take it within --timeout, and the connection is to be dropped.
  asio::awaitable<Wrote> write_to_client(asio::ip::tcp::socket& socket, MockSession& session) {
    // A stop cancels what the mock waits on; checked here too for one that came between.
    if (stopping_) session.mock_stopped(signal_name_);
    std::string out = session.take_to_client();
    if (out.empty()) co_return Wrote::nothing;
    const Sent sent = co_await send(socket, out);
    if (sent == Sent::not_read) {
      session.client_not_reading(format_setting_duration(timeout_));
      co_return Wrote::dropped;
    }
    if (sent == Sent::all) co_return Wrote::all;
    if (stopping_)
      session.mock_stopped(signal_name_);
    else
      session.client_closed();
    co_return Wrote::over;
  }

  // Plays the session with the client until it ends; false: the client stopped reading, and
  // the connection is to be dropped.
  asio::awaitable<bool> converse(asio::ip::tcp::socket& socket, MockSession& session) {
    std::array<char, std::size_t{16} * 1024> buf;
    // --timeout is for a whole line: the client's turn begins with the greeting and again
    // with each line it completes (or each 64 KiB of a long one), not with every read, so a
    // client trickling a byte at a time cannot hold the mock (as the proxy's own clock). It
    // begins again once the client has taken what the mock wrote: the time it spent reading
    // replies (a pipelining client behind a long batch of them) is not time it was idle.
    auto turn = std::chrono::steady_clock::now();
    std::uint64_t progress = session.client_progress();
    auto restart_turn_on_progress = [&] {
      if (session.client_progress() == progress) return;
      progress = session.client_progress();
      turn = std::chrono::steady_clock::now();
    };
    for (;;) {
      const Wrote wrote = co_await write_to_client(socket, session);
      if (wrote == Wrote::dropped) co_return false;
      if (wrote == Wrote::over) break;
      if (wrote == Wrote::all) turn = std::chrono::steady_clock::now();
      if (session.client_input_resumable()) {
        session.resume_client_input();
        restart_turn_on_progress();
        continue;
      }
      if (session.finished()) break;
      if (stopping_) continue;  // came during a write: the stop's 421 goes out next
      net::Deadline deadline(socket.get_executor(), turn + timeout_, [&socket] {
        std::error_code ignored;
        socket.cancel(ignored);
      });
      waiting_ = Waiting::read;
      auto [rec, n] = co_await socket.async_read_some(asio::buffer(buf), use_tuple);
      waiting_ = Waiting::nothing;
      if (stopping_) continue;  // the stop's 421 goes out next
      if (deadline.expired()) {
        // Asked of the dialogue, not of the reads: one that completed a line and began the
        // next left part of a line, though it moved the progress. Its 421 goes out next.
        session.client_timed_out(format_setting_duration(timeout_), session.client_line_begun());
        continue;
      }
      if (rec) {
        session.client_closed();
        continue;
      }
      session.client_bytes(std::string_view(buf.data(), n));
      restart_turn_on_progress();
    }
    co_return true;
  }

  void report(const std::string& client, const MockSession& session) {
    const std::string session_id = std::to_string(id_);
    if (session.completed()) {
      ++completed_;
      say("mock: client " + client + " completed the recorded dialogue of session " + session_id +
          " (" + std::to_string(session.commands_matched()) + " commands)");
    } else if (session.stopped_by_mock()) {
      ++diverged_;
      say("mock: client " + client + " did not complete session " + session_id + ": " +
          session.divergence().value_or("the mock was stopped"));
    } else {
      ++diverged_;
      const std::string what = session.divergence().value_or("the session ended early");
      say("mock: client " + client + " diverged from session " + session_id + ": " + what);
    }
  }

  asio::awaitable<void> serve(asio::ip::tcp::socket& socket, const std::string& client) {
    std::error_code ec;
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    MockSession session(recording_);
    session.start();
    serving_session_ = &session;
    if (co_await converse(socket, session)) {
      // The client may have sent more than the mock read (commands behind the one that
      // diverged): a plain close would answer it with a reset that can lose the last reply.
      co_await net::linger_then_close(socket, net::lingering);
    } else {  // dropped: a reset, not a close that waits behind what the client left unread
      socket.set_option(asio::socket_base::linger(true, 0), ec);
      socket.close(ec);
    }
    serving_session_ = nullptr;
    report(client, session);
  }

  asio::awaitable<void> serve_one(asio::ip::tcp::socket socket, std::string client) {
    serving_ = &socket;
    serving_label_ = client;
    co_await serve(socket, client);
    serving_ = nullptr;
    if (!loop_ && !stopping_) {
      stopping_ = true;  // without --loop, the first client's end is the mock's
      std::error_code ignored;
      acceptor_.close(ignored);
    }
    finish_if_idle();
  }

  asio::awaitable<void> turn_away(asio::ip::tcp::socket socket, std::string client) {
    log::notice("mock: turned away client " + client + " with a 421: busy with client " +
                serving_label_ + " (the mock serves one client at a time)");
    net::Deadline deadline(socket.get_executor(), kLastWordTime, [&socket] {
      std::error_code ignored;
      socket.cancel(ignored);
    });
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer(kBusyReply), use_tuple);
    if (!ec) co_await net::linger_then_close(socket, net::lingering);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec || stopping_) {
        if (ec && !stopping_) stop_reason_ = "stopped accepting clients: " + ec.message();
        break;
      }
      std::error_code rec;
      auto remote = socket.remote_endpoint(rec);
      std::string client = rec ? "unknown" : net::endpoint_label(remote);
      const auto executor = acceptor_.get_executor();
      if (serving_)
        asio::co_spawn(executor, turn_away(std::move(socket), std::move(client)), asio::detached);
      else
        asio::co_spawn(executor, serve_one(std::move(socket), std::move(client)), asio::detached);
    }
    accepting_ = false;
    std::error_code ignored;
    acceptor_.close(ignored);
    finish_if_idle();
  }

  asio::io_context& io_;
  const RecordedDialogue& recording_;
  std::int64_t id_ = 0;
  bool loop_ = false;
  std::chrono::steady_clock::duration timeout_{};
  asio::ip::tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer client_wait_;  // --wait-for-client
  std::size_t completed_ = 0;
  std::size_t diverged_ = 0;
  bool accepting_ = true;
  bool stopping_ = false;
  std::string signal_name_;  // the signal that stopped the mock, "" if none did
  std::string stop_reason_ = "stopped before any client connected";
  asio::ip::tcp::socket* serving_ = nullptr;  // the client being served, if one is
  MockSession* serving_session_ = nullptr;    // its session, until it is reported
  enum class Waiting : std::uint8_t { nothing, read, write };
  Waiting waiting_ = Waiting::nothing;      // on the client being served
  std::optional<net::Deadline> last_word_;  // a stop's limit on a write in progress
  std::string serving_label_;
};

int run_mock(const MockArgs& args) {
  asio::ip::tcp::endpoint listen;
  if (auto e = args.listen.endpoint("the mock answers whoever reaches it", listen); !e.empty()) {
    log::error("mock: " + e);
    return 2;
  }
  std::chrono::milliseconds timeout{};
  if (auto e = cli::parse_time_limit("--timeout", args.timeout, timeout); !e.empty()) {
    log::error("mock: " + e);
    return 2;
  }
  std::string error;
  const std::string db = args.common.database_path(error);
  if (db.empty()) {
    log::error("mock: " + error);
    return 2;
  }
  RecordedDialogue recording;
  if (!load_recorded_dialogue(db, args.id, "served", recording, error, RefusedLines::answered_again,
                              PartialBodies::counted)) {
    log::error("mock: " + args.common.explain_open_error(db, error));
    return 2;
  }
  if (const std::string why = unservable_reason(recording, args.unfinished); !why.empty()) {
    log::error("mock: session " + std::to_string(args.id) + " cannot be served: " + why);
    return 2;
  }

  std::optional<std::chrono::milliseconds> wait_for;
  if (!args.wait_for_client.empty()) {
    wait_for.emplace();
    if (auto e = cli::parse_time_limit("--wait-for-client", args.wait_for_client, *wait_for);
        !e.empty()) {
      log::error("mock: " + e);
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  asio::io_context io;
  MockServer server(io, recording, args.id, args.loop, timeout);
  std::error_code ec = net::open_acceptor(server.acceptor(), listen);
  if (ec) {
    log::error("mock: cannot listen on " + args.listen.address + ": " + ec.message() +
               (ec == asio::error::address_in_use ? " (choose another ADDR:PORT)" : ""));
    return 2;
  }
  stop_signals::end_deferral();  // one that came while the session was read is taken now
  log::notice("mock of session " + std::to_string(args.id) + " listening on " +
              net::endpoint_label(server.acceptor().local_endpoint(ec)) + " (" +
              std::to_string(recording.client.size()) + " client steps, " +
              (args.loop ? "until SIGINT/SIGTERM" : "one client") + ")");
  // After the ready line, which scripts wait for.
  if (!recording.unfinished.empty())
    log::warning("session " + std::to_string(args.id) + " " + unfinished_reason(recording) +
                 ": served as recorded up to it (--unfinished)");
  if (recording.partial_body)
    log::info("session " + std::to_string(args.id) +
              ": a message body was recorded only in part (--max-body), which the mock does not "
              "need: a client's body is counted, not compared");
  if (const std::string note = kept_out_word_note(recording); !note.empty())
    log::info("session " + std::to_string(args.id) + ": " + note);
  server.start(wait_for, args.wait_for_client);
  io.run();
  return server.exit_status();
}

}  // namespace

cli::Subcommand add_mock_command(CLI::App& parent) {
  auto args = std::make_shared<MockArgs>();
  CLI::App* app = parent.add_subcommand(
      "mock", "Answer SMTP clients in plain text from a recorded session (offline testing)");
  add_session_id(*app, "ID", args->id, "Session whose server side to play")->required();
  args->listen.add_to(*app, "to listen on");
  CLI::Option* once =
      app->add_flag("--once", args->once, "Serve one client, then exit (the default)");
  app->add_flag("--loop", args->loop, "Serve clients one after another until SIGINT/SIGTERM")
      ->excludes(once);
  args->common.add_db_to(*app, "Database holding the session");
  app->add_option("--timeout", args->timeout,
                  "How long a client may take to complete a line (then 421 4.4.2 and close) or "
                  "to take what the mock sends (then the connection is dropped)")
      ->capture_default_str();
  app->add_option("--wait-for-client", args->wait_for_client,
                  "Give up (exit 1) if no client connects within this time (default: wait until "
                  "SIGINT/SIGTERM)");
  app->add_flag("--unfinished", args->unfinished,
                "Serve a session that has no end (cut, or still in progress) up to its last "
                "recorded event");
  app->footer(
      "Commands are compared with the recording: verbs exactly, MAIL FROM / RCPT TO addresses "
      "ignoring the case of ASCII letters; EHLO names, AUTH credentials, parameters and message "
      "bodies are not "
      "compared.\nExit status: 0 a client came and every client completed the recorded dialogue, "
      "1 a client left it or was cut off by SIGINT/SIGTERM (printed on stdout), or no client came "
      "(said on stderr), 2 bad usage or a session that cannot be served.\n"
      "Example: mailtap mock 12 --listen 127.0.0.1:2526, then point the code under test at it");
  cli::Subcommand cmd{app, [args] { return run_mock(*args); }};
  cmd.handles_stop_signals = true;
  return cmd;
}

}  // namespace mailtap::tools
