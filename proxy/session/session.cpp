#include "proxy/session/session.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <functional>
#include <memory>
#include <span>
#include <utility>

#include "proxy/common/duration.hpp"
#include "proxy/common/log.hpp"
#include "proxy/common/terminal_escape.hpp"
#include "proxy/net/client_handshake_failure.hpp"
#include "proxy/net/deadline.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/tls_alert.hpp"
#include "proxy/secrets/token_provider.hpp"
#include "proxy/session/after_end.hpp"
#include "proxy/session/transcript.hpp"
#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/cipher_caveat.hpp"
#include "proxy/smtp/reply_lines.hpp"
#include "storage/recorder.hpp"

namespace mailtap {

namespace {

// Endings mailtap decided on, rather than a QUIT or a peer's close.
bool ended_by_mailtap(smtp::Ending::Kind kind) {
  using Kind = smtp::Ending::Kind;
  return kind == Kind::timeout || kind == Kind::shutdown || kind == Kind::error;
}

// The record's reason for output dropped at a shutdown while a session that had ended was
// waiting for the server to take it (see Session::start_upstream_drain).
constexpr std::string_view shutdown_drain_reason =
    "the session had ended; mailtap shut down before the server took them";

constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
// Above this much unsent output towards one side, stop reading from the other (TCP
// backpressure reaches the sender instead of mailtap's memory).
constexpr std::size_t high_water = std::size_t{1} << 20;
// Each read is a dialogue pass, a batch of records and (in a body) an event row: 256 KiB reads
// cost a recorded 256 MiB message 7-14 % fewer samples than 64 KiB ones (docs/benchmarks.md).
constexpr std::size_t read_size = std::size_t{256} * 1024;

// Reads land in one buffer per I/O thread, not one per session: an idle session holds no read
// buffer at all. Safe because a session runs on one thread and hands the bytes to its dialogue
// (which copies what it keeps) before it next suspends.
// On the heap: a thread_local array would sit in the static TLS block that every thread of the
// process carves out of its stack. Not zeroed: only the pages reads reach become resident.
std::span<char, read_size> thread_read_buffer() {
  thread_local const std::unique_ptr<char[]> buffer =
      std::make_unique_for_overwrite<char[]>(read_size);
  return std::span<char, read_size>(buffer.get(), read_size);
}

// What the recording 421 says of the replies it holds back (`held`, as reply_summaries says
// them; `first` and `others`, the same split after the first reply). The server's 250 to an end
// of data means it has the message: an MTA that took a bare 421 for "try again" would deliver
// it twice. "Not yet": the commit may still come. Replies after that 250 (the 221 to a QUIT
// pipelined behind the end of data) are named apart.
std::string held_replies_clause(std::string_view held, std::string_view first,
                                std::string_view others) {
  if (held.empty()) return {};
  if (!first.starts_with('2')) return "; not sent, as not yet recorded: " + std::string(held);
  std::string out = "; the server has the message (" + std::string(first) +
                    "), not yet recorded by mailtap: do not send it again (the server's logs have "
                    "its queue id)";
  if (!others.empty()) out += "; not sent either: " + std::string(others);
  return out;
}

// A note of mailtap's own about the session, stamped now.
smtp::Event mailtap_note(smtp::EventKind kind, smtp::Phase phase, std::string note) {
  smtp::Event e;
  e.direction = smtp::Direction::mailtap_note;
  e.phase = phase;
  e.kind = kind;
  e.time = storage::Clock::now();
  e.note = std::move(note);
  return e;
}

}  // namespace

Session::Session(asio::ip::tcp::socket client, SessionContext& ctx, storage::SessionKey id)
    : ctx_(ctx),
      id_(id),
      client_(std::move(client), ctx.local_tls),
      upstream_(std::make_shared<net::Link>(executor(), ctx.tls)),
      record_(ctx.recorder, id),
      transcript_(id),
      client_writer_wake_(executor()),
      upstream_writer_wake_(executor()),
      client_reader_wake_(executor()),
      upstream_reader_wake_(executor()),
      upstream_reader_exit_(executor()),
      client_reader_exit_(executor()),
      watchdog_timer_(executor()) {
  std::error_code ec;
  auto remote = client_.socket().remote_endpoint(ec);
  client_label_ = ec ? "unknown" : net::endpoint_label(remote);
  client_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  // Read once the reactor says there is something to read.
  client_.socket().non_blocking(true, ec);
}

void Session::shutdown_now(bool insist) {
  if (insist) shutdown_insisted_ = true;
  shutdown_requested_ = true;
  asio::post(executor(), [self = shared_from_this(), insist] {
    // The lingering close after the 421 still waits (within its limits): a client still
    // writing the body the 421 cut off would otherwise get a reset for its next write, not the
    // 421 (mutt died of SIGPIPE). Only a signal after the grace period cuts it.
    if (insist) self->client_.cut_linger();
    // A client in the middle of its TLS handshake can be told nothing: end it now.
    if (self->client_handshaking_) self->client_.close();
    if (!self->dialogue_) {
      self->upstream_->close();  // still setting up: make the setup fail now
      return;
    }
    // Output the server is not taking after the session ended goes no further either.
    self->stop_upstream_drain(shutdown_drain_reason);
    self->watchdog_timer_.cancel();
  });
}

void Session::record_opened() {
  started_ = storage::Clock::now();
  started_steady_ = std::chrono::steady_clock::now();
  record_.add(storage::SessionOpened{id_, started_, client_label_, ctx_.listen_label,
                                     ctx_.target.host, ctx_.target.port, ctx_.target.mode,
                                     ctx_.target.ehlo_name, ctx_.target.insecure, std::nullopt});
}

asio::awaitable<void> Session::run_refused(std::string reply_text, bool log) {
  auto self = shared_from_this();
  record_opened();
  if (!co_await accept_implicit_tls()) co_return;
  net::UpstreamSetup setup;
  setup.ok = false;
  setup.failure = std::move(reply_text);
  setup.outcome = storage::Outcome::refused;
  co_await refuse(setup, log);
}

// GCC takes asio's awaitable frame, allocated by its class operator new and freed by its sized
// operator delete, for a mismatched pair once both are inlined here: a false positive (GCC PR
// middle-end/109224; clang has no such warning).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<void> Session::run() {
  auto self = shared_from_this();
  const auto& cfg = ctx_.config;
  record_opened();
  start_token_prefetch();
  log::debug("session " + std::to_string(id_) + ": " + client_label_ + " connected, opening " +
             net::host_port_label(ctx_.target.host, ctx_.target.port) +
             (cfg.local_tls == net::TlsMode::implicit ? " after the client's TLS handshake" : ""));
  if (!co_await accept_implicit_tls()) co_return;

  net::UpstreamSetup setup = co_await net::establish_upstream(*upstream_, ctx_.target, events_);
  if (!setup.ok && shutdown_requested_) {
    setup.failure = "4.3.2 mailtap: shutting down; try again later";
    // Said as every shutdown's reason is: what happened to the session, not the advice.
    setup.record_reason = "mailtap shut down during the set-up with " +
                          net::host_port_label(ctx_.target.host, ctx_.target.port);
    setup.outcome = storage::Outcome::shutdown;
  }
  record_.add(storage::SessionTls{setup.tls, id_});
  if (!setup.ok) {
    co_await refuse(setup);
    co_return;
  }
  tls_summary_ = setup.tls.tls_version.empty() ? "plain text" : setup.tls.tls_version;
  upstream_sni_sent_ = !setup.tls.sni.empty();
  const std::string caveat = smtp::cipher_caveat(setup.tls.cipher);

  smtp::DialogueOptions options = dialogue_options();
  options.certificate_request_note = setup.certificate_request_note;
  dialogue_.emplace(std::move(options));
  dialogue_->set_time(storage::Clock::now());
  dialogue_->relay_greeting(*setup.greeting, setup.greeting_phase);
  // A reply that came with the greeting is read as one that came after it (no command awaits
  // it: it ends the session, see Dialogue::on_unsolicited_reply).
  if (!setup.after_greeting.empty()) dialogue_->upstream_bytes(setup.after_greeting);
  log::info(
      "session " + std::to_string(id_) + " started: " + client_label_ + " -> " +
      net::host_port_label(ctx_.target.host, ctx_.target.port) + " (" + setup.tls.resolved_address +
      ", " + tls_summary_ + (caveat.empty() ? "" : " " + setup.tls.cipher + ": " + caveat) +
      (ctx_.target.insecure && ctx_.target.mode != net::TlsMode::none ? ", NOT verified" : "") +
      ")");

  co_await relay();

