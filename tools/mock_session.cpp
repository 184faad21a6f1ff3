#include "tools/mock_session.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "proxy/common/text.hpp"
#include "proxy/smtp/command.hpp"
#include "tools/recorded_dialogue.hpp"
#include "tools/terminal_text.hpp"

namespace mailtap::tools {

namespace {

// What the mock tells a client whose STARTTLS it refuses (its 502 where the recorded client
// got mailtap's, its 421 where the recording has another command): the mock speaks plain text
// only (docs/tools/mock.md), so the way on is to point the client at it without STARTTLS.
constexpr std::string_view kPlainTextOnly =
    "mailtap mock answers in plain text only: point the client at it without STARTTLS";

bool is_body(smtp::EventKind k) {
  return k == smtp::EventKind::data || k == smtp::EventKind::bdat_chunk;
}

// The last body event of a DATA transaction carries the terminator (BDAT chunks are answered
// per BDAT command instead).
bool ends_body(std::string_view bytes) {
  return bytes == ".\r\n" || (bytes.size() >= 5 && bytes.substr(bytes.size() - 5) == "\r\n.\r\n");
}

bool is_auth_line(std::string_view bytes) {
  return bytes.size() >= 4 && smtp::iequals(bytes.substr(0, 4), "AUTH") &&
         (bytes.size() == 4 || bytes[4] == ' ' || bytes[4] == '\r' || bytes[4] == '\n');
}

bool is_sasl_response(const ClientStep& s) {
  return s.kind == smtp::EventKind::auth && !is_auth_line(s.bytes);
}

bool is_cancel(std::string_view bytes) {
  return strip_crlf(bytes) == "*";
}

// "AUTH PLAIN <initial response>" (RFC 4954 §4; "=" is an empty one), as recorded or as the
// dialogue renders it: something after the mechanism.
bool has_initial_response(std::string_view bytes) {
  const std::string_view line = strip_crlf(bytes);
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  return sp2 != std::string_view::npos &&
         line.find_first_not_of(' ', sp2) != std::string_view::npos;
}

// The recorded answer to an AUTH with an initial response is one a server gives once it has
// the credentials (a next challenge, success, their refusal): to the same AUTH without one it
// would first have sent its challenge. Other refusals (504 unknown mechanism, 503, 530, 538)
// answer the command itself and stand as recorded.
bool answers_credentials(int code) {
  return code == 334 || code == 235 || code == 535 || code == 454;
}

// "AUTH PLAIN ..." -> "AUTH PLAIN": never more, the rest may be a credential.
std::string auth_head(std::string_view bytes) {
  std::string_view line = strip_crlf(bytes);
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::string(line);
  std::size_t sp2 = line.find(' ', sp1 + 1);
  std::string out(line.substr(0, sp2));
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The command as the divergence message quotes it. The message is printed on the operator's
// terminal and sent in the 421, so the client's bytes are escaped as show prints them: a
// client cannot drive the terminal (escape sequences) or add lines to the reply.
std::string describe(const smtp::Event& e) {
  if (e.kind == smtp::EventKind::auth)
    return escape_line(is_auth_line(e.bytes) ? auth_head(e.bytes) : "a SASL response");
  if (e.kind == smtp::EventKind::error) return "a refused line";
  return escape_line(strip_crlf(e.bytes));
}

std::string describe(const ClientStep& s) {
  if (s.kind == smtp::EventKind::auth)
    return escape_line(is_auth_line(s.bytes) ? auth_head(s.bytes) : "a SASL response");
  return escape_line(s.summary());
}

// ASCII letters only: an SMTPUTF8 path's other letters are compared as sent (folding them needs
// Unicode case tables the project does not carry).
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The text Dialogue::abort made the 421 `reply` of: reply_lines splits a long one at spaces
// into "421-" lines, each repeating the enhanced status code.
std::string abort_text(std::string_view reply) {
  std::string text, status;
  while (!reply.empty()) {
    const std::size_t nl = reply.find('\n');
    std::string_view line = strip_crlf(reply.substr(0, nl));
    reply = nl == std::string_view::npos ? std::string_view() : reply.substr(nl + 1);
    if (line.size() < 4) continue;
    line.remove_prefix(4);  // "421 ", "421-"
    if (text.empty()) {
      text = std::string(line);
      status = std::string(line.substr(0, line.find(' ')));
      continue;
    }
    if (line.starts_with(status + " ")) line.remove_prefix(status.size() + 1);
    text += ' ';
    text += line;
  }
  return text;
}

}  // namespace

std::string mail_path(std::string_view line) {
  line = strip_crlf(line);
  std::size_t colon = line.find(':');
  std::string_view rest =
      colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (!rest.empty() && rest.front() == '<') {
    std::size_t end = rest.find('>');
    return std::string(rest.substr(0, end == std::string_view::npos ? end : end + 1));
  }
  return std::string(rest.substr(0, rest.find(' ')));
}

std::string unservable_reason(const RecordedDialogue& recording, bool unfinished_allowed) {
  if (recording.client_starttls)
    return "its client's STARTTLS was answered by mailtap (proxy --local-tls starttls), and the "
           "mock speaks only plain text (mailtap replay can play it)";
  if (recording.client_implicit_tls)
    return "its client spoke TLS from the first byte (proxy --local-tls implicit), and the mock "
           "speaks only plain text (mailtap replay can play it)";
  if (!unfinished_allowed && !recording.unfinished.empty())
    return "it " + unfinished_reason(recording) +
           "; record it again, or give --unfinished to serve the part recorded";
  // Only a challenge: a reply with a credential-shaped word kept out is served as recorded
  // (its stand-in in the word's place), its code and the rest of its text as the client read.
  for (const RecordedReply& r : recording.replies)
    if (r.redacted && r.challenge)
      return "a SASL challenge was redacted (event " + std::to_string(r.seq) +
             "), so the mock cannot send it";
  return "";
}

std::string kept_out_word_note(const RecordedDialogue& recording) {
  for (const RecordedReply& r : recording.replies) {
    if (!r.redacted || r.challenge) continue;
    return "the record kept a word shaped like an AUTH credential out of reply event " +
           std::to_string(r.seq) +
           " (an echo, or a server's word with that shape by chance, a queue id): the mock sends "
           "the reply as recorded, [<redacted N bytes>] in the word's place";
  }
  return "";
}

std::optional<std::string> step_difference(const ClientStep& expected, const smtp::Event& got) {
  const std::string sent = "the client sent `" + describe(got) + "` where the recording has `" +
                           describe(expected) + "`";
  if (got.verb == "STARTTLS" && expected.verb != "STARTTLS")
    return sent + "; " + std::string(kPlainTextOnly);
  const bool expected_auth = expected.kind == smtp::EventKind::auth;
  const bool got_auth = got.kind == smtp::EventKind::auth;
  if (expected_auth || got_auth) {
    if (expected_auth != got_auth) return sent;
    const bool e_line = is_auth_line(expected.bytes), g_line = is_auth_line(got.bytes);
    if (e_line != g_line) return sent;
    if (e_line) {
      if (auth_head(expected.bytes) != auth_head(got.bytes)) return sent;
      return std::nullopt;
    }
    const bool e_cancel = strip_crlf(expected.bytes) == "*",
               g_cancel = strip_crlf(got.bytes) == "*";
    if (e_cancel != g_cancel)
      return std::string(g_cancel ? "the client cancelled the AUTH exchange (*) where the "
                                    "recording answered the challenge"
                                  : "the client answered the challenge where the recording "
                                    "cancelled the AUTH exchange (*)");
    return std::nullopt;
  }
  if ((expected.kind == smtp::EventKind::error) != (got.kind == smtp::EventKind::error))
    return sent;
  if (expected.verb != got.verb) return sent;
  if (expected.verb == "MAIL" || expected.verb == "RCPT") {
    if (lower(mail_path(expected.bytes)) != lower(mail_path(got.bytes))) return sent;
  }
  return std::nullopt;
}

MockSession::MockSession(const RecordedDialogue& recording)
    : recording_(recording),
      dialogue_(
          [] {
            smtp::DialogueOptions o;
            o.phase = smtp::Phase::plain;
            o.upstream_label = "the recorded server";
            o.starttls_refusal = "STARTTLS is not available: " + std::string(kPlainTextOnly);
            o.tls_on_plain_port_advice =
                "connect without TLS (mailtap mock answers in plain text only)";
            // Body octets come in the body events, in order with the commands around them
            // (one event per read, dropped once counted). Cut off by a --max-body they would
            // come apart from those events (take_unrecorded_bodies), and a pipelined write
            // holding the end of one body and the DATA of the next would count the first
            // body's last octets into the second.
            o.max_body_capture = std::numeric_limits<std::size_t>::max();
            return o;
          }(),
          events_, messages_) {}

void MockSession::skip_local_replies() {
  while (next_reply_ < recording_.replies.size() && recording_.replies[next_reply_].local &&
         !local_served_.contains(next_reply_))
    ++next_reply_;
}

bool MockSession::refused_chunk_reply_next() const {
  if (!recording_.refused_chunk_reply || refused_chunk_reply_given_) return false;
  std::size_t i = next_reply_;
  while (i < recording_.replies.size() && recording_.replies[i].local && !local_served_.contains(i))
    ++i;
  return i >= recording_.refused_chunk_reply_before;
}

void MockSession::feed_refused_chunk_reply() {
  refused_chunk_reply_given_ = true;
  next_reply_ = std::max(next_reply_, recording_.refused_chunk_reply_before);
  dialogue_.upstream_bytes(recording_.refused_chunk_reply->raw);
}

bool MockSession::feed_recorded_reply() {
  if (refused_chunk_reply_next()) {
    feed_refused_chunk_reply();  // the chunk is in: it answers the BDAT
    return true;
  }
  skip_local_replies();
  if (next_reply_ >= recording_.replies.size()) return false;
  const RecordedReply& r = recording_.replies[next_reply_];
  if (sasl_form_ != SaslForm::as_recorded && r.verb == "AUTH") {
    // The reply to the client's AUTH line: replies before it answer earlier commands.
    const SaslForm form = std::exchange(sasl_form_, SaslForm::as_recorded);
    if (form == SaslForm::skip_first_challenge && r.code == 334) {
      ++next_reply_;
      skip_local_replies();
      if (next_reply_ >= recording_.replies.size()) return false;
    } else if (form == SaslForm::send_first_challenge && answers_credentials(r.code)) {
      initial_response_due_ = true;
      dialogue_.upstream_bytes(first_challenge_);
      return true;
    }
  }
  // What the client read: the EHLO reply without STARTTLS, and without AUTH when mailtap
  // authenticated itself (proxy --auth-user, --oauth2-token-cmd).
  dialogue_.upstream_bytes(recording_.replies[next_reply_++].to_client());
  return true;
}

bool MockSession::serve_unsolicited_reply() {
  if (refused_chunk_reply_next()) {
    if (!(dialogue_.awaiting_chunk() || dialogue_.in_data()) ||
        !unsolicited_reply_due(*recording_.refused_chunk_reply))
      return false;
    feed_refused_chunk_reply();
    return true;
  }
  // Only looks past mailtap's own replies: one may yet be served, once its line has come.
  std::size_t i = next_reply_;
  while (i < recording_.replies.size() && recording_.replies[i].local) ++i;
  if (i >= recording_.replies.size()) return false;
  const RecordedReply& r = recording_.replies[i];
  if (!r.unsolicited || !unsolicited_reply_due(r)) return false;
  next_reply_ = i + 1;
  dialogue_.upstream_bytes(r.to_client());
  return true;
}

bool MockSession::recorded_ending_to_come() const {
  if (recording_.server_closed) return true;  // served only as the session's end
  // A 421 the server sent ends the dialogue once given to it (dialogue.md "When the upstream
  // ends the session").
  return !recording_.replies.empty() && next_reply_ < recording_.replies.size() &&
         !recording_.replies.back().local && recording_.replies.back().code == 421;
}

bool MockSession::server_close_due() const {
  if (!recording_.server_closed) return false;
  const std::size_t close = recording_.replies.size() - 1;
  std::size_t i = next_reply_;
  while (i < close && recording_.replies[i].local && !local_served_.contains(i)) ++i;
  return i >= close && next_expected() >= recording_.replies[close].client_steps_before;
}

void MockSession::close_as_recorded() {
  next_reply_ = recording_.replies.size();
  dialogue_.abort(
      abort_text(recording_.replies.back().to_client()),
      {smtp::Ending::Kind::upstream_closed, "the recorded server closed the connection"});
}

bool MockSession::unsolicited_reply_due(const RecordedReply& r) const {
  // The body pieces the original client sent, after its DATA (or BDAT), before the reply.
  std::size_t body_start = r.client_steps_before;
  std::size_t recorded_body = 0;
  while (body_start > 0 && is_body(recording_.client[body_start - 1].kind))
    recorded_body += recording_.client[--body_start].body_octets();
  if (recorded_body == 0) return next_expected() >= r.client_steps_before;
  // next_expected() skips body steps, so it is past them as soon as DATA matches: the reply
  // waits until this client has sent as much of that body (its own body differs, so its
  // octets are counted, not compared), and never comes before some of it.
  return next_step_ > body_start || (next_step_ == body_start && body_octets_ >= recorded_body);
}

std::optional<std::string> MockSession::recorded_first_challenge(const std::string& head) const {
  const std::vector<ClientStep>& steps = recording_.client;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const ClientStep& step = steps[i];
    if (step.kind != smtp::EventKind::auth ||
        step.direction != smtp::Direction::client_to_upstream || !is_auth_line(step.bytes) ||
        has_initial_response(step.bytes) || auth_head(step.bytes) != head)
      continue;
    const std::uint64_t next_seq =
        i + 1 < steps.size() ? steps[i + 1].seq : std::numeric_limits<std::uint64_t>::max();
    for (const RecordedReply& r : recording_.replies) {
      if (r.seq > step.seq && r.seq < next_seq && r.code == 334 && !r.local && !r.redacted)
        return r.to_client();
    }
  }
  return std::nullopt;
}

std::optional<std::string> MockSession::follow_sasl_form(std::size_t idx, const smtp::Event& got) {
  const ClientStep& recorded = recording_.client[idx];
  const bool recorded_ir = has_initial_response(recorded.bytes);
  if (recorded.direction != smtp::Direction::client_to_upstream ||
      recorded_ir == has_initial_response(got.bytes))
    return std::nullopt;
  if (recorded_ir) {
    const std::string head = auth_head(recorded.bytes);
    first_challenge_ = recorded_first_challenge(head).value_or(
        head == "AUTH LOGIN" ? "334 VXNlcm5hbWU6\r\n"  // Username:
                             : "334 \r\n");            // RFC 4954 §4: no data
    sasl_form_ = SaslForm::send_first_challenge;
    return std::nullopt;
  }
  const bool answered =
      idx + 1 < recording_.client.size() && is_sasl_response(recording_.client[idx + 1]);
  if (!answered) return std::nullopt;  // refused without a challenge: so is this AUTH
  if (is_cancel(recording_.client[idx + 1].bytes))
    return "the client sent `" + describe(got) +
           "` with an initial response where the recording has none and cancelled the exchange "
           "(*) at its first challenge";
  sasl_form_ = SaslForm::skip_first_challenge;
  next_step_ = idx + 2;  // the initial response plays the recorded first response
  return std::nullopt;
}

bool MockSession::take_initial_response(const smtp::Event& got) {
  initial_response_due_ = false;
  if (is_cancel(got.bytes)) {
    diverge("command " + std::to_string(matched_ + 1) +
            ": the client cancelled the AUTH exchange (*) at the first challenge where the "
            "recording sent its credentials with the AUTH command (an initial response)");
    return false;
  }
  ++unanswered_;
  return true;
}

void MockSession::start() {
  smtp::ReplyParser parser;
  parser.feed(recording_.greeting ? recording_.greeting->raw : std::string("220 mailtap mock\r\n"));
  std::optional<smtp::Reply> greeting = parser.next();
  if (!greeting) {
    smtp::ReplyParser fallback;
    fallback.feed("220 mailtap mock\r\n");
    greeting = fallback.next();
  }
  dialogue_.relay_greeting(*greeting, smtp::Phase::plain);
  pump();  // a server may close with a 421 before any command
}

std::size_t MockSession::next_expected() const {
  std::size_t i = next_step_;
  while (i < recording_.client.size() && is_body(recording_.client[i].kind)) ++i;
  return i;
}

void MockSession::diverge(std::string what, bool answered_by_mailtap) {
  divergence_ = std::move(what);
  ended_ = true;
  // Pipelined commands before the difference still get their recorded replies, in order.
  while (unanswered_ > 0 && !dialogue_.finished()) {
    if (!feed_recorded_reply()) break;
    --unanswered_;
  }
  if (answered_by_mailtap) {
    // That answer came last, after the replies to the commands before it; it is taken back,
    // and only it (with mailtap's answers to lines after it): when a recorded reply is
    // missing, it was never sent, and what ends to_client_ is a recorded reply.
    to_client_ += dialogue_.take_to_client();
    const std::string own = own_answers_from(events_checked_);
    if (!own.empty() && to_client_.ends_with(own))
      to_client_.resize(to_client_.size() - own.size());
  }
  dialogue_.abort("4.3.0 mailtap mock: " + *divergence_ + "; closing",
                  {smtp::Ending::Kind::error, "client diverged from the recording"});
}

std::string MockSession::own_answers_from(std::size_t differing) const {
  // own_answers_owed_ counts the differing line too: the answers owed before it come first.
  std::size_t owed_before = own_answers_owed_ > 0 ? own_answers_owed_ - 1 : 0;
  std::string own;
  for (std::size_t i = differing + 1; i < events_.size(); ++i) {
    const smtp::Event& e = *events_[i];
    if (e.direction != smtp::Direction::mailtap_to_client || e.kind != smtp::EventKind::local_reply)
      continue;
    if (owed_before > 0)
      --owed_before;  // the answer to a line before the difference
    else
      own += e.bytes;
  }
  return own;
}

bool MockSession::check_new_events() {
  for (; events_checked_ < events_.size(); ++events_checked_) {
    const smtp::Event& e = *events_[events_checked_];
    if (smtp::is_unsent_note(e)) continue;  // no line of the client's: nothing answers it
    if (e.direction == smtp::Direction::client_to_mailtap) ++own_answers_owed_;
    if (e.direction == smtp::Direction::mailtap_to_client &&
        e.kind == smtp::EventKind::local_reply && own_answers_owed_ > 0)
      --own_answers_owed_;
    if (e.direction == smtp::Direction::client_to_upstream && e.kind == smtp::EventKind::data &&
        ends_body(e.bytes))
      ++unanswered_;
    if (e.direction == smtp::Direction::client_to_upstream && is_body(e.kind))
      body_octets_ += e.bytes.size();
    if (!smtp::from_client(e.direction) || is_body(e.kind)) continue;
    if (e.kind == smtp::EventKind::command && (e.verb == "DATA" || e.verb == "BDAT"))
      body_octets_ = 0;  // a new body (or BDAT chunk) starts
    if (!check_client_line(e)) return false;
  }
  // Nothing is hashed or kept here: the body events are dropped once counted, and what the
  // dialogue relays "upstream" too (the mock plays the server: there is nowhere to send it, and
  // it would pile up into a copy of every body the client sends).
  events_.clear();
  messages_.clear();
  dialogue_.take_to_upstream();
  events_checked_ = 0;
  return true;
}

bool MockSession::check_client_line(const smtp::Event& e) {
  if (std::exchange(initial_response_due_, false) && e.kind == smtp::EventKind::auth &&
      !is_auth_line(e.bytes))
    return take_initial_response(e);
  const std::size_t idx = next_expected();
  if (idx == recording_.client.size()) {
    // The proxy read nothing after the recorded end (dialogue.md "After the last reply"); this
    // line is read only because the mock answers sooner than the original server did.
    if (recorded_ending_to_come()) return true;
    // A recording that ended with a close still lets the client say goodbye.
    if (!recording_.client_quit && e.kind == smtp::EventKind::command && e.verb == "QUIT") {
      goodbye_quit_ = true;
      return true;
    }
    diverge("the client sent `" + describe(e) + "` after the end of the recorded dialogue (" +
            std::to_string(matched_) + " commands)");
    return false;
  }
  if (auto diff = step_difference(recording_.client[idx], e)) {
    if (dialogue_.finished()) {
      // The dialogue refused the line and ended the session itself (a TLS handshake on this
      // plain-text port): its 421 is the one reply the client gets, its reason the difference.
      ended_ = true;
      divergence_ = "command " + std::to_string(matched_ + 1) + ": " + dialogue_.ending()->reason +
                    "; the recording has `" + describe(recording_.client[idx]) + "`";
      return false;
    }
    diverge("command " + std::to_string(matched_ + 1) + ": " + *diff,
            e.direction == smtp::Direction::client_to_mailtap);
    return false;
  }
  next_step_ = idx + 1;
  const ClientStep& expected = recording_.client[idx];
  if (expected.direction == smtp::Direction::client_to_mailtap &&
      e.direction == smtp::Direction::client_to_upstream && expected.local_answer)
    local_served_.insert(*expected.local_answer);
  if (e.kind == smtp::EventKind::auth && is_auth_line(e.bytes)) {
    if (auto diff = follow_sasl_form(idx, e)) {
      diverge("command " + std::to_string(matched_ + 1) + ": " + *diff);
      return false;
    }
  }
  ++matched_;
  if (e.direction == smtp::Direction::client_to_upstream) ++unanswered_;
  return true;
}

std::string MockSession::no_end_of_data_reason() const {
  if (recording_.unfinished == "cut")
    return "the recording stops there: the proxy recording it stopped without ending the "
           "session (cut); the original client did not end it";
  if (!recording_.unfinished.empty())
    return "the recording stops there: the session was still being recorded (in_progress)";
  return "the original client closed the connection before its end of data";
}

void MockSession::pump() {
  for (;;) {
    if (!check_new_events()) return;
    if (dialogue_.finished()) break;
    if (server_close_due()) {
      close_as_recorded();
      continue;
    }
    // The reply to a BDAT waits for its chunk: the dialogue refuses one that comes sooner.
    if (!dialogue_.awaiting_reply() || dialogue_.awaiting_chunk()) {
      if (serve_unsolicited_reply()) continue;
      break;
    }
    if (unanswered_ > 0) --unanswered_;
    if (feed_recorded_reply()) {
      continue;
    } else if (goodbye_quit_) {
      dialogue_.upstream_bytes("221 2.0.0 mailtap mock: end of the recorded dialogue\r\n");
    } else {
      // Not a command (that would have diverged above): the end of a message the recording
      // has no end of data for, so no reply to give. Why, the record tells: a session without
      // an end stops where its recording stopped (the proxy was killed, or is still at it),
      // not where its client did; a session that ended did so before the end of data.
      diverge("the client ended its message where the recording has no reply (" +
              no_end_of_data_reason() + ")");
      return;
    }
  }
  if (dialogue_.finished() && !ended_) {
    ended_ = true;
    completed_ = !divergence_ && next_expected() == recording_.client.size();
    if (!completed_ && !divergence_)
      divergence_ = "the session ended after " + std::to_string(matched_) +
                    " commands; the recording continues with `" +
                    describe(recording_.client[next_expected()]) + "`";
  }
}

void MockSession::client_bytes(std::string_view bytes) {
  if (finished()) return;
  dialogue_.client_bytes(bytes);
  pump();
}

void MockSession::resume_client_input() {
  dialogue_.resume_client_input();
  pump();
}

std::string MockSession::recording_continues(bool in_body) const {
  const std::size_t idx = next_expected();
  std::string then;
  if (idx < recording_.client.size())
    then = "`" + describe(recording_.client[idx]) + "`";
  else if (recording_.client_quit)
    then = "`QUIT`";
  if (in_body) {
    // next_expected() skips body steps: the recorded rest of this body comes first.
    const bool chunk = next_step_ > 0 && recording_.client[next_step_ - 1].verb == "BDAT";
    std::string rest =
        chunk ? "the rest of the BDAT chunk" : "the rest of the message body and its end of data";
    return "the recording continues with " + rest +
           (then.empty() ? ", then the client closing the connection" : ", then " + then);
  }
  return then.empty() ? "the recording ends with the client closing the connection"
                      : "the recording continues with " + then;
}

void MockSession::client_closed() {
  if (finished()) return;
  const bool in_body = dialogue_.in_data();
  dialogue_.client_closed();
  if (!check_new_events()) return;
  ended_ = true;
  if (next_expected() == recording_.client.size() && !recording_.client_quit) {
    completed_ = true;
    return;
  }
  divergence_ = "the client closed the connection " +
                std::string(in_body ? "inside the message body (before its end of data) " : "") +
                "after " + std::to_string(matched_) + " commands; " + recording_continues(in_body);
}

void MockSession::client_timed_out(const std::string& how_long, bool line_begun) {
  if (finished()) return;
  ended_ = true;
  const bool in_body = dialogue_.in_data();
  const std::string line = dialogue_.awaiting_chunk() ? "BDAT chunk"
                           : in_body                  ? "message line"
                                                      : "command line";
  const std::string what =
      line_begun ? "the client's " + line + " was not complete within " + how_long +
                       " (--timeout restarts with complete lines, not bytes: give more if the "
                       "client is only slow)"
                 : "the client sent nothing for " + how_long + " (--timeout)";
  divergence_ = what + " after " + std::to_string(matched_) +
                " commands, and the mock closed the connection with a 421; " +
                recording_continues(in_body);
  // As the proxy tells a client it gives up on, in the proxy's words.
  dialogue_.time_out_client(how_long, line_begun,
                            "give a slow client a longer mailtap mock --timeout");
}

void MockSession::mock_stopped(const std::string& signal) {
  if (finished()) return;
  ended_ = true;
  stopped_by_mock_ = true;
  divergence_ = "the mock was stopped (" + signal + ") after " + std::to_string(matched_) +
                " commands; " + recording_continues(dialogue_.in_data());
  dialogue_.abort("4.3.2 mailtap mock: stopped (" + signal +
                      ") before this client completed the recorded dialogue; closing",
                  {smtp::Ending::Kind::shutdown, "mock stopped"});
}

void MockSession::client_not_reading(const std::string& how_long) {
  const std::string what = "did not read what the mock sent within " + how_long +
                           " (--timeout), and the mock dropped the connection";
  if (!finished()) {
    ended_ = true;
    divergence_ = "the client " + what + " after " + std::to_string(matched_) + " commands; " +
                  recording_continues(dialogue_.in_data());
    dialogue_.end({smtp::Ending::Kind::timeout, "client not reading"});
  } else if (completed_) {
    // Its commands all came (pipelined), but the replies to them did not all reach it.
    completed_ = false;
    divergence_ = "the client sent the " + std::to_string(matched_) +
                  " commands of the recorded dialogue but " + what;
  } else {
    // The 421 naming the difference went unread too.
    divergence_ = divergence_.value_or("the session ended") + "; the client " + what;
  }
}

}  // namespace mailtap::tools
