#include "proxy/smtp/dialogue.hpp"

#include "proxy/smtp/dialogue_internal.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/command.hpp"

namespace mailtap::smtp {

namespace {
constexpr std::size_t normalise_slice = std::size_t{64} * 1024;

// Verbs after which a strict server's reading of the next bytes depends on its reply: the
// client (RFC 2920 §3.1) must wait for it anyway, so mailtap waits too before reading on.
bool is_sync_verb(std::string_view verb) {
  return verb == "EHLO" || verb == "HELO" || verb == "DATA" || verb == "AUTH" || verb == "QUIT";
}
}  // namespace

Dialogue::Dialogue(DialogueOptions options, std::vector<Event>& events,
                   std::vector<Message>& messages)
    : options_(std::move(options)),
      events_(events),
      messages_(messages),
      redactor_(options_.redaction),
      own_redactor_(options_.redaction) {
  // Credentials only ever travel inside TLS.
  if (options_.login && options_.phase == Phase::tls) {
    login_.emplace(*options_.login);
    login_state_ = LoginState::waiting;
  }
  if (options_.assist_auth) assistant_.emplace(options_.upstream_host, options_.upstream_port);
}

Dialogue::~Dialogue() = default;

Event Dialogue::make_event(Direction d, EventKind k) const {
  Event e;
  e.direction = d;
  e.phase = options_.phase;
  e.kind = k;
  e.time = now_;
  return e;
}

void Dialogue::relay_greeting(const Reply& greeting, Phase phase) {
  Event e = make_event(Direction::upstream_to_client, EventKind::greeting);
  e.phase = phase;
  e.reply_code = greeting.code;
  e.enhanced_status = greeting.enhanced_status;
  e.bytes = greeting.raw;
  e.wire_size = greeting.raw.size();
  events_.push_back(std::move(e));
  bytes_from_upstream_ += greeting.raw.size();
  emit_client(greeting.raw);
}

std::string Dialogue::take_to_upstream() {
  return std::exchange(to_upstream_, {});
}
std::string Dialogue::take_to_client() {
  return std::exchange(to_client_, {});
}

bool Dialogue::wants_client_input() const {
  return !ending_ && !client_eof_ && backlog_.size() - backlog_pos_ < options_.max_client_backlog;
}

bool Dialogue::awaiting_reply() const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [](const Pending& p) { return p.kind != Pending::Kind::local; });
}

Dialogue::Clock::time_point Dialogue::oldest_pending_since() const {
  for (const Pending& p : pending_)
    if (p.kind != Pending::Kind::local) return p.since;
  return now_;
}

bool Dialogue::awaiting_end_of_data() const {
  for (const Pending& p : pending_) {
    if (p.kind == Pending::Kind::local) continue;
    return p.kind == Pending::Kind::data_end || (p.verb == "BDAT" && p.bdat_last);
  }
  return false;
}

bool Dialogue::in_data() const {
  return mode_ == Mode::data || mode_ == Mode::bdat_chunk;
}

void Dialogue::forward(std::string_view bytes) {
  to_upstream_.append(bytes);
  bytes_to_upstream_ += bytes.size();
}

void Dialogue::progress(std::size_t octets, bool complete) {
  constexpr std::size_t progress_unit = std::size_t{64} * 1024;
  octets_since_progress_ += octets;
  if (complete || octets_since_progress_ >= progress_unit) {
    ++client_progress_;
    octets_since_progress_ = 0;
  }
}

void Dialogue::emit_client(std::string_view bytes) {
  to_client_.append(bytes);
  bytes_to_client_ += bytes.size();
}

void Dialogue::finish(Ending::Kind kind, std::string reason) {
  if (ending_) return;
  close_body_events();
  ending_ = Ending{kind, std::move(reason)};
  mode_ = Mode::closed;
}

void Dialogue::abort(std::string_view reply_421_text, Ending ending) {
  if (ending_) return;
  std::string line = "421 " + std::string(reply_421_text) + "\r\n";
  Event e = make_event(Direction::mailtap_to_client, EventKind::local_reply);
  e.reply_code = 421;
  e.enhanced_status = parse_enhanced_status(reply_421_text);
  e.bytes = line;
  e.wire_size = line.size();
  events_.push_back(std::move(e));
  emit_client(line);
  finish(ending.kind, std::move(ending.reason));
}

void Dialogue::queue_local_reply(std::string reply_line) {
  Pending p;
  p.kind = Pending::Kind::local;
  p.line = std::move(reply_line);
  p.since = now_;
  pending_.push_back(std::move(p));
  flush_local_replies();
}