  if (!dialogue_->finished())
    dialogue_->end(smtp::Ending{smtp::Ending::Kind::error, "relay ended unexpectedly"});
  const bool close_now = !end_committed_;
  if (close_now)
    close_record(smtp::outcome_of(dialogue_->ending()->kind), dialogue_->ending()->reason);
  co_await flush_records();
  if (close_now) note_end_committed();
  finish_transcript();
  // The record cannot hold the 421 that told the client recording failed: the log does.
  if (const std::string& told = dialogue_->unrecorded_end_reply(); !told.empty())
    log::warning("session " + std::to_string(id_) + ": told the client: 421 " + told);
  const smtp::Ending ending = ending_after_end_.value_or(*dialogue_->ending());
  const std::string duration =
      format_short_duration(std::chrono::steady_clock::now() - started_steady_);
  log::info("session " + std::to_string(id_) + " ended: " +
            std::string(storage::to_string(smtp::outcome_of(ending.kind))) + " (" + ending.reason +
            ") after " + duration + ", " + std::to_string(dialogue_->bytes_to_upstream()) +
            " octets up, " + std::to_string(dialogue_->bytes_from_upstream()) + " down, " +
            std::to_string(record_.messages_taken()) + " message(s)" +
            (dialogue_->auth_user().empty() ? "" : ", user " + dialogue_->auth_user()) +
            recorded_as() + (client_dropped_note_.empty() ? "" : ", " + client_dropped_note_));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// The dialogue's settings for this session, from the configuration and the upstream: only once
// the upstream link is up, as the refusal of a client's STARTTLS names its TLS version.
smtp::DialogueOptions Session::dialogue_options() const {
  const auto& cfg = ctx_.config;
  smtp::DialogueOptions opts;
  opts.phase = ctx_.target.mode == net::TlsMode::none ? smtp::Phase::plain : smtp::Phase::tls;
  opts.upstream_label = net::host_port_label(ctx_.target.host, ctx_.target.port);
  opts.starttls_refusal =
      ctx_.target.mode == net::TlsMode::none
          ? smtp::starttls_refusal_plain_relay()
          : smtp::starttls_refusal_upstream_encrypted(
                opts.upstream_label + " (" + tls_summary_ +
                // The one reply that speaks of the link: a client of a proxy someone else started
                // sees nothing of the start warning on its stderr.
                (ctx_.target.insecure ? ", certificate NOT verified: --insecure" : "") + ")");
  // What everyone types first says what the link is (docs/proxy.md): only a verified TLS link
  // goes unmarked.
  if (ctx_.target.mode == net::TlsMode::none)
    opts.greeting_warning = "mailtap: plain text to " + opts.upstream_label + ": --tls none";
  else if (ctx_.target.insecure)
    opts.greeting_warning =
        "mailtap: certificate of " + opts.upstream_label + " NOT verified: --insecure";
  opts.tls_on_plain_port_advice =
      cfg.local_tls == net::TlsMode::starttls
          ? "connect without TLS and use STARTTLS, or run mailtap with --local-tls implicit"
          : "connect without TLS, or run mailtap with --local-tls implicit";
  opts.max_body_capture = cfg.max_body;
  opts.capture_bodies = ctx_.recorder != nullptr || cfg.transcript;
  opts.redaction.redact_users = cfg.redact_users;
  opts.redaction.fingerprint_key = ctx_.fingerprint_key;
  opts.upstream_host = ctx_.target.host;
  opts.upstream_port = ctx_.target.port;
  opts.assist_auth = cfg.assist_auth;
  opts.token_command = ctx_.tokens != nullptr;
  if (!cfg.auth_user.empty()) {
    smtp::UpstreamLoginOptions login;
    login.user = cfg.auth_user;
    login.password = cfg.auth_password;
    login.token_command = ctx_.tokens != nullptr;
    login.host = ctx_.target.host;
    login.port = ctx_.target.port;
    opts.login = std::move(login);
  }
  opts.client_tls = cfg.local_tls == net::TlsMode::starttls   ? smtp::ClientTls::starttls
                    : cfg.local_tls == net::TlsMode::implicit ? smtp::ClientTls::implicit
                                                              : smtp::ClientTls::none;
  return opts;
}

asio::awaitable<void> Session::refuse(const net::UpstreamSetup& setup, bool log) {
  const std::string line = smtp::reply_lines("421", setup.failure);
  smtp::Event e;
  e.direction = smtp::Direction::mailtap_to_client;
  e.phase = smtp::Phase::plain;
  e.kind = smtp::EventKind::local_reply;
  e.reply_code = 421;
  e.enhanced_status = smtp::parse_enhanced_status(std::string_view(setup.failure));
  e.bytes = line;
  e.wire_size = line.size();
  e.time = storage::Clock::now();
  events_.push_back(smtp::mailtap_event(std::move(e)));
  upstream_->close();
  const std::string reason = setup.failure_reason();
  // The 421 ends the session for the client: its record is committed first.
  close_record(setup.outcome, reason);
  co_await flush_records();
  note_end_committed();
  last_replies_ = reply_summaries(line);
  {
    // A client that does not read must not keep the session alive: the same limit as for the
    // last reply of a session (watch_last_replies), though the socket takes the line at once
    // in practice (nothing went before it but a TLS handshake, which the client read).
    net::Deadline deadline(executor(), ctx_.config.timeout_command, [this] {
      client_.reset();
      client_reset_unread_ = true;
    });
    co_await client_.write(asio::buffer(line));
    if (deadline.expired())
      client_dropped_note_ =
          "the client did not read the 421 within " + client_reading_limit() + ": connection reset";
  }
  co_await close_client();
  if (log) log_refusal(setup, reason);
}

// An error only when mailtap is at fault; the server's refusal or failure (which the record
// holds) is a warning, a stop is no failure at all.
void Session::log_refusal(const net::UpstreamSetup& setup, const std::string& reason) const {
  const std::string line = "session " + std::to_string(id_) + ": " + client_label_ +
                           " refused: " + reason + recorded_as() +
                           (client_dropped_note_.empty() ? "" : ", " + client_dropped_note_);
  if (setup.own_fault)
    log::error(line);
  else if (setup.outcome == storage::Outcome::shutdown)
    log::info(line);
  else
    log::warning(line);
}

void Session::note_end_committed() {
  end_committed_ = true;
  // The closing record's commit failed as the session ended on the server's 221: the 221 goes
  // (the server did end it), and mailtap's 421 after it tells the person that the session is
  // not in the record, as the dialogue's 421 does between commands (Dialogue::recording_failed).
  if (dialogue_ && !closing_ && ctx_.recorder != nullptr && ctx_.recorder->failed() &&
      ctx_.config.record_failure == RecordFailurePolicy::stop) {
    if (recording_failure_reason_.empty())
      recording_failure_reason_ = escape_line(ctx_.recorder->failure_reason());
    client_held_ +=
        dialogue_->recording_failed_at_quit(recording_failure_reason_, accepted_committed_);
  }
  // What is still to go to the client goes only now: its last replies (principle 5).
  last_replies_ = reply_summaries(client_out_ + client_held_);
  // The recorder's submit returned because the close was committed or because recording
  // failed: failed now, the close is (almost surely) not on disk, and the log must not
  // suggest it is.
  end_unrecorded_ = ctx_.recorder != nullptr && ctx_.recorder->failed();
}

std::string Session::recorded_as() const {
  if (end_unrecorded_) return ", not recorded (recording failed)";
  const std::int64_t id = record_.recorded_id();
  if (id == 0 || id == static_cast<std::int64_t>(id_)) return "";
  return ", recorded as session " + std::to_string(id);
}

void Session::close_record(storage::Outcome outcome, std::string reason) {
  record_.close(outcome, std::move(reason), dialogue_ ? &*dialogue_ : nullptr, client_tls_version_);
  byte_counts_recorded_ = true;
}

// Nothing more goes upstream (the upstream was abandoned, or a write to it failed): the output
// not handed to a write goes, its Secret pieces wiped, and so does what the link took but has
// not put on its socket (TLS records sealed and waiting for it, the rest of a write under way,
// which ends now), so that a server that said it stopped reading gets nothing more. The
// dialogue learns how many of the client's octets all that held: the byte count and the record
// then say exactly what the server received (docs/recording.md, "Byte counts"). Both happen
// before the session's record is closed (a write failing after that, to an upstream already
// gone, leaves the count recorded as it is, as the log line does).
void Session::drop_upstream_output(std::string_view why) {
  std::size_t relayed_unwritten = upstream_out_.relayed_size();
  upstream_out_ = {};
  relayed_unwritten += upstream_handed_.relayed_in_last(upstream_->stop_output());
  upstream_handed_.clear();
  note_upstream_hold();
  if (relayed_unwritten > 0 && dialogue_ && !byte_counts_recorded_)
    dialogue_->upstream_output_dropped(relayed_unwritten, why);
}

// The dialogue ended by a QUIT, a close or the server's word with output still queued for the
// server: its 221 may come before it read what was sent ahead of the QUIT (a server that stopped
// reading a body answers all the same), and a writer waiting on it would hold the session, and
// mailtap's exit, for ever. The output gets --timeout-command, as one more command would. The
// record closes once it went or was dropped, so that its byte count says what the server got,
// and the client's last reply waits for that record as always (counted as a flush pending).
void Session::start_upstream_drain() {
  draining_upstream_ = true;
  ++durable_flushes_;
  const auto limit = ctx_.config.timeout_command;
  upstream_drain_deadline_.emplace(executor(), limit, [this, limit] {
    stop_upstream_drain("the session had ended and the server had not taken them within " +
                        format_setting_duration(limit) + " (--timeout-command)");
  });
  // A shutdown that came while the last replies were on their way does not wait for it either.
  if (shutdown_requested_) stop_upstream_drain(shutdown_drain_reason);
}

// Ends a write under way: the writer finds nothing more to write, and ends the drain (which
// disarms the deadline: not here, as this may run from the deadline's own expiry). A second
// call drops nothing more and records nothing; once the writer has ended the drain, none does
// anything (the output all went).
void Session::stop_upstream_drain(std::string_view why) {
  if (!upstream_drain_deadline_) return;
  drop_upstream_output(why);
  upstream_writer_wake_.notify();
}

asio::awaitable<void> Session::end_upstream_drain() {
  if (!draining_upstream_) co_return;
  upstream_drain_deadline_.reset();
  const smtp::Ending& ending = *dialogue_->ending();
  close_record(smtp::outcome_of(ending.kind), ending.reason);
  co_await flush_records();
  note_end_committed();
  // Only now: an after_input during the flush must not close the record again.
  draining_upstream_ = false;
  if (--durable_flushes_ == 0) release_client_held();
}

void Session::take_dialogue_records() {
  if (!dialogue_) return;
  record_.note_authentication(*dialogue_);
  for (smtp::RecordedEvent& e : dialogue_->take_events()) events_.push_back(std::move(e));
  for (smtp::UnrecordedBody& b : dialogue_->take_unrecorded_bodies())
    unrecorded_bodies_.push_back(std::move(b));
  for (smtp::Message& m : dialogue_->take_messages()) messages_.push_back(std::move(m));
}

asio::awaitable<void> Session::flush_records() {
  storage::Recorder::Queued queued = co_await queue_records();
  co_await queued.committed();
}

// The session's text ended with a line no CRLF ended (a client gone in the middle of one): it
// is printed as far as it came, with the notes held after it.
void Session::finish_transcript() {
  if (!ctx_.config.transcript) return;
  std::string transcript;
  transcript_.finish(transcript);
  if (!transcript.empty()) log::transcript(transcript);
}

asio::awaitable<storage::Recorder::Queued> Session::queue_records() {
  take_dialogue_records();
  if (ctx_.config.transcript) {
    std::string transcript;
    for (const smtp::RecordedEvent& e : events_) transcript_.event(*e, transcript);
    if (!transcript.empty()) log::transcript(transcript);
  }
  record_.take(events_, unrecorded_bodies_, messages_);
  co_return co_await record_.queue();
}

// ---- TLS towards the client (--local-tls) -------------------------------------------------

asio::awaitable<std::error_code> Session::client_handshake(std::string& description) {
  net::TlsStream& tls = client_.start_tls();
  std::error_code ec;
  {
    // A client that never finishes its handshake must not hold the session.
    net::Deadline deadline(executor(), ctx_.config.timeout_connect, [this] { client_.close(); });
    client_handshaking_ = true;
    ec = co_await tls.handshake();
    client_handshaking_ = false;
    if (ec && deadline.expired())
      description = net::describe_client_handshake_timeout(
          format_setting_duration(ctx_.config.timeout_connect), tls.handshake_read_nothing(),
          ctx_.config.local_tls == net::TlsMode::implicit);
  }
  if (ec) {
    if (description.empty())
      description = net::describe_client_handshake_failure(
          ec, tls.handshake_alert(), tls.handshake_read_plain_text(), ctx_.local_certificate,
          net::describe_key(SSL_get_privatekey(tls.native_handle())));
    co_return ec;
  }
  client_.set_tls_active();
  SSL* ssl = tls.native_handle();
  client_tls_version_ = SSL_get_version(ssl);
  description = client_tls_version_;
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl))
    description += std::string(" ") + SSL_CIPHER_standard_name(c);
  co_return ec;
}

