#include "tools/replay_driver.hpp"

#include <algorithm>

#include "tools/replay_credentials.hpp"

namespace mailtap::tools {

namespace {

std::string first_line(std::string_view raw) {
  std::string_view l = raw.substr(0, raw.find('\n'));
  while (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  return std::string(l);
}

std::vector<std::string> lines_of(std::string_view raw) {
  std::vector<std::string> lines;
  while (!raw.empty()) {
    const std::size_t end = raw.find('\n');
    lines.push_back(first_line(raw));
    raw.remove_prefix(end == std::string_view::npos ? raw.size() : end + 1);
  }
  return lines;
}

}  // namespace

// The step of flight `f` that reply `r` answers: the next one from `answered` with its verb
// (the end of data's reply has its body's, DATA), which it then moves past; "" if none does.
std::string ReplayDriver::answered_command(const Flight& f, const RecordedReply& r,
                                           std::size_t& answered) const {
  if (r.unsolicited || r.verb.empty()) return "";
  for (std::size_t j = answered; j < f.steps.size(); ++j) {
    const ClientStep& step = recording_.client[f.steps[j]];
    // A BDAT chunk carries its line's verb but is answered by nothing: the reply to a
    // pipelined `BDAT n LAST` behind it is that line's.
    if (step.kind == smtp::EventKind::bdat_chunk || step.verb != r.verb) continue;
    answered = j + 1;
    return step.summary();
  }
  return "";
}

bool ReplayReport::all_match() const {
  return differences() == 0 && stopped.empty() && (!login || login->matches());
}

std::size_t ReplayReport::differences() const {
  std::size_t n = 0;
  for (const auto& r : replies)
    if (!r.matches()) ++n;
  return n;
}

std::size_t ReplayReport::compared() const {
  return static_cast<std::size_t>(std::count_if(
      replies.begin(), replies.end(), [](const ReplyComparison& r) { return !r.not_expected; }));
}

bool safe_to_continue(int original_code, int replay_code, std::string_view verb) {
  if (original_code / 100 == replay_code / 100) return true;
  // A 334 or 354 decides whether the next client bytes are a SASL response / a body or
  // commands: either way round, sending them on would make the server read them differently.
  if (original_code / 100 == 3 || replay_code / 100 == 3) return false;
  // The original went on authenticated; sending its mail unauthenticated is another session.
  if (verb == "AUTH" && original_code / 100 == 2) return false;
  // The server is closing.
  if (replay_code == 421) return false;
  return true;
}

ReplayDriver::ReplayDriver(const RecordedDialogue& recording, smtp::DialogueOptions options,
                           std::vector<smtp::RecordedEvent>& events,
                           std::vector<smtp::Message>& messages)
    : recording_(recording),
      events_(events),
      login_user_(options.login ? smtp::shown_login_user(options.login->user,
                                                         options.login->password.get(), false)
                                : std::string()),
      dialogue_(std::move(options), events, messages) {
  ReplyComparison greeting;
  if (recording_.greeting) {
    greeting.original_code = recording_.greeting->code;
    greeting.original_line = recording_.greeting->first_line();
    greeting.original_lines = lines_of(recording_.greeting->to_client());
  }
  report_.replies.push_back(std::move(greeting));
  row_flight_.push_back(0);
  const std::optional<MailtapLogin>& login = recording_.mailtap_login;
  if (login) {
    LoginComparison l;
    l.user = login_user_;
    l.original_ok = login->succeeded;
    l.original = (login->succeeded ? "authenticated (" : "failed (") + login->mechanism + ")";
    report_.login = std::move(l);
  }
  std::size_t flight_number = 0;
  for (const Flight& f : recording_.flights) {
    ++flight_number;
    std::vector<std::string> sent;
    for (std::size_t i : f.steps) sent.push_back(recording_.client[i].summary());
    std::size_t answered = 0;  // into f.steps: those before it have their reply
    for (std::size_t k = 0; k < f.reply_count; ++k) {
      const RecordedReply& r = recording_.replies[f.first_reply + k];
      ReplyComparison c;
      c.command = answered_command(f, r, answered);
      if (k == 0) c.sent = std::move(sent);
      c.original_code = r.client_code();  // compared with what this client reads
      // But a challenge mailtap decoded for its client (--assist-auth: "334 Username:") as the
      // server sent it: the replay's column is the server's challenge, compared with that one.
      const std::string& original = r.code == 334 && !r.client_view.empty() ? r.raw : r.to_client();
      c.original_line = first_line(original);
      c.original_lines = lines_of(original);
      if (login && f.first_reply + k == login->held_reply)
        report_.login->row = report_.replies.size();
      report_.replies.push_back(std::move(c));
      row_flight_.push_back(flight_number);
    }
    if (f.reply_count == 0 && !sent.empty()) {
      ReplyComparison c;  // client bytes no reply answered (e.g. the last before a close)
      c.sent = std::move(sent);
      report_.replies.push_back(std::move(c));
      row_flight_.push_back(flight_number);
    }
  }
  if (const std::optional<RecordedReply>& notice = recording_.older_close_notice) {
    ReplyComparison c;
    c.original_code = notice->code;
    c.original_line = notice->first_line();
    c.original_lines = lines_of(notice->to_client());
    c.not_expected = true;
    report_.replies.push_back(std::move(c));
    row_flight_.push_back(0);
  }
}

void ReplayDriver::start(const smtp::Reply& greeting, smtp::Phase phase) {
  dialogue_.relay_greeting(greeting, phase);
  pump();
}

void ReplayDriver::upstream_bytes(std::string_view bytes) {
  dialogue_.upstream_bytes(bytes);
  pump();
}

void ReplayDriver::upstream_closed() {
  // The original's server closed here too: every flight sent, every reply read but mailtap's
  // own 421 for the close, which the dialogue makes again and is compared like a reply.
  const bool same_ending = recording_.server_closed && !stopping_ && !sending_ &&
                           next_flight_ == recording_.flights.size() &&
                           received_ == recording_.replies.size();
  upstream_gone_ = !same_ending;
  sending_.reset();
  const bool replies_due = received_ < 1 + recording_.replies.size();
  if (!same_ending && !stopping_ && (next_flight_ < recording_.flights.size() || replies_due)) {
    stopping_ = true;
    report_.stopped = "the server closed the connection";
  }
  dialogue_.upstream_closed();
  collect_replies();
}

void ReplayDriver::abort(std::string_view reply_421_text, smtp::Ending ending) {
  upstream_gone_ = true;
  sending_.reset();
  if (!stopping_) {
    stopping_ = true;
    report_.stopped = ending.reason;
  }
  dialogue_.abort(reply_421_text, std::move(ending));
  collect_replies();
}

void ReplayDriver::collect_replies() {
  client_view_.feed(dialogue_.take_to_client());
  while (auto reply = client_view_.next()) {
    if (upstream_gone_) continue;  // mailtap's own 421: the stop reason says why
    // Index in report_.replies of the reply expected next; entries without an original code
    // stand for client bytes that were never answered and take no reply.
    std::size_t seen = 0, index = report_.replies.size();
    for (std::size_t i = 0; i < report_.replies.size(); ++i) {
      if (!report_.replies[i].original_code || report_.replies[i].not_expected) continue;
      if (seen++ == received_) {
        index = i;
        break;
      }
    }
    ++received_;
    if (index == report_.replies.size()) {
      ReplyComparison extra;  // more replies than the original client read
      report_.replies.push_back(std::move(extra));
    }
    ReplyComparison& c = report_.replies[index];
    c.replay_code = reply->code;
    c.replay_line = first_line(reply->raw);
    c.replay_lines = lines_of(reply->raw);
    if (!stopping_ && c.original_code) stop_if_meaning_changes(index, c.replay_line);
  }
}

// Stops the replay before the next client bytes go out when the reply just read (row `index`)
// makes them mean something else than they meant to the original server.
void ReplayDriver::stop_if_meaning_changes(std::size_t index, const std::string& replay_line) {
  const ReplyComparison& c = report_.replies[index];
  const std::size_t reply_index = received_ - 2;  // into recording_.replies (greeting first)
  const RecordedReply* recorded = received_ >= 2 && reply_index < recording_.replies.size()
                                      ? &recording_.replies[reply_index]
                                      : nullptr;
  const bool greeting_differs = received_ == 1 && !c.matches();
  const std::string verb = recorded ? recorded->verb : std::string();
  if (greeting_differs || !safe_to_continue(*c.original_code, *c.replay_code, verb)) {
    stopping_ = true;
    report_.stopped = "reply " + std::to_string(index + 1) + " (" + std::to_string(*c.replay_code) +
                      " instead of " + std::to_string(*c.original_code) +
                      ") changes the meaning of what the client sent next; replay stopped";
    // A 421 ended the session: its reason is the server's line and what mailtap knows of it
    // (a client certificate the server asked for, Dialogue::closing_reason), which the
    // comparison's first line cuts short.
    if (const auto& ending = dialogue_.ending();
        ending && ending->kind == smtp::Ending::Kind::upstream_closed)
      report_.stopped += " (" + ending->reason + ")";
    return;
  }
  if (!recorded || verb != "AUTH" || recorded->code != 334 || *c.replay_code != 334) return;
  // The recorded answer to this challenge may be a filled-in secret: sent to a prompt that asks
  // for something else, the server would take it (and the replay's record keep it) as that.
  // Stopping makes the dialogue cancel the exchange with "*" (RFC 4954) before its QUIT.
  const std::string mismatch = challenge_mismatch(auth_mechanism_at(recording_, recorded->seq),
                                                  recorded->first_line(), replay_line);
  if (mismatch.empty()) return;
  stopping_ = true;
  report_.stopped = "reply " + std::to_string(index + 1) + ": " + mismatch +
                    "; the AUTH exchange was cancelled (*) and nothing more was sent; replay "
                    "stopped";
}

// Once the replay's own AUTH has ended: the original went on authenticated, so the replay
// must not go on without.
void ReplayDriver::compare_login() {
  if (!report_.login || !report_.login->replay.empty()) return;
  LoginComparison& l = *report_.login;
  if (dialogue_.authenticated_by_mailtap()) {
    l.replay_ok = true;
    l.replay = "authenticated (" + dialogue_.auth_mechanism() + ")";
  } else if (!dialogue_.login_failure().empty()) {
    l.replay = "failed: " + dialogue_.login_failure();
  } else {
    return;
  }
  if (l.original_ok && !l.replay_ok && !stopping_) {
    stopping_ = true;
    report_.stopped =
        "mailtap's own AUTH failed where it had succeeded (the mail would go "
        "unauthenticated); replay stopped";
  }
}

void ReplayDriver::send_flight(std::size_t index) {
  sending_ = FlightCursor{};
  send_piece();
}

void ReplayDriver::send_more() {
  if (!sending_) return;
  send_piece();
  pump();
}

// The next piece of flight next_flight_ - 1. A body the record cannot supply any more (its
// file removed or cut short since it was loaded) stops the replay: the dialogue then abandons
// the open message rather than end it, so the server never takes a part for the whole.
void ReplayDriver::send_piece() {
  const Flight& f = recording_.flights[next_flight_ - 1];
  smtp::Secret piece;
  std::string error;
  if (!recording_.next_flight_piece(f, *sending_, piece, error)) {
    sending_.reset();
    stopping_ = true;
    report_.stopped = "cannot read the recorded client bytes: " + error + "; replay stopped";
    return;
  }
  if (sending_->done(f)) sending_.reset();
  dialogue_.client_bytes(piece.view());
}

// mailtap answered the client's STARTTLS itself (--local-tls starttls); the replay is the
// client, so there is no handshake to make: the dialogue goes on as after one. The Dialogue
// notes that one ("client side: TLS established (...)"), which did not happen here, so the
// replay's record gets a note of its own that says what did.
void ReplayDriver::go_on_as_after_client_tls() {
  const std::size_t note = events_.size();
  dialogue_.client_tls_started("mailtap replay plays the client");
  if (note >= events_.size() || events_[note]->kind != smtp::EventKind::tls) return;
  smtp::Event e = events_[note].event();
  e.note =
      "client side: no TLS handshake (mailtap replay plays the client and goes on as after "
      "one); the client must send EHLO again";
  events_[note] = smtp::mailtap_event(std::move(e));
}

void ReplayDriver::pump() {
  for (;;) {
    collect_replies();
    compare_login();
    if (dialogue_.finished() || sending_) return;  // the rest of a flight: send_more()
    if (dialogue_.client_tls_due()) {
      go_on_as_after_client_tls();
      continue;
    }
    if (stopping_) {
      // Give the server a polite end (QUIT, unless a message body is open).
      close_client();
      return;
    }
    if (next_flight_ < recording_.flights.size()) {
      const Flight& f = recording_.flights[next_flight_];
      if (received_ < 1 + f.first_reply) return;  // the original waited for these replies
      send_flight(next_flight_++);
      continue;  // sent whole, or its first piece (the owner takes it, then send_more())
    }
    // Every flight sent: wait for the last replies, then end as the original did.
    const std::size_t expected = 1 + recording_.replies.size();
    if (received_ < expected && dialogue_.awaiting_reply()) return;
    close_client();
    return;
  }
}

// Inside a body the dialogue answers the close with its own 421 (the message was not sent).
// A recording that has it (the original's mailtap said it too) compares it like any reply of
// mailtap's; one made before mailtap said it has nothing there, nor has a replay that stops
// early: then it is mailtap's alone, not compared.
void ReplayDriver::close_client() {
  const bool in_body = dialogue_.in_data();
  dialogue_.client_closed();
  if (in_body && (stopping_ || received_ >= 1 + recording_.replies.size())) {
    (void)dialogue_.take_to_client();
    return;
  }
  collect_replies();
}

ReplayReport ReplayDriver::report() const {
  ReplayReport r = report_;
  // A reply that did not come to bytes that were sent is not one "not replayed".
  for (std::size_t i = 0; i < r.replies.size() && i < row_flight_.size(); ++i) {
    ReplyComparison& c = r.replies[i];
    if (!c.replay_code && c.original_code && row_flight_[i] != 0 && row_flight_[i] <= next_flight_)
      c.replay_line = "(sent; no reply)";
  }
  if (r.stopped.empty() && !dialogue_.finished()) r.stopped = "the replay did not finish";
  return r;
}

}  // namespace mailtap::tools