void Dialogue::flush_local_replies() {
  while (!pending_.empty() && pending_.front().kind == Pending::Kind::local) {
    const std::string& line = pending_.front().line;
    Event e = make_event(Direction::mailtap_to_client, EventKind::local_reply);
    e.reply_code = std::atoi(line.c_str());
    e.enhanced_status =
        parse_enhanced_status(line.size() > 4 ? std::string_view(line).substr(4) : "");
    e.bytes = line;
    e.wire_size = line.size();
    events_.push_back(std::move(e));
    emit_client(line);
    pending_.pop_front();
  }
}

void Dialogue::push_pending(Pending p) {
  p.since = now_;
  if (p.sync) paused_ = true;
  pending_.push_back(std::move(p));
}

void Dialogue::note_rewrites(std::string_view verb) {
  RewriteCounts rw = normaliser_.take_rewrites();
  rw += std::exchange(data_rewrites_, {});
  if (!rw.any()) return;
  Event e = make_event(Direction::mailtap_note, EventKind::rewrite);
  e.verb = std::string(verb);
  e.note = rw.describe();
  events_.push_back(std::move(e));
}

// The body is recorded once, as these events, in pieces as it streams through; --max-body
// caps what is kept of each message, never what is relayed.
void Dialogue::flush_data_event() {
  if (data_event_.empty()) return;
  Event e = make_event(Direction::client_to_upstream, data_event_kind_);
  e.verb = data_event_kind_ == EventKind::data ? "DATA" : "BDAT";
  e.bytes = std::exchange(data_event_, {});
  if (Transaction* t = body_transaction_.get()) {
    e.transaction = t->message.transaction;
    const std::uint64_t room =
        t->recorded < options_.max_body_capture ? options_.max_body_capture - t->recorded : 0;
    if (e.bytes.size() > room) {
      t->message.body_truncated = true;
      t->unrecorded += e.bytes.size() - room;
      e.bytes.resize(static_cast<std::size_t>(room));
    }
    t->recorded += e.bytes.size();
  }
  e.wire_size = e.bytes.size();
  if (!e.bytes.empty()) events_.push_back(std::move(e));
}

// Where the body (or a BDAT chunk) ends: what --max-body left out is accounted for in one event
// with no bytes, so that the events still add up to every octet relayed.
void Dialogue::close_body_events() {
  flush_data_event();
  Transaction* t = body_transaction_.get();
  if (t == nullptr || t->unrecorded == 0) return;
  Event e = make_event(Direction::client_to_upstream, data_event_kind_);
  e.verb = data_event_kind_ == EventKind::data ? "DATA" : "BDAT";
  e.transaction = t->message.transaction;
  e.wire_size = static_cast<std::size_t>(std::exchange(t->unrecorded, 0));
  e.note = std::to_string(e.wire_size) + " more octets relayed but not recorded: --max-body " +
           std::to_string(options_.max_body_capture) + " octets";
  events_.push_back(std::move(e));
}

// ---- client side -------------------------------------------------------------------------

void Dialogue::client_bytes(std::string_view bytes) {
  if (ending_) return;
  backlog_.append(bytes);
  process_client();
}

void Dialogue::client_closed() {
  client_eof_ = true;
  process_client();
}

void Dialogue::process_client() {
  while (!ending_ && !paused_ && pending_.size() < options_.max_pending_replies) {
    bool progressed = false;
    switch (mode_) {
      case Mode::command:
      case Mode::sasl:
        if (quit_sent_) {
          // A server stops reading at QUIT; so does mailtap.
          backlog_pos_ = backlog_.size();
          break;
        }
        progressed = read_line();
        if (progressed) handle_line();
        break;
      case Mode::data:
        progressed = read_data();
        note_rewrites("DATA");
        break;
      case Mode::bdat_chunk:
        progressed = read_bdat_chunk();
        break;
      case Mode::closed:
        break;
    }
    if (!progressed) break;
  }
  flush_data_event();
  if (backlog_pos_ > 0 &&
      (backlog_pos_ == backlog_.size() || backlog_pos_ > std::size_t{64} * 1024)) {
    backlog_.erase(0, backlog_pos_);
    backlog_pos_ = 0;
  }
  if (client_eof_) on_client_input_exhausted();
}