// --local-tls implicit: TLS from the first byte, before the upstream is even opened. A client
// whose handshake fails cannot be told why (it speaks no TLS, or does not trust mailtap): the
// record and the log say it.
asio::awaitable<bool> Session::accept_implicit_tls() {
  if (ctx_.config.local_tls != net::TlsMode::implicit) co_return true;
  std::string description;
  const std::error_code ec = co_await client_handshake(description);
  smtp::Event e = mailtap_note(smtp::EventKind::tls, smtp::Phase::plain, {});
  // shutdown_now() closed the socket under the handshake: nothing failed.
  const bool cut_by_shutdown = ec && shutdown_requested_;
  if (cut_by_shutdown)
    e.note = "client side: TLS handshake not finished: mailtap shut down during it";
  else if (ec)
    e.note = "client side: TLS handshake failed: " + description;
  else
    e.note = "client side: TLS established (" + description + ", --local-tls implicit)";
  events_.push_back(smtp::mailtap_event(std::move(e)));
  if (!ec) co_return true;
  client_.close();
  if (cut_by_shutdown)
    close_record(storage::Outcome::shutdown, "mailtap shut down during the client's handshake");
  else
    close_record(storage::Outcome::error, "client TLS handshake failed: " + description);
  co_await flush_records();
  if (cut_by_shutdown)
    log::info("session " + std::to_string(id_) + ": " + client_label_ +
              ": ended by the shutdown during its TLS handshake");
  else  // the client's (its trust, its TLS), and in the record: no failure of mailtap's
    log::notice("session " + std::to_string(id_) + ": " + client_label_ +
                ": TLS handshake failed: " + description);
  co_return false;
}

// --local-tls starttls: the dialogue answered the client's STARTTLS with 220, now written.
asio::awaitable<void> Session::client_starttls() {
  std::string description;
  const std::error_code ec = co_await client_handshake(description);
  smtp::Dialogue& d = *dialogue_;
  prepare_dialogue_input();
  last_client_progress_ = last_client_activity_ = std::chrono::steady_clock::now();
  if (ec && shutdown_requested_) {
    // shutdown_now() closed the socket under the handshake: nothing failed.
    d.client_tls_cut_by_shutdown();
  } else if (ec) {
    d.client_tls_failed(description);
    log::notice("session " + std::to_string(id_) + ": " + client_label_ +
                ": TLS handshake after STARTTLS failed: " + description);
  } else {
    d.client_tls_started(description);
  }
  co_await after_input();
}

// ---- relay -----------------------------------------------------------------------------

asio::awaitable<void> Session::relay() {
  using namespace asio::experimental::awaitable_operators;
  last_client_activity_ = last_upstream_read_ = last_client_progress_ =
      std::chrono::steady_clock::now();
  co_await after_input();  // the greeting
  co_await (client_reader() && upstream_reader() && writers_then_close() && watchdog());
}

void Session::note_starttls_offered() {
  if (starttls_offer_logged_ || !dialogue_->starttls_offered_in_plain()) return;
  starttls_offer_logged_ = true;
  log::info("session " + std::to_string(id_) + ": " + smtp::starttls_offered_under_tls_none());
}

void Session::note_login_outcome() {
  const smtp::Dialogue& d = *dialogue_;
  if (login_logged_) return;
  // Not subject to --redact-users (stderr is the operator's), but never the password.
  const std::string user =
      smtp::shown_login_user(ctx_.config.auth_user, ctx_.config.auth_password.get(), false);
  if (d.authenticated_by_mailtap()) {
    login_logged_ = true;
    log::info("session " + std::to_string(id_) + ": authenticated as " + user + " (" +
              d.auth_mechanism() + ")");
  } else if (!d.login_failure().empty()) {
    login_logged_ = true;
    // The server refused mailtap's credentials (or the token command failed): whoever runs
    // mailtap must act, but nothing in mailtap failed.
    log::warning("session " + std::to_string(id_) + ": AUTH as " + user +
                 " failed: " + d.login_failure());
  }
}

// The dialogue waits for an access token (its own AUTH, or an assisted AUTH XOAUTH2 USER): the
// provider runs the command off the I/O threads; the session carries on meanwhile.
void Session::fetch_token_if_needed() {
  const auto need = dialogue_->token_needed();
  if (need == smtp::Dialogue::TokenNeed::none || token_fetch_running_) return;
  if (ctx_.tokens == nullptr) {
    dialogue_->token_unavailable("no --oauth2-token-cmd was given");
    return;
  }
  token_fetch_running_ = true;
  asio::co_spawn(executor(), fetch_token(need == smtp::Dialogue::TokenNeed::fresh), asio::detached);
}

asio::awaitable<void> Session::fetch_token(bool fresh) {
  auto self = shared_from_this();
  if (fresh && token_generation_) ctx_.tokens->invalidate(*token_generation_);
  secrets::TokenProvider::Result r;
  if (prefetched_token_ && !fresh) {
    // Fresh if the command ran for this session and the token has not outlived its lifetime
    // meanwhile (a person typing EHLO late): a refusal of a fresh token is final, so the
    // client does not wait for a second run of the command. A cached token from an earlier
    // session may have been revoked since: its refusal earns one new run.
    const PrefetchedToken& p = *prefetched_token_;
    if (p.token)
      r.token = secrets::TokenProvider::Token{std::move(*prefetched_token_->token), p.generation,
                                              p.fresh && ctx_.tokens->holds(p.generation)};
    r.error = std::move(prefetched_token_->error);
  } else {
    r = co_await ctx_.tokens->get();
  }
  prefetched_token_.reset();
  token_fetch_running_ = false;
  smtp::Dialogue& d = *dialogue_;
  if (d.finished()) co_return;
  prepare_dialogue_input();
  if (r.token) {
    token_generation_ = r.token->generation;
    d.provide_token(std::move(r.token->value), r.token->fresh);
  } else {
    d.token_unavailable(r.error);
  }
  co_await after_input();
}

// A session of --auth-user with a token command needs a token as soon as the client's EHLO is
// in, and the client waits for its EHLO reply meanwhile (swaks gives up after 30 s). Started
// with the session, the command runs while the upstream is reached, greets (a Postfix with
// postscreen pauses first) and the client (or a person) sends EHLO, instead of after it all.
// With a password as well, the token is for servers that offer OAuth: the command runs when
// one does, never for a session that may not need it (a helper may open a browser).
void Session::start_token_prefetch() {
  if (ctx_.tokens == nullptr || ctx_.config.auth_user.empty() || ctx_.config.auth_password) return;
  token_fetch_running_ = true;
  asio::co_spawn(executor(), prefetch_token(), asio::detached);
}

asio::awaitable<void> Session::prefetch_token() {
  auto self = shared_from_this();
  secrets::TokenProvider::Result r = co_await ctx_.tokens->get();
  PrefetchedToken kept;
  if (r.token) {
    kept.token = std::move(r.token->value);
    kept.generation = r.token->generation;
    kept.fresh = r.token->fresh;
  }
  kept.error = std::move(r.error);
  prefetched_token_ = std::move(kept);
  token_fetch_running_ = false;
  // Relaying (the dialogue exists): a dialogue already waiting for a token gets it now.
  if (dialogue_ && !dialogue_->finished()) co_await after_input();
}

void Session::note_client_progress() {
  if (dialogue_->client_progress() == client_progress_seen_) return;
  client_progress_seen_ = dialogue_->client_progress();
  last_client_progress_ = std::chrono::steady_clock::now();
}

// The upstream's turn begins when it comes to owe a reply (its command was queued for it) and
// again with each reply line it completes: bytes that complete no line do not restart it. The
// reply is owed for everything queued by then (a command pipelined behind another is not known
// apart from it): its clock starts once the server has all of that (DeliveryWait), which a
// reply line to the last of it says as well as the kernel. No system call here: this runs for
// every command relayed.
void Session::note_upstream_progress() {
  const smtp::Dialogue& d = *dialogue_;
  const auto now = std::chrono::steady_clock::now();
  const net::OutputProgress output{upstream_left(), upstream_->socket_octets()};
  upstream_delivery_.answered(d.upstream_answered_through(), output, now);
  const bool turn_began =
      !upstream_delivery_.active() || d.upstream_progress() != upstream_progress_seen_;
  upstream_progress_seen_ = d.upstream_progress();
  if (!d.upstream_owes_reply()) {
    upstream_delivery_.end();
    return;
  }
  if (!turn_began) return;
  upstream_delivery_.begin(upstream_queued_, output, now);
  // A command (all of it gone to the kernel, little else there): the watchdog's next look, a
  // second away at most, starts the reply's clock by then as if it had looked within
  // look_interval. Otherwise (the end of a large body) it is woken to look that soon.
  if (!upstream_delivery_.first_look_may_wait()) look_again_soon(now);
}

std::uint64_t Session::upstream_left() const {
  const std::uint64_t held = upstream_out_.size() + upstream_->unsent();
  return upstream_queued_ - std::min<std::uint64_t>(held, upstream_queued_);
}

// A system call (the kernel's count of what the server has not acknowledged): only while a
// reply waits on the server taking its command, or mailtap holds the client back for the
// server, at most every DeliveryWait::look_interval, from the watchdog.
void Session::look_at_upstream_delivery() {
  net::observe_delivery({&upstream_delivery_, &upstream_hold_}, *upstream_, upstream_left(),
                        std::chrono::steady_clock::now());
}

void Session::look_again_soon(std::chrono::steady_clock::time_point now) {
  if (watchdog_timer_.expiry() > now + net::DeliveryWait::look_interval) watchdog_timer_.cancel();
}

// mailtap stops reading the client while more than high_water waits for the server
// (client_reader): meanwhile the client can complete nothing, and the server is on the clock
// for taking that output, each 64 KiB it takes restarting it (as a body restarts a client's).
// When the hold ends, the client's turn begins.
void Session::note_upstream_hold() {
  const bool held = upstream_out_.size() > high_water;
  if (!held && !upstream_hold_.active()) return;
  const auto now = std::chrono::steady_clock::now();
  if (!held) {
    upstream_hold_.end();
    upstream_hold_ended_ = now;
    return;
  }
  // Begun again when the server had all it was timed on (more was queued since): a new piece.
  if (upstream_hold_.waiting()) return;
  const bool began = !upstream_hold_.active();
  upstream_hold_.begin(upstream_queued_, {upstream_left(), upstream_->socket_octets()}, now);
  if (began) look_again_soon(now);
}

void Session::release_client_held() {
  if (!client_held_.empty()) {
    client_out_ += client_held_;
    client_held_.clear();
  }
  client_held_upstream_octets_ = 0;
  write_client_now();
  const smtp::Dialogue& d = *dialogue_;
  if (!client_out_.empty() || d.client_tls_due() || d.finished()) client_writer_wake_.notify();
}

// The writers' work done in place while they are parked: the bytes go now, without a round
// through the reactor to wake a writer (an epoll_wait and two handlers less per relayed line).
// What the socket does not take at once (bytes, or TLS records sealed from them), and any
// error, stay with the writer, which goes on from there.
void Session::write_client_now() {
  // After a 220 to STARTTLS nothing goes in clear: the writer runs the handshake first.
  if (!client_writer_parked_ || client_write_failed_ || client_out_.empty() ||
      dialogue_->client_tls_due())
    return;
  const std::size_t before = client_out_.size();
  std::error_code ec;
  const std::size_t n = client_.write_now(asio::buffer(client_out_), ec);
  client_out_.erase(0, n);
  note_client_output();
  if (!client_.flushed()) client_writer_wake_.notify();
  if (before > high_water && client_out_.size() <= high_water) upstream_reader_wake_.notify();
}

void Session::write_upstream_now() {
  if (!upstream_writer_parked_ || upstream_write_failed_ || upstream_out_.empty() ||
      dialogue_->abandon_upstream())
    return;
  const std::size_t before = upstream_out_.size();
  std::size_t written = 0;
  for (const smtp::UpstreamOutput::Piece& piece : upstream_out_.pieces()) {
    std::error_code ec;
    const std::size_t n = upstream_->write_now(asio::buffer(piece.view()), ec);
    upstream_handed_.add(n, piece.relayed());
    written += n;
    if (ec || n < piece.view().size()) break;
  }
  upstream_handed_.keep_last(upstream_->unsent());
  if (!upstream_->flushed()) upstream_writer_wake_.notify();
  if (written == 0) return;
  upstream_out_.drop_front(written);
  note_upstream_hold();
  if (before > high_water && upstream_out_.size() <= high_water) client_reader_wake_.notify();
}

// Before the dialogue reads anything: the time, and (--record-failure stop) whether recording
// has failed, so that no end of data it reads then goes upstream for a message the record
// cannot hold (docs/recording.md, "When recording fails").
// Told again each time (cheap once failed): the dialogue ends the session with its 421 as soon
// as it is between commands with no reply due.
void Session::prepare_dialogue_input() {
  dialogue_->set_time(storage::Clock::now());
  tell_recording_failure();
}

bool Session::tell_recording_failure() {
  smtp::Dialogue& d = *dialogue_;
  if (d.finished() || ctx_.recorder == nullptr ||
      ctx_.config.record_failure != RecordFailurePolicy::stop || !ctx_.recorder->failed())
    return false;
  if (recording_failure_reason_.empty())
    recording_failure_reason_ = escape_line(ctx_.recorder->failure_reason());
  d.recording_failed(recording_failure_reason_, accepted_committed_);
  return true;
}