bool Dialogue::read_line() {
  for (;;) {
    std::string_view avail(backlog_.data() + backlog_pos_, backlog_.size() - backlog_pos_);
    if (avail.empty()) return false;
    std::size_t n = normaliser_.normalise(avail.substr(0, 4096), line_);
    backlog_pos_ += n;
    if (distrusted_bytes_ > 0 && n > 0) {
      line_distrusted_ = true;
      distrusted_bytes_ -= std::min(n, distrusted_bytes_);
    }
    // The normaliser writes CRLF only as a line ending and stops right after it.
    if (line_.size() >= 2 && line_.compare(line_.size() - 2, 2, "\r\n") == 0) {
      line_end_ = normaliser_.last_line_end();
      progress(0, /*complete=*/true);
      return true;
    }
    if (line_.size() > options_.max_auth_line) {
      // Keep framing, but do not keep the bytes: the line is refused whatever it says. Its verb
      // is remembered from its start (the tail could be anything, a secret included).
      if (discarded_ == 0) discarded_verb_ = parse_command(line_).verb;
      if (line_.find('\0') != std::string::npos) line_has_nul_ = true;
      discarded_ += line_.size();
      line_.clear();
    }
    if (n == 0) return false;
  }
}

// mailtap speaks to the upstream on its own account (a cancel "*", a QUIT for a vanished
// client): recorded as mailtap's, with its reply expected like any other.
void Dialogue::send_own_line(std::string_view line, EventKind kind, std::string note,
                             Expect expects, bool sync) {
  Event e = make_event(Direction::mailtap_to_upstream, kind);
  e.verb = kind == EventKind::auth ? "AUTH" : std::string(parse_command(line).verb);
  e.bytes = std::string(line);
  e.wire_size = line.size();
  e.note = std::move(note);
  Pending p;
  p.kind = expects;
  p.verb = e.verb;
  p.sync = sync;
  events_.push_back(std::move(e));
  to_upstream_ += line;
  push_pending(std::move(p));
}

void Dialogue::handle_line() {
  // The rewrite note follows the event of the line it rewrote, so a transcript reads
  // "C: EHLO x" then "~ bare LF normalised", whatever else the line caused.
  const RewriteCounts rewrites = normaliser_.take_rewrites();
  const std::size_t first_event = events_.size();
  handle_framed_line();
  line_distrusted_ = false;  // it applied to this line only
  if (!rewrites.any()) return;
  Event e = make_event(Direction::mailtap_note, EventKind::rewrite);
  e.verb = first_event < events_.size() ? events_[first_event].verb : std::string{};
  e.note = rewrites.describe();
  const std::size_t at = std::min(first_event + 1, events_.size());
  events_.insert(events_.begin() + static_cast<std::ptrdiff_t>(at), std::move(e));
}

// A client that pipelined its SASL responses behind AUTH sees them read as commands once the
// exchange fails (a strict server reads them so too, and they are relayed as such). They were
// meant as secrets: lines already received at that moment are recorded redacted unless they
// begin with an SMTP verb (default deny, as for anything sent during AUTH).
void Dialogue::distrust_early_lines() {
  distrusted_bytes_ = backlog_.size() - backlog_pos_;
  if (!line_.empty() || discarded_ > 0) line_distrusted_ = true;
}

void Dialogue::handle_framed_line() {
  std::string line = std::exchange(line_, {});
  const std::size_t discarded = std::exchange(discarded_, 0);
  const std::string discarded_verb = std::exchange(discarded_verb_, {});
  const bool has_nul = std::exchange(line_has_nul_, false) || line.find('\0') != std::string::npos;
  // A line can complete in the same read that takes it past the limit: check the whole size too.
  const bool over_auth_limit = discarded > 0 || line.size() > options_.max_auth_line;
  if (mode_ == Mode::sasl) {
    if (over_auth_limit) {
      // The upstream is still waiting for a SASL response; cancel the exchange for the client
      // (RFC 4954 "*") so both sides agree on where it ended.
      send_own_line("*\r\n", EventKind::auth,
                    "SASL response of " + std::to_string(discarded + line.size()) +
                        " octets exceeds 12288 (RFC 4954): not forwarded, exchange cancelled",
                    Expect::sasl, /*sync=*/true);
      return;
    }
    handle_sasl_line(line);
    return;
  }
  Command cmd = parse_command(line);
  if (discarded > 0) cmd.verb = discarded_verb;
  const std::size_t total = discarded + line.size();
  const bool too_long =
      over_auth_limit || (cmd.verb != "AUTH" && line.size() > options_.max_command_line);
  if (too_long || has_nul) {
    Event e = make_event(Direction::client_to_mailtap, EventKind::error);
    e.verb = cmd.verb.size() <= 16 ? cmd.verb : std::string{};
    e.wire_size = total;
    e.redacted = true;  // the refused line is not kept: it may be anything, secrets included
    e.note = too_long ? "command line of " + std::to_string(total) + " octets refused"
                      : "command line with a NUL byte refused";
    events_.push_back(std::move(e));
    queue_local_reply(too_long
                          ? "500 5.5.2 mailtap: line too long (limit " +
                                std::to_string(cmd.verb == "AUTH" ? options_.max_auth_line
                                                                  : options_.max_command_line) +
                                " octets); not forwarded\r\n"
                          : "500 5.5.2 mailtap: NUL byte in command line; not forwarded\r\n");
    return;
  }
  handle_command(line);
}