// Hands what the dialogue produced to the writers and the recorder. Bytes for the upstream go
// at once; bytes for the client that acknowledge something finished (the reply to an end of
// data, the 221 or any last reply before the close) wait until its record is committed, and
// everything after them waits behind them. Bytes that acknowledge nothing go before their
// record is queued.
asio::awaitable<void> Session::after_input(bool reading_upstream) {
  smtp::Dialogue& d = *dialogue_;
  take_dialogue_records();
  note_client_progress();
  note_login_outcome();
  note_starttls_offered();
  fetch_token_if_needed();
  client_held_ += d.take_to_client();
  client_held_upstream_octets_ += d.upstream_octets_taken();
  if (client_output_unheld_) release_client_held();
  note_client_output();
  smtp::UpstreamOutput to_upstream = d.take_to_upstream();
  if (!to_upstream.empty()) {
    upstream_queued_ += to_upstream.size();
    upstream_out_.append(std::move(to_upstream));
    write_upstream_now();
    note_upstream_hold();
    if (!upstream_out_.empty()) upstream_writer_wake_.notify();
  }
  // After the output it may be owed a reply for is queued (and what the socket took went).
  note_upstream_progress();
  // Nothing more goes to an abandoned upstream: dropped before the record is closed below. Nor
  // after an ending mailtap chose (a timeout, a shutdown, an error): what still waits could only
  // reach a server that may have stopped reading, and would hold the session, and mailtap's exit,
  // until that server took it.
  const bool upstream_output_waits = !upstream_out_.empty() || upstream_->unsent() > 0;
  if (d.abandon_upstream())
    drop_upstream_output();
  else if (d.finished() && ended_by_mailtap(d.ending()->kind) && upstream_output_waits)
    drop_upstream_output("mailtap ended the session: " + d.ending()->reason);
  client_reader_wake_.notify();
  upstream_reader_wake_.notify();
  if (d.finished() && !end_committed_ && !record_.close_pending() && !draining_upstream_ &&
      !byte_counts_recorded_ && !close_waits_for_commit() && messages_.empty()) {
    const smtp::Ending& ending = *d.ending();
    // Anything still waiting for the server now is after an ending not of mailtap's choosing.
    if (!upstream_out_.empty() || upstream_->unsent() > 0)
      start_upstream_drain();
    else
      close_record(smtp::outcome_of(ending.kind), ending.reason);
  }
  const bool ends_session = record_.close_pending();
  const bool durable = ends_session || !messages_.empty();
  // Counted before the first suspension below: the other reader's after_input may run there,
  // and must not release what this flush holds back.
  if (durable && durable_flushes_++ == 0) commit_hold_began_ = std::chrono::steady_clock::now();
  // Nothing held back for a commit: the client's bytes go now, and the writers run before the
  // recording work below, which stays off the round trip's path.
  if (durable_flushes_ == 0) release_client_held();
  if (!upstream_out_.empty() || !client_out_.empty())
    co_await asio::post(executor(), asio::use_awaitable);
  ++recording_waits_;
  // The messages the server accepted that this flush records: once it is committed, the
  // recording 421 (Dialogue::recording_failed) does not count them as missing.
  const auto accepted = static_cast<std::uint64_t>(std::count_if(
      messages_.begin(), messages_.end(),
      [](const smtp::Message& m) { return m.final_code >= 200 && m.final_code < 300; }));
  storage::Recorder::Queued queued = co_await queue_records();
  // The reply to an end of data waits for the message's commit, the upstream reader does not:
  // the server's next reply (the 221 to a QUIT pipelined behind the end of data) is read and
  // recorded as it comes, and no clock of the server's runs while mailtap does not read it.
  if (reading_upstream && durable && !ends_session) {
    --recording_waits_;
    asio::co_spawn(executor(),
                   await_message_commit(shared_from_this(), std::move(queued), accepted),
                   asio::detached);
    co_return;
  }
  co_await queued.committed();
  --recording_waits_;
  co_await input_committed(durable, ends_session, accepted);
}

asio::awaitable<void> Session::await_message_commit(std::shared_ptr<Session> self,
                                                    storage::Recorder::Queued queued,
                                                    std::uint64_t accepted) {
  co_await queued.committed();
  co_await self->input_committed(true, false, accepted);
}

asio::awaitable<void> Session::input_committed(bool durable, bool ends_session,
                                               std::uint64_t accepted) {
  smtp::Dialogue& d = *dialogue_;
  if (durable) --durable_flushes_;
  if (ends_session) note_end_committed();
  // The outcome is in failed() (Recorder::Queued::committed): a failure after this commit, seen
  // before this runs, makes its messages count as unrecorded, the safer side for the 421.
  if (ctx_.recorder != nullptr && !ctx_.recorder->failed()) accepted_committed_ += accepted;
  // A commit that failed released the replies it held all the same (the server has the
  // message): the 421 that says the record lacks it follows them at once, if the dialogue is
  // between commands.
  if (!d.finished() && tell_recording_failure() && d.finished()) {
    co_await after_input();
    co_return;
  }
  // The dialogue ended while this commit held its replies: the record closes now, and the
  // replies (the 250 and the 221) wait for that commit too.
  if (durable_flushes_ == 0 && d.finished() && !byte_counts_recorded_ && !draining_upstream_ &&
      !end_committed_) {
    co_await after_input();
    co_return;
  }
  if (durable_flushes_ == 0) release_client_held();
  if (d.finished()) upstream_writer_wake_.notify();
  // A shutdown waiting for an end of data's reply goes on as soon as it has come.
  if (shutdown_requested_) watchdog_timer_.cancel();
}

bool Session::close_waits_for_commit() const {
  // Not the wait for the server to take what is queued for it (start_upstream_drain), which
  // --timeout-command bounds as it is: the record closes after that, not after a commit.
  return durable_flushes_ > 0 && !client_output_unheld_ && !draining_upstream_ &&
         !byte_counts_recorded_;
}

asio::awaitable<void> Session::client_reader() {
  smtp::Dialogue& d = *dialogue_;
  // A read waiting for the client's bytes reads none (nullopt) once the dialogue stops wanting
  // them. That is how "EHLO x\r\nSTARTTLS\r\n" in one write goes: the read waits while the
  // dialogue waits for the EHLO reply, which lets it read the STARTTLS and say 220; the
  // client's next bytes are then its TLS handshake, the handshake's to read. Bytes that came
  // with STARTTLS are in the dialogue already, and still refused as an injection.
  const std::function<bool()> wants_bytes = [&] {
    return !d.finished() && d.wants_client_input() && !client_.tls_active();
  };
  for (;;) {
    while (!d.finished() && (!d.wants_client_input() || upstream_out_.size() > high_water))
      co_await client_reader_wake_.wait();
    if (d.finished()) break;
    const auto buf = thread_read_buffer();
    const auto read =
        co_await client_.read_some_if(asio::buffer(buf.data(), buf.size()), wants_bytes);
    if (d.finished()) break;
    if (!read) continue;
    const auto [ec, n] = *read;
    prepare_dialogue_input();
    last_client_activity_ = std::chrono::steady_clock::now();
    if (ec) {
      client_eof_ = true;
      // A TLS failure is no plain close: the record says what it was (a refused renegotiation).
      if (std::string why = net::describe_client_tls_error(ec); !why.empty()) {
        take_dialogue_records();  // what the dialogue recorded before comes first
        events_.push_back(smtp::mailtap_event(
            mailtap_note(smtp::EventKind::tls, smtp::Phase::tls, std::move(why))));
      }
      d.client_closed();
    } else {
      d.client_bytes(std::string_view(buf.data(), n));
    }
    co_await after_input();
    if (ec) break;
  }
  watchdog_timer_.cancel();  // deadlines change once the client is gone
  client_reader_done_ = true;
  client_reader_exit_.notify();
}

// How the upstream connection ended, for the record.
smtp::Event Session::upstream_end_event(const std::error_code& ec) const {
  smtp::Event e =
      mailtap_note(upstream_->tls_active() ? smtp::EventKind::tls : smtp::EventKind::note,
                   upstream_->tls_active() ? smtp::Phase::tls : smtp::Phase::plain, {});
  e.note = ec == asio::error::eof ? "upstream closed the connection (close_notify)"
           : ec == asio::ssl::error::stream_truncated
               ? "upstream closed the TCP connection without TLS close_notify (truncation)"
               : "upstream connection error: " + ec.message();
  if (!upstream_->tls_active() && ec == asio::error::eof) e.note = "upstream closed the connection";
  return e;
}