void Dialogue::handle_command(std::string_view line) {
  Command cmd = parse_command(line);
  static constexpr std::string_view smtp_verbs[] = {"EHLO", "HELO", "MAIL", "RCPT",    "DATA",
                                                    "BDAT", "RSET", "NOOP", "QUIT",    "VRFY",
                                                    "EXPN", "HELP", "AUTH", "STARTTLS"};
  const bool distrusted =
      std::exchange(line_distrusted_, false) &&
      std::find(std::begin(smtp_verbs), std::end(smtp_verbs), cmd.verb) == std::end(smtp_verbs);
  auto record_client = [&](Direction d, EventKind k) {
    Event e = make_event(d, k);
    e.wire_size = line.size();
    if (distrusted) {
      e.bytes = "[<redacted " + std::to_string(line.size()) + " bytes>]\r\n";
      e.redacted = true;
      e.note = "sent before a failed AUTH exchange ended; kept out of the record";
    } else {
      e.verb = cmd.verb;
      e.bytes = std::string(line);
    }
    events_.push_back(std::move(e));
  };

  if (intercept_command(cmd, line)) return;

  if (cmd.verb == "STARTTLS") {
    record_client(Direction::client_to_mailtap, EventKind::command);
    queue_local_reply("502 5.5.1 mailtap: " + options_.starttls_refusal + "\r\n");
    return;
  }

  if (cmd.verb == "BDAT") {
    if (auto args = parse_bdat_args(cmd.args)) {
      if (!chunking_) {
        // The upstream would read the chunk as commands; mailtap consumes it as RFC 3030 asks
        // of a server refusing BDAT, and nothing of it travels upstream.
        record_client(Direction::client_to_mailtap, EventKind::command);
        queue_local_reply(
            "502 5.5.1 mailtap: the upstream did not advertise CHUNKING; BDAT chunk discarded\r\n");
        if (args->size > 0) {
          mode_ = Mode::bdat_chunk;
          bdat_remaining_ = args->size;
          bdat_discard_ = true;
        }
        return;
      }
      record_client(Direction::client_to_upstream, EventKind::command);
      forward(line);
      Pending p;
      p.verb = "BDAT";
      p.bdat_last = args->last;
      p.transaction = transaction_;
      push_pending(std::move(p));
      if (transaction_) transaction_->message.via_bdat = true;
      if (args->size > 0) {
        mode_ = Mode::bdat_chunk;
        bdat_remaining_ = args->size;
        bdat_discard_ = false;
        bdat_last_ = args->last;
        data_event_kind_ = EventKind::bdat_chunk;
        body_transaction_ = transaction_;
      } else if (args->last) {
        transaction_.reset();  // complete: its reply finds it through the Pending entry
      }
      return;
    }
    // Malformed BDAT: servers differ on whether they then skip a chunk (and how long), so the
    // line never reaches the upstream; mailtap answers and reads on as commands.
    record_client(Direction::client_to_mailtap, EventKind::command);
    queue_local_reply("501 5.5.4 mailtap: syntax is BDAT <size> [LAST]; not forwarded\r\n");
    return;
  }

  if (cmd.verb == "AUTH") {
    send_client_auth(line, /*response=*/false);
    return;
  }
  record_client(Direction::client_to_upstream, EventKind::command);
  forward(line);
  Pending p;
  p.verb = distrusted ? std::string{} : cmd.verb;  // the reply event names it
  if (cmd.verb == "MAIL" || cmd.verb == "RCPT" || cmd.verb == "EHLO" || cmd.verb == "HELO")
    p.line = std::string(strip_crlf(line));
  if (cmd.verb != "MAIL") {
    p.transaction = transaction_;
  } else if (!transaction_ || transaction_->settled) {
    begin_transaction(p.line);
    p.transaction = transaction_;
  }  // else a MAIL inside an open transaction: refused (503, RFC 5321 §4.1.4), changes nothing
  p.sync = is_sync_verb(cmd.verb);
  p.line_end = line_end_;
  if (cmd.verb == "QUIT") quit_sent_ = true;
  push_pending(std::move(p));
}

void Dialogue::handle_sasl_line(std::string_view line) {
  if (assistant_) {
    AssistedLine a = assistant_->response(strip_crlf(line));
    if (a.changed) {
      send_client_auth(a.line.view(), /*response=*/true);
      credentials_sent_ = true;
      note_rewrite("AUTH", std::move(a.note));
      return;
    }
  }
  send_client_auth(line, /*response=*/true);
}