// The upstream's read failed with `ec`: recorded, and the dialogue ends. Plain text where a
// TLS record was due is quoted, escaped and capped, never relayed: nothing vouches for it.
void Session::upstream_ended(const std::error_code& ec) {
  constexpr std::size_t quoted_octets = 200;
  net::TlsStream* tls = upstream_->tls();
  const std::string said =
      tls != nullptr ? escape_line(tls->take_plain_text_after_handshake(ec, quoted_octets)) : "";
  smtp::Event end = upstream_end_event(ec);
  if (!said.empty()) {
    end.note = "upstream " + std::string(smtp::upstream_plain_text_phrase) + ": \"" + said + "\"";
    events_.push_back(smtp::mailtap_event(std::move(end)));
    dialogue_->upstream_sent_plain_text(said);
    return;
  }
  events_.push_back(smtp::mailtap_event(std::move(end)));
  dialogue_->upstream_closed(
      net::describe_upstream_alert(ec, tls != nullptr && tls->certificate_requested(),
                                   ctx_.target.client_certificate.get(), upstream_sni_sent_),
      ec == asio::error::connection_reset);
}

asio::awaitable<void> Session::upstream_reader() {
  smtp::Dialogue& d = *dialogue_;
  // Replies held for a commit count too: the reader does not wait for that commit, and what it
  // reads meanwhile waits behind them.
  const auto client_full = [this] { return client_out_.size() + client_held_.size() > high_water; };
  for (;;) {
    if (!d.finished() && client_full()) {
      while (!d.finished() && client_full()) co_await upstream_reader_wake_.wait();
      upstream_read_resumed_ = std::chrono::steady_clock::now();
    }
    if (d.finished()) break;
    const auto buf = thread_read_buffer();
    auto [ec, n] = co_await upstream_->read_some(asio::buffer(buf.data(), buf.size()));
    if (d.finished()) break;
    prepare_dialogue_input();
    last_upstream_read_ = std::chrono::steady_clock::now();
    if (ec) {
      upstream_eof_ = true;
      take_dialogue_records();  // what the dialogue recorded before comes first
      upstream_ended(ec);
    } else {
      d.upstream_bytes(std::string_view(buf.data(), n));
    }
    co_await after_input(true);
    if (ec) break;
  }
  upstream_reader_done_ = true;
  upstream_reader_exit_.notify();
}

asio::awaitable<void> Session::client_writer() {
  bool& broken = client_write_failed_;
  for (;;) {
    if (client_out_.empty()) {
      // Records write_client_now() sealed that the socket had no room for go first.
      if (!broken && !client_.flushed()) {
        co_await write_to_client(asio::const_buffer());
        continue;
      }
      // The 220 to STARTTLS is out: the handshake comes next, before anything else is said.
      if (!broken && client_held_.empty() && dialogue_->client_tls_due()) {
        co_await client_starttls();
        continue;
      }
      // Lines the client's unread output held back: read them now, even after its EOF.
      if (dialogue_->client_input_resumable()) {
        co_await resume_client_input();
        continue;
      }
      // The close tells the client the session is over: not before its record is on disk.
      if (dialogue_->finished() && end_committed_ && client_held_.empty()) break;
      client_writer_parked_ = true;
      co_await client_writer_wake_.wait();
      client_writer_parked_ = false;
      continue;
    }
    std::string chunk = std::move(client_out_);
    client_out_.clear();
    if (broken) {
      // The client is gone; keep draining so the relay can finish. What is dropped is no
      // longer unread output: recounted, it stops holding back the lines (and the EOF) that
      // end the session.
      note_client_output();
      continue;
    }
    co_await write_to_client(asio::buffer(chunk));
  }
}

// One write of the client writer's (of no bytes: what waits from write_client_now()). A failed
// write marks the client gone; either way the upstream reader may go on.
asio::awaitable<void> Session::write_to_client(asio::const_buffer bytes) {
  client_writing_ = bytes.size();
  client_took_at_ = std::chrono::steady_clock::now();
  client_octets_seen_ = client_.socket_octets();
  auto [ec, n] = co_await client_.write(bytes);
  client_took_at_.reset();
  client_output_taken_ = std::chrono::steady_clock::now();
  client_writing_ = 0;
  if (ec) client_write_failed_ = true;
  note_client_output();
  upstream_reader_wake_.notify();
}

void Session::note_client_output() {
  smtp::Dialogue& d = *dialogue_;
  const bool was_full = !d.wants_client_input();
  d.set_client_output_unwritten(client_out_.size() + client_held_.size() + client_writing_);
  if (d.client_input_resumable()) client_writer_wake_.notify();
  if (was_full && d.wants_client_input()) client_reader_wake_.notify();
}

// The client read enough of its output: the lines held back behind it are read, as if they
// had just come.
asio::awaitable<void> Session::resume_client_input() {
  prepare_dialogue_input();
  dialogue_->resume_client_input();
  co_await after_input();
}

asio::awaitable<void> Session::upstream_writer() {
  bool& broken = upstream_write_failed_;
  for (;;) {
    if (upstream_out_.empty()) {
      // Records write_upstream_now() sealed that the socket had no room for go first (an
      // abandoned upstream's were dropped with it).
      if (!broken && !upstream_->flushed()) {
        co_await write_to_upstream(asio::const_buffer());
        continue;
      }
      if (dialogue_->finished()) {
        co_await end_upstream_drain();
        break;
      }
      upstream_writer_parked_ = true;
      co_await upstream_writer_wake_.wait();
      upstream_writer_parked_ = false;
      continue;
    }
    if (broken || dialogue_->abandon_upstream()) {
      drop_upstream_output();
      continue;
    }
    // One piece at a time, so that upstream_out_ is what no write has taken (see there).
    // Credentials in a Secret piece are wiped when it goes.
    const smtp::UpstreamOutput::Piece piece = upstream_out_.take_front();
    note_upstream_hold();
    co_await write_to_upstream(asio::buffer(piece.view()), piece.relayed());
  }
}

// One write of the upstream writer's (of no bytes: what waits from write_upstream_now()). A
// failed write ends the dialogue as the upstream closing; either way the client reader may go on.
// One that ends because the upstream was abandoned meanwhile was counted then.
asio::awaitable<void> Session::write_to_upstream(asio::const_buffer bytes, bool relayed) {
  upstream_handed_.add(bytes.size(), relayed);
  auto [ec, n] = co_await upstream_->write(bytes);
  if (ec) {
    upstream_write_failed_ = true;
    // What the link did not send, and everything queued behind it, never reaches the server.
    drop_upstream_output();
    co_await upstream_write_failed(ec);
  } else {
    upstream_handed_.keep_last(upstream_->unsent());
  }
  client_reader_wake_.notify();
}

asio::awaitable<void> Session::upstream_write_failed(std::error_code ec) {
  if (dialogue_->finished()) co_return;
  dialogue_->set_time(storage::Clock::now());
  dialogue_->upstream_closed({}, ec == asio::error::connection_reset);
  co_await after_input();
}

asio::awaitable<void> Session::writers_then_close() {
  using namespace asio::experimental::awaitable_operators;
  co_await (client_writer() && upstream_writer());
  closing_ = true;
  watchdog_timer_.cancel();
  std::error_code ignored;
  // What the client sends from now on is the lingering close's to discard, not a reader's.
  if (!client_reader_done_) {
    client_reader_wake_.notify();
    client_.socket().cancel(ignored);
    while (!client_reader_done_) co_await client_reader_exit_.wait();
  }
  if (!upstream_reader_done_) {
    upstream_->socket().cancel(ignored);
    while (!upstream_reader_done_) co_await upstream_reader_exit_.wait();
  }
  if (dialogue_->abandon_upstream() || upstream_eof_)
    upstream_->close();
  else
    co_await upstream_->close_gracefully();
  co_await close_client();
}

// The client's end once its last reply is written: a lingering close, so that a client that
// sent more than mailtap read gets that reply and the end, not a TCP reset that loses both.
// What it sent is discarded unread, its octets counted in a note after the end, with what became
// of the last replies: both are known only after the commit those replies waited for
// (docs/recording.md, "What the client sends after the end").
asio::awaitable<void> Session::close_client() {
  const net::Lingered lingered = co_await client_.close_lingering(net::lingering);
  record_after_end(lingered);
  co_await record_.flush();
}