// The client's AUTH line or SASL response (`wire`, CRLF included, as it goes upstream): recorded
// through the redactor, forwarded, and its reply awaited before anything else is read.
void Dialogue::send_client_auth(std::string_view wire, bool response) {
  RedactedLine r =
      response ? redactor_.client_response(strip_crlf(wire)) : redactor_.begin(strip_crlf(wire));
  Event e = make_event(Direction::client_to_upstream, EventKind::auth);
  e.verb = "AUTH";
  e.bytes = r.text + "\r\n";
  e.wire_size = wire.size();
  e.redacted = r.redacted;
  e.note = std::move(r.decoded);
  events_.push_back(std::move(e));
  forward(wire);
  Pending p;
  p.kind = response ? Pending::Kind::sasl : Pending::Kind::command;
  p.verb = "AUTH";
  p.sync = true;
  p.transaction = transaction_;
  push_pending(std::move(p));
}

bool Dialogue::read_data() {
  std::string segment;
  for (;;) {
    std::string_view avail(backlog_.data() + backlog_pos_, backlog_.size() - backlog_pos_);
    if (avail.empty()) return false;
    if (const std::size_t n = plain_lines(avail); n > 0) {
      const std::string_view lines = avail.substr(0, n);
      backlog_pos_ += n;
      forward(lines);
      if (options_.capture_bodies) data_event_ += lines;
      data_body_offset_ += n;
      capture_body(lines);
      data_prev_end_ = LineEnd::crlf;
      progress(n, /*complete=*/true);
      continue;
    }
    segment.clear();
    // A body is data: 0xFF is an ordinary byte there (8-bit text), not telnet.
    std::size_t n =
        normaliser_.normalise(avail.substr(0, normalise_slice), segment, /*telnet=*/false);
    backlog_pos_ += n;
    if (segment.empty()) {
      if (n == 0) return false;
      continue;
    }
    if (body_segment(segment)) return true;
  }
}

// Most of a body is whole CRLF lines that leave mailtap nothing to decide: no leading dot, no
// bare CR or LF, none longer than RFC 5321 allows (until that was noted once). The length of
// such a run at the start of `avail`, which goes to the upstream and the record as it is; the
// rest takes the line-by-line path. Only at a line start, with nothing pending in the
// normaliser.
std::size_t Dialogue::plain_lines(std::string_view avail) const {
  if (!normaliser_.idle() || data_line_len_ != 0 || data_dot_held_) return 0;
  constexpr std::size_t longest_line = 998;  // RFC 5321 §4.5.3.1.6, CRLF excluded
  std::size_t pos = 0;
  std::size_t run = 0;
  while (pos < avail.size() && avail[pos] != '.') {
    const auto* lf =
        static_cast<const char*>(std::memchr(avail.data() + pos, '\n', avail.size() - pos));
    if (lf == nullptr) break;
    const auto lf_at = static_cast<std::size_t>(lf - avail.data());
    if (lf_at == pos || avail[lf_at - 1] != '\r') break;  // a bare LF
    const std::size_t text = lf_at - 1 - pos;
    if (std::memchr(avail.data() + pos, '\r', text) != nullptr) break;  // a bare CR
    if (text > longest_line && !long_line_noted_) break;
    pos = lf_at + 1;
    run = pos;
  }
  return run;
}

// Only the client's own kind of line ending can end its message: CRLF always, and a bare LF or
// bare CR when the DATA line itself ended that way (nc without -C, a terminal sending CR).
bool Dialogue::ends_message(LineEnd end) const {
  return end == LineEnd::crlf || end == data_own_end_;
}

// One piece of canonical body text: a line, or part of one, ending in CRLF or not. A dot at
// the start of a line is where SMTP smuggling happens: a line "." ends the message, and a
// leading dot is removed by the server (RFC 5321 §4.5.2). So such a dot is forwarded only once
// the line shows what it is, and doubled when the client did not mean it that way.
bool Dialogue::body_segment(std::string_view segment) {
  const bool eol = segment.size() >= 2 && segment.compare(segment.size() - 2, 2, "\r\n") == 0;
  const LineEnd end = eol ? normaliser_.last_line_end() : LineEnd::none;
  const std::string_view content = segment.substr(0, segment.size() - (eol ? 2 : 0));
  const bool line_start = data_line_len_ == 0 && !data_dot_held_;
  // The line began after a line ending that cannot end the message: in the client's meaning it
  // continues the previous line, so a leading dot is text, not transparency.
  const bool after_foreign_end = !ends_message(data_prev_end_);
  if (line_start && content == "." && !eol) {
    data_dot_held_ = true;
    return false;
  }
  const bool dot_first = data_dot_held_ || (line_start && !content.empty() && content[0] == '.');
  if (dot_first) {
    const bool lone_dot = eol && content.size() + (data_dot_held_ ? 1 : 0) == 1;
    if (lone_dot && ends_message(end) && !after_foreign_end) {
      data_dot_held_ = false;
      forward(".\r\n");  // the terminator: on the wire, not in the stored body
      if (options_.capture_bodies) data_event_ += ".\r\n";
      progress(0, /*complete=*/true);
      end_of_data();
      return true;
    }
    const bool doubled = after_foreign_end || lone_dot;
    std::string line = doubled ? "." : "";
    if (data_dot_held_) line += '.';
    line += segment;
    if (lone_dot) {
      note_smuggling_shape(data_prev_end_, end);
    } else if (doubled) {
      ++data_rewrites_.dots_doubled;
    }
    data_dot_held_ = false;
    forward_body(line, /*line_start=*/true);
  } else {
    forward_body(segment, line_start);
  }
  if (eol) {
    data_line_len_ = 0;
    data_prev_end_ = end;
  }
  return false;
}

// Forwards body text and records it; `line_start`: it begins a line (its leading dot, if any,
// is transparency, not stored by the server).
void Dialogue::forward_body(std::string_view bytes, bool line_start) {
  forward(bytes);
  if (options_.capture_bodies) data_event_ += bytes;
  const bool eol = bytes.size() >= 2 && bytes.compare(bytes.size() - 2, 2, "\r\n") == 0;
  const std::size_t line_len = data_line_len_ + bytes.size() - (eol ? 2 : 0);
  std::string_view stored = bytes;
  if (line_start && !stored.empty() && stored[0] == '.') stored.remove_prefix(1);
  data_body_offset_ += stored.size();
  capture_body(stored);
  if (line_len > 998 && !long_line_noted_) {
    long_line_noted_ = true;
    Event e = make_event(Direction::mailtap_note, EventKind::note);
    e.verb = "DATA";
    e.note =
        "message line longer than 1000 octets with CRLF (RFC 5321 §4.5.3.1.6); forwarded "
        "unchanged";
    events_.push_back(std::move(e));
  }
  data_line_len_ = line_len;
  progress(bytes.size(), eol);
}

void Dialogue::end_of_data() {
  ++data_ends_sent_;
  data_line_len_ = 0;
  mode_ = Mode::command;
  data_event_kind_ = EventKind::data;
  close_body_events();
  Pending p;
  p.kind = Pending::Kind::data_end;
  p.verb = "DATA";
  p.transaction = std::move(transaction_);
  push_pending(std::move(p));
}

// A line "." that would end the message for a server reading mailtap's CRLF text, but not for
// the client: its line endings are not both the client's own. Recorded with what the client
// sent and where, so that `mailtap audit` can list it.
void Dialogue::note_smuggling_shape(LineEnd before, LineEnd after) {
  flush_data_event();  // the note follows the body text it concerns
  Event e = make_event(Direction::mailtap_note, EventKind::rewrite);
  e.verb = "DATA";
  e.note = std::string(smuggling_shape_note_prefix) + std::string(escaped(before)) + "." +
           std::string(escaped(after)) + " at offset " + std::to_string(data_body_offset_) +
           " of the message: sent as \"..\", so it does not end the message (the DATA line "
           "ended in " +
           std::string(to_string(data_own_end_)) +
           "; only that or CRLF, around a lone \".\", ends it)";
  events_.push_back(std::move(e));
}

bool Dialogue::read_bdat_chunk() {
  std::string_view avail(backlog_.data() + backlog_pos_, backlog_.size() - backlog_pos_);
  const auto take =
      static_cast<std::size_t>(std::min<std::uint64_t>(bdat_remaining_, avail.size()));
  if (take == 0) return false;
  std::string_view chunk = avail.substr(0, take);
  backlog_pos_ += take;
  bdat_remaining_ -= take;
  progress(take, bdat_remaining_ == 0);
  if (!bdat_discard_) {
    // Chunks are counted octets, binary-safe: no normalisation, no telnet handling.
    forward(chunk);
    if (options_.capture_bodies) data_event_ += chunk;
    capture_body(chunk);
  }
  if (bdat_remaining_ > 0) return false;
  close_body_events();  // while the chunk's transaction is still the current one
  if (bdat_last_ && !bdat_discard_) transaction_.reset();
  bdat_last_ = false;
  mode_ = Mode::command;
  data_event_kind_ = EventKind::data;
  return true;
}