// After the commit the last replies waited for (principle 5): a note of its own, and the
// outcome corrected, never the closing record rewritten before the client was told.
void Session::record_after_end(const net::Lingered& lingered) {
  // A reset says the client closed with mailtap's last bytes unread; over TLS (--local-tls)
  // those are its close_notify, which clients close without reading (Python's ssl module
  // does), so there only a failed write does.
  const bool reset_on_replies = lingered.client_reset && !client_.tls_active();
  // mailtap's own reset (client_dropped_note_) fails the writes too: not the client's doing.
  const bool client_gone =
      client_dropped_note_.empty() && (client_write_failed_ || reset_on_replies);
  if (std::optional<std::string> note =
          undelivered_note(last_replies_, client_dropped_note_, client_gone)) {
    const smtp::Ending* ending = dialogue_ && dialogue_->ending() ? &*dialogue_->ending() : nullptr;
    if (client_dropped_note_.empty()) client_dropped_note_ = *note;
    // As when its FIN came before the 221 (Dialogue::on_reply): a clean end it was not.
    if (client_gone && ending != nullptr && ending->kind == smtp::Ending::Kind::quit) {
      ending_after_end_ = smtp::Ending{smtp::Ending::Kind::client_closed,
                                       smtp::client_closed_before_quit_reply(ending->reason)};
      add_after_end_note(std::move(*note), storage::Outcome::client_closed,
                         ending_after_end_->reason);
    } else {
      add_after_end_note(std::move(*note));
    }
  }
  // What the dialogue had read but not framed where reading stopped went unread as well.
  net::Lingered thrown_away = lingered;
  if (dialogue_) thrown_away.discarded += dialogue_->client_octets_discarded();
  if (std::optional<std::string> note =
          discarded_note(thrown_away, net::lingering, client_reset_unread_,
                         /*greeted=*/dialogue_.has_value())) {
    log::debug("session " + std::to_string(id_) + ": " + *note);
    add_after_end_note(std::move(*note));
  }
}

void Session::add_after_end_note(std::string note, std::optional<storage::Outcome> outcome,
                                 std::string reason) {
  // Not before the end was committed (the note follows the closing record), nor when it was not.
  if (!end_committed_ || end_unrecorded_) return;
  // The upstream's phase, as every event's: a relayed session's is its TLS mode's
  // (dialogue_options).
  smtp::Event e = mailtap_note(
      smtp::EventKind::note,
      dialogue_ && ctx_.target.mode != net::TlsMode::none ? smtp::Phase::tls : smtp::Phase::plain,
      std::move(note));
  if (ctx_.config.transcript) {
    std::string transcript;
    transcript_.event(e, transcript);
    if (!transcript.empty()) log::transcript(transcript);
  }
  record_.after_end(smtp::mailtap_event(std::move(e)), outcome, std::move(reason));
}

Session::Deadlines Session::current_deadlines() const {
  const auto& cfg = ctx_.config;
  const smtp::Dialogue& d = *dialogue_;
  Deadlines out;
  // Whose turn is it? While the upstream owes a reply it is on the clock; while no reply is
  // awaited, or the client is sending a BDAT chunk, the client is (RFC 5321 §4.5.3.2: 5
  // minutes for a command, 10 in a message body). Both may be, with BDAT chunks pipelined.
  // The upstream's clock is for taking what the reply is owed for until it has all of that,
  // then for the reply.
  // While a write to the client waits, the client is on the clock for taking it, each piece its
  // socket takes restarting it (--timeout-command: a reply is what it waits to read).
  if (client_took_at_) out.client_reading = *client_took_at_ + cfg.timeout_command;
  // A server that mailtap stopped reading, as the client is not taking more than 1 MiB of its
  // replies, can complete no reply line: its reply's clock waits for the client's, and then
  // runs from when mailtap read it again. Its clock for taking what it is sent runs on.
  // The client's replies held for a commit (a message's, before the record closes) wait for
  // mailtap, not for the server or the client: one clock, also while a command pipelined behind
  // the end of data awaits its reply, and after the dialogue ended on the server's 221.
  if (close_waits_for_commit() && !client_held_.empty())
    out.recording = commit_hold_began_ + (d.in_data() ? cfg.timeout_data : cfg.timeout_command);
  if (d.finished()) return out;
  const bool held_for_client = out.client_reading && client_out_.size() > high_water;
  if (d.upstream_owes_reply() && (upstream_delivery_.waiting() || !held_for_client)) {
    out.upstream_taking = upstream_delivery_.waiting();
    const auto since = out.upstream_taking
                           ? upstream_delivery_.since()
                           : std::max(upstream_delivery_.since(), upstream_read_resumed_);
    out.upstream = since + (d.awaiting_end_of_data() ? cfg.timeout_data : cfg.timeout_command);
  }
  // A server mailtap holds the client back for (note_upstream_hold) is on the clock for taking
  // what waits for it, unless its clock for taking what a reply is owed for already runs.
  if (upstream_hold_.active() && !out.upstream_taking)
    out.upstream_holding =
        upstream_hold_.since() + (d.in_data() ? cfg.timeout_data : cfg.timeout_command);
  // The client's turn began with its last complete line (or the server's last words, or its
  // taking the last of what mailtap wrote to it, or mailtap reading it again): bytes that
  // complete nothing do not move it, nor does relaying them.
  out.client_turn = std::max(
      {last_client_progress_, last_upstream_read_, client_output_taken_, upstream_hold_ended_});
  // A client that mailtap stopped reading, as the server is not taking its output, is not on
  // the clock while the server is, for taking that output: one clock for the one thing slow.
  // Nor is a client that has not read what it was sent (mailtap may have stopped reading it
  // for that too): its clock for reading is the one that runs.
  if (!client_eof_ && (!d.awaiting_reply() || d.in_data()) && !upstream_hold_.active() &&
      !out.client_reading)
    out.client = out.client_turn + (d.in_data() ? cfg.timeout_data : cfg.timeout_command);
  return out;
}

// A shutdown lets the reply to an end of data already sent come, relayed and recorded, before it
// ends the session: the server may have queued the message, and a client told "try again" would
// send it twice. The usual deadlines bound the wait (--timeout-data: for the server to take
// what is still queued for it, each 64 KiB restarting it, then for the reply).
bool Session::awaiting_end_of_data_at_shutdown() {
  if (!dialogue_->end_of_data_unanswered()) return false;
  if (!end_of_data_wait_logged_) {
    end_of_data_wait_logged_ = true;
    log::info("session " + std::to_string(id_) + ": shutting down once " + ctx_.target.host +
              " has answered the end of data sent to it (--timeout-data " +
              format_setting_duration(ctx_.config.timeout_data) +
              " for it to take what is still queued and to answer; signal again to end it now)");
  }
  return true;
}

// The shutdown's 421. Cut before the reply to an end of data the server has (the user insisted),
// it says the server may have the message rather than "try again": a client that obeys would
// send it twice.
void Session::end_for_shutdown() {
  smtp::Dialogue& d = *dialogue_;
  d.set_time(storage::Clock::now());
  if (d.end_of_data_unanswered()) {
    d.abort("4.3.2 mailtap: shutting down before " + ctx_.target.host +
                " answered the end of data; " + std::string(smtp::may_have_the_message),
            {smtp::Ending::Kind::shutdown,
             "mailtap shut down before the upstream answered the end of data" +
                 std::string(smtp::may_have_the_message_reason)});
    return;
  }
  d.abort("4.3.2 mailtap: shutting down; try again later",
          {smtp::Ending::Kind::shutdown, "mailtap shut down"});
}

void Session::time_out_upstream() {
  const auto& cfg = ctx_.config;
  smtp::Dialogue& d = *dialogue_;
  d.set_time(storage::Clock::now());
  const bool data_clock = d.awaiting_end_of_data();
  const std::string limit =
      format_setting_duration(data_clock ? cfg.timeout_data : cfg.timeout_command);
  if (upstream_delivery_.waiting()) {
    time_out_upstream_taking(limit);
    return;
  }
  // A reply begun but not finished was trickled: the server is there, its reply too slow.
  const bool partly = d.reply_partly_received();
  const std::string what =
      partly ? "the reply from " + ctx_.target.host + " was not complete within " + limit
             : "no reply from " + ctx_.target.host + " within " + limit;
  // The server has a whole message and may have queued it: a client told to try again would
  // send it twice (RFC 5321 §6.1), so the reply says to check first.
  if (d.end_of_data_unanswered()) {
    d.abort("4.4.2 mailtap: " + what + " to the end of data; " +
                std::string(smtp::may_have_the_message) + "; closing",
            {smtp::Ending::Kind::timeout, "upstream did not answer the end of data in time" +
                                              std::string(smtp::may_have_the_message_reason)});
    return;
  }
  // What to do next: the server is stuck or slower than the limit, and a new session may find
  // it answering again.
  d.abort("4.4.2 mailtap: " + what + "; closing: connect again, and raise " +
              (data_clock ? "--timeout-data" : "--timeout-command") + " if the server is this slow",
          {smtp::Ending::Kind::timeout,
           partly ? "upstream reply not complete in time" : "upstream did not reply in time"});
}

// The server had not yet taken all that its reply is owed for: it was slow taking it, and no
// reply was due yet. Whether it got the end of data is not known (a command pipelined behind
// it may be what it did not take): the client is told to check, as for a reply that did not
// come.
void Session::time_out_upstream_taking(const std::string& limit) {
  smtp::Dialogue& d = *dialogue_;
  const std::string what = ctx_.target.host + " did not take " +
                           (d.awaiting_end_of_data() ? "the data" : "what mailtap sent") +
                           " within " + limit;
  if (d.end_of_data_unanswered()) {
    d.abort("4.4.2 mailtap: " + what + "; " + std::string(smtp::may_have_the_message) + "; closing",
            {smtp::Ending::Kind::timeout, "upstream did not take the data in time" +
                                              std::string(smtp::may_have_the_message_reason)});
    return;
  }
  d.abort("4.4.2 mailtap: " + what +
              "; the server or the network to it is slow: try again later; closing",
          {smtp::Ending::Kind::timeout, "upstream did not take what mailtap sent in time"});
}

// Held back by mailtap, the client could complete nothing: mailtap stopped reading it while
// more than it reads at once waited for a server that took none of it within the limit.
void Session::time_out_upstream_holding() {
  const auto& cfg = ctx_.config;
  smtp::Dialogue& d = *dialogue_;
  d.set_time(storage::Clock::now());
  const std::string limit =
      format_setting_duration(d.in_data() ? cfg.timeout_data : cfg.timeout_command);
  d.abort("4.4.2 mailtap: " + ctx_.target.host + " did not take the data within " + limit +
              " (mailtap stopped reading from the client meanwhile); closing",
          {smtp::Ending::Kind::timeout, "upstream did not take the data in time"});
}

// `client_turn`: when the client's turn began. Bytes since then that completed nothing were
// trickled: the line was too slow, not the client idle.
void Session::time_out_client(std::chrono::steady_clock::time_point client_turn) {
  const auto& cfg = ctx_.config;
  smtp::Dialogue& d = *dialogue_;
  d.set_time(storage::Clock::now());
  const std::string limit =
      format_setting_duration(d.in_data() ? cfg.timeout_data : cfg.timeout_command);
  // Or a commit the client's reply waits for, or a full recording queue, held it.
  if (durable_flushes_ > 0 || recording_waits_ > 0) {
    time_out_recording(limit);
    return;
  }
  d.time_out_client(limit, last_client_activity_ > client_turn);
}

void Session::time_out_recording(const std::string& limit) {
  smtp::Dialogue& d = *dialogue_;
  d.set_time(storage::Clock::now());
  // The 421 goes now, at the limit, not behind the commit it would wait for (which may take
  // until the recorder gives up). What was held for that commit acknowledges what is not on
  // disk and never goes (principle 5): the 421 quotes it instead, and the record says so.
  const std::string held = reply_summaries(client_held_);
  const auto [first, others] = first_and_other_summaries(client_held_);
  client_held_.clear();
  client_output_unheld_ = true;
  if (!held.empty()) d.replies_not_relayed(held, client_held_upstream_octets_);
  client_held_upstream_octets_ = 0;
  // Also when the dialogue has ended (the server's 221 came while the 250 waited): the record
  // is not closed yet (close_waits_for_commit), and says the session ended on this.
  d.end_instead("4.3.0 mailtap: recording did not keep up for " + limit +
                    " (the session waited for it)" + held_replies_clause(held, first, others) +
                    "; closing",
                {smtp::Ending::Kind::timeout, "recording did not keep up in time"});
}

// Polled (the watchdog's look, at least once a second), not counted per write: the relay's
// writes stay as they are, and a client that reads steadily restarts the clock all the same.
void Session::look_at_client_reading() {
  if (!client_took_at_) return;
  const std::uint64_t octets = client_.socket_octets();
  if (octets == client_octets_seen_) return;
  client_octets_seen_ = octets;
  client_took_at_ = std::chrono::steady_clock::now();
}

// -v, once a session: mailtap stopped reading a client that does not read its replies (its
// socket refused some, and as much as mailtap holds for a client waits), which otherwise shows
// only as a session that seems stuck until --timeout-command ends it.
void Session::log_client_not_reading() {
  if (client_not_reading_logged_ || client_.unsent() == 0 || !dialogue_->client_output_full())
    return;
  client_not_reading_logged_ = true;
  log::debug("session " + std::to_string(id_) +
             ": the client is not reading its replies: mailtap reads none of its input until it "
             "does (for " +
             client_reading_limit() + " at most)");
}

std::string Session::client_reading_limit() const {
  return format_setting_duration(ctx_.config.timeout_command) + " (--timeout-command)";
}

// No 421: it would wait unread behind what the client has not read. The dialogue ends (the
// server gets a QUIT where it can read one) and says why in the record: the client was slow,
// not the server.
void Session::time_out_client_reading() {
  smtp::Dialogue& d = *dialogue_;
  d.set_time(storage::Clock::now());
  d.client_not_reading(client_reading_limit());
  drop_client();
}

// A reset, not a close: a FIN too would wait behind what the client has not read, and the
// lingering close after it has nothing to wait for. The write under way ends, and so does the
// client reader's wait; what is still queued for the client is dropped by its writer.
void Session::drop_client() {
  client_.reset();
  client_reset_unread_ = true;
  client_write_failed_ = true;
  client_took_at_.reset();
}

// The dialogue has ended, and its record is closed or about to be: the last replies (the 221,
// a 421) may still wait for a client that does not read them. It gets the same clock as
// during the dialogue, running on from where it was, then the connection is reset; once the
// grace period of a shutdown is over it gets none (the lingering close that follows still
// waits, within its limits, for a client that takes them). The note after the closing record says
// so (record_after_end), and the log line that ends the session.
asio::awaitable<void> Session::watch_last_replies() {
  using std::chrono::steady_clock;
  while (!closing_) {
    look_at_client_reading();
    const auto now = steady_clock::now();
    auto next = now + std::chrono::seconds(1);
    if (client_took_at_) {
      const auto deadline =
          shutdown_requested_ ? now : *client_took_at_ + ctx_.config.timeout_command;
      if (now >= deadline) {
        client_dropped_note_ = shutdown_requested_
                                   ? "the client did not read its last reply by the end of the "
                                     "grace period: connection reset"
                                   : "the client did not read its last reply within " +
                                         client_reading_limit() + ": connection reset";
        drop_client();
        continue;
      }
      next = std::min(next, deadline);
    }
    watchdog_timer_.expires_at(next);
    co_await watchdog_timer_.async_wait(use_tuple);
  }
}

asio::awaitable<void> Session::watchdog() {
  co_await watch_dialogue();
  co_await watch_last_replies();
}

// The first deadline that has passed ends the dialogue (true); else when to look again.
bool Session::time_out_if_due(const Deadlines& deadlines,
                              std::chrono::steady_clock::time_point now) {
  const auto passed = [now](const auto& deadline) { return deadline && now >= *deadline; };
  if (passed(deadlines.client_reading))
    time_out_client_reading();
  else if (passed(deadlines.recording))
    time_out_recording(format_setting_duration(dialogue_->in_data() ? ctx_.config.timeout_data
                                                                    : ctx_.config.timeout_command));
  else if (passed(deadlines.upstream))
    time_out_upstream();
  else if (passed(deadlines.upstream_holding))
    time_out_upstream_holding();
  else if (passed(deadlines.client))
    time_out_client(deadlines.client_turn);
  else
    return false;
  return true;
}

// Activity moves deadlines without waking the watchdog: it looks again at least every second,
// and soon while the server may not have all a reply is owed for, or mailtap holds the client
// back for it.
std::chrono::steady_clock::time_point Session::next_look(
    const Deadlines& deadlines, std::chrono::steady_clock::time_point now) const {
  auto next = now + std::chrono::seconds(1);
  for (const auto& deadline : {deadlines.upstream, deadlines.client, deadlines.client_reading,
                               deadlines.upstream_holding, deadlines.recording})
    if (deadline) next = std::min(next, *deadline);
  if (upstream_delivery_.waiting() || upstream_hold_.waiting())
    next = std::min(next, now + net::DeliveryWait::look_interval);
  return next;
}

asio::awaitable<void> Session::watch_dialogue() {
  smtp::Dialogue& d = *dialogue_;
  for (;;) {
    // After the end, while the record waits for a commit that holds the last replies: only the
    // clock for that commit runs (current_deadlines).
    if (closing_ || (d.finished() && !close_waits_for_commit())) break;
    // Recording failed while the session waits between commands (another session's commit,
    // or a commit of this one that released its replies): its 421 goes within a second.
    if (!d.finished() && tell_recording_failure() && d.finished()) {
      co_await after_input();
      continue;
    }
    if (!d.finished() && shutdown_requested_ &&
        (shutdown_insisted_ || !awaiting_end_of_data_at_shutdown())) {
      end_for_shutdown();
      co_await after_input();
      break;
    }
    note_upstream_hold();
    look_at_upstream_delivery();
    look_at_client_reading();
    log_client_not_reading();
    const Deadlines deadlines = current_deadlines();
    const auto now = std::chrono::steady_clock::now();
    if (time_out_if_due(deadlines, now)) {
      co_await after_input();
      break;
    }
    watchdog_timer_.expires_at(next_look(deadlines, now));
    co_await watchdog_timer_.async_wait(use_tuple);
  }
}

}  // namespace mailtap