void Dialogue::on_client_input_exhausted() {
  if (ending_ || paused_ || backlog_pos_ < backlog_.size()) return;
  if (mode_ == Mode::data || (mode_ == Mode::bdat_chunk && !bdat_discard_)) {
    Event e = make_event(Direction::mailtap_note, EventKind::note);
    e.note =
        "client closed the connection inside a message body; the message was abandoned "
        "(no end of data was sent, so the upstream discards it)";
    events_.push_back(std::move(e));
    abandon_upstream_ = true;
    finish(Ending::Kind::client_closed, "client closed inside a message body");
    return;
  }
  if (!line_.empty() || discarded_ > 0) {
    Event e = make_event(Direction::mailtap_note, EventKind::note);
    e.note = "client closed after an unterminated line of " +
             std::to_string(line_.size() + discarded_) + " octets; not forwarded";
    events_.push_back(std::move(e));
    line_.clear();
    discarded_ = 0;
  }
  if (quit_sent_) return;  // the QUIT reply ends the dialogue
  quit_sent_ = true;
  if (mode_ == Mode::sasl) {
    // The upstream waits for a SASL response and would read "QUIT" as one: cancel the exchange
    // first (RFC 4954 "*"), then quit.
    send_own_line("*\r\n", EventKind::auth,
                  "client closed the connection during AUTH; mailtap cancels the exchange",
                  Expect::own_cancel, /*sync=*/false);
    mode_ = Mode::command;
  }
  send_own_line("QUIT\r\n", EventKind::command,
                "client closed the connection; mailtap ends the upstream session politely",
                Expect::own_quit, /*sync=*/false);
}

// ---- upstream side -----------------------------------------------------------------------

void Dialogue::upstream_bytes(std::string_view bytes) {
  if (ending_) return;
  replies_.feed(bytes);
  while (!ending_) {
    std::optional<Reply> reply = replies_.next();
    if (!reply) break;
    on_reply(std::move(*reply));
  }
  if (!ending_ && replies_.error() != ReplyParser::Error::none) {
    abort("4.5.0 mailtap: " + std::string(replies_.error_text()) + "; closing",
          {Ending::Kind::error, std::string(replies_.error_text())});
    return;
  }
  process_client();
}

void Dialogue::upstream_closed() {
  if (ending_) return;
  flush_data_event();
  abort("4.4.2 mailtap: " + options_.upstream_label + " closed the connection",
        {Ending::Kind::upstream_closed, "upstream closed the connection"});
}

void Dialogue::on_reply(Reply reply) {
  bytes_from_upstream_ += reply.raw.size();
  Event e = make_event(Direction::upstream_to_client, EventKind::reply);
  e.reply_code = reply.code;
  e.enhanced_status = reply.enhanced_status;
  e.bytes = reply.raw;
  e.wire_size = reply.raw.size();
  std::string to_client = reply.raw;
  std::optional<Event> rewrite;

  if (pending_.empty()) {
    e.note = "unsolicited reply";
    events_.push_back(std::move(e));
    emit_client(to_client);
    if (reply.code == 421) finish(Ending::Kind::upstream_closed, "upstream: " + first_line(reply));
    return;
  }

  Pending p = std::move(pending_.front());
  pending_.pop_front();
  e.verb = p.verb;
  const bool positive = reply.positive_completion();

  auto sasl_challenge = [&] {
    RedactedLine r = redactor_.server_challenge(strip_crlf(reply.raw));
    e.kind = EventKind::auth;
    if (r.redacted) {
      e.bytes = r.text + "\r\n";
      e.redacted = true;
    }
    e.note = std::move(r.decoded);
    mode_ = Mode::sasl;
    if (!assistant_) return;
    if (std::optional<std::string> decoded = assistant_->challenge(reply)) {
      to_client = std::move(*decoded);
      rewrite = make_event(Direction::mailtap_to_client, EventKind::rewrite);
      rewrite->verb = "AUTH";
      rewrite->bytes = to_client;
      rewrite->note = "334 challenge decoded for the client (--assist-auth)";
    }
  };
  auto sasl_end = [&] {
    redactor_.finish(reply.code);
    if (reply.code != 235) distrust_early_lines();
    if (!assistant_) return;
    if (assistant_->oauth_in_progress()) assist_token_refused_ = reply.code != 235;
    assistant_->finish();
  };

  switch (p.kind) {
    case Pending::Kind::own_quit:
      e.direction = Direction::upstream_to_mailtap;
      bytes_from_upstream_ -= reply.raw.size();  // not relayed: the client is gone
      events_.push_back(std::move(e));
      finish(Ending::Kind::client_closed, "client closed the connection");
      return;
    case Pending::Kind::own_cancel:
      e.direction = Direction::upstream_to_mailtap;
      bytes_from_upstream_ -= reply.raw.size();  // not relayed: the client is gone
      redactor_.finish(reply.code);
      events_.push_back(std::move(e));
      if (reply.code == 421)
        finish(Ending::Kind::upstream_closed, "upstream: " + first_line(reply));
      return;
    case Pending::Kind::own_ehlo:
    case Pending::Kind::own_auth:
      on_own_reply(p, reply, std::move(e));
      return;
    case Pending::Kind::sasl:
      if (reply.code == 334) {
        sasl_challenge();
      } else {
        sasl_end();
        mode_ = Mode::command;
      }
      break;
    case Pending::Kind::data_end:
      if (p.transaction) finish_transaction(*p.transaction, reply);
      break;
    case Pending::Kind::command:
      if (p.verb == "EHLO" || p.verb == "HELO") {
        if (positive) {
          // RFC 5321 §4.1.4: EHLO/HELO reset the transaction state (unless a later MAIL began one)
          if (transaction_ == p.transaction) transaction_.reset();
          chunking_ = p.verb == "EHLO" && parse_capabilities(reply).chunking;
        }
        if (hold_for_login(p, reply, positive)) {
          // mailtap authenticates first; the client gets this reply when it is done.
          events_.push_back(std::move(e));
          start_login(p);
          return;
        }
        if (p.verb == "EHLO" && positive) {  // a refusal lists no extensions: relay it as is
          bool removed = false;
          to_client = client_ehlo_reply(reply, removed);
          if (removed) {
            rewrite = make_event(Direction::mailtap_to_client, EventKind::rewrite);
            rewrite->verb = "EHLO";
            rewrite->bytes = to_client;
            rewrite->note = ehlo_rewrite_note();
          }
        }
      } else if (p.verb == "MAIL") {
        if (!positive && p.transaction) p.transaction->settled = true;
      } else if (p.verb == "RCPT") {
        if (p.transaction)
          p.transaction->message.recipients.push_back(
              Recipient{p.line, reply.code, std::string(strip_crlf(reply.raw))});
      } else if (p.verb == "DATA") {
        if (reply.code == 354) {
          mode_ = Mode::data;
          data_own_end_ = p.line_end;
          data_prev_end_ = p.line_end;
          data_line_len_ = 0;
          data_dot_held_ = false;
          data_body_offset_ = 0;
          data_event_kind_ = EventKind::data;
          body_transaction_ = p.transaction;
          long_line_noted_ = false;
        }
      } else if (p.verb == "AUTH") {
        if (reply.code == 334) {
          sasl_challenge();
        } else {
          sasl_end();
        }
      } else if (p.verb == "RSET") {
        if (positive && transaction_ == p.transaction) transaction_.reset();
      } else if (p.verb == "BDAT") {
        if (p.bdat_last && p.transaction) finish_transaction(*p.transaction, reply);
      }
      break;
    case Pending::Kind::local:
      break;  // locals never wait at the head: flush_local_replies emits them at once
  }
  if (p.sync) paused_ = false;
  events_.push_back(std::move(e));
  if (rewrite) events_.push_back(std::move(*rewrite));
  emit_client(to_client);
  if (p.kind == Pending::Kind::command && p.verb == "QUIT") {
    finish(Ending::Kind::quit, first_line(reply));
    return;
  }
  if (reply.code == 421) {
    finish(Ending::Kind::upstream_closed, "upstream: " + first_line(reply));
    return;
  }
  flush_local_replies();
}

// ---- transactions ------------------------------------------------------------------------

void Dialogue::begin_transaction(std::string_view mail_line) {
  transaction_ = std::make_shared<Transaction>();
  transaction_->message.transaction = ++transactions_begun_;
  transaction_->message.mail_from = std::string(mail_line);
  transaction_->message.started = now_;
  SHA256_Init(&transaction_->sha);
}

void Dialogue::capture_body(std::string_view bytes) {
  if (!transaction_ || bytes.empty()) return;
  Message& m = transaction_->message;
  m.size += bytes.size();
  // Hashing the body is a large part of the relay's CPU per MiB; with nothing to record there
  // is nobody to hand the hash to.
  if (options_.capture_bodies) SHA256_Update(&transaction_->sha, bytes.data(), bytes.size());
}

void Dialogue::finish_transaction(Transaction& t, const Reply& final_reply) {
  if (t.settled) return;
  t.settled = true;
  Message m = std::move(t.message);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &t.sha);
  static constexpr char hex[] = "0123456789abcdef";
  m.sha256_hex.reserve(2 * sizeof digest);
  for (unsigned char b : digest) {
    m.sha256_hex.push_back(hex[b >> 4]);
    m.sha256_hex.push_back(hex[b & 15]);
  }
  m.final_code = final_reply.code;
  m.final_reply = std::string(strip_crlf(final_reply.raw));
  m.finished = now_;
  messages_.push_back(std::move(m));
}

}  // namespace mailtap::smtp
