#include "proxy/smtp/dialogue.hpp"

#include "proxy/smtp/dialogue_internal.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <utility>

#include "proxy/smtp/auth_explanation.hpp"
#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/credential_shape.hpp"
#include "proxy/smtp/pre_tls_greeting.hpp"
#include "proxy/smtp/reply_lines.hpp"

namespace mailtap::smtp {

namespace {
// Why no BDAT is framed until an RSET (bdat_chunk_refused_), as the 421 that ends the session
// at the next BDAT says it.
constexpr std::string_view kServerRefusedChunk =
    "the server refused an earlier chunk of this message, and servers differ on whether they "
    "then read the next chunk or take it as commands";
constexpr std::string_view kServerRefusedNoop =
    "the server refused an earlier NOOP between the chunks of this message, and servers differ "
    "on whether they then read the next chunk or take it as commands";
constexpr std::string_view kMailtapRefusedChunk =
    "mailtap refused an earlier chunk of this message, past the server's SIZE, so the server "
    "holds the message without it";
constexpr std::string_view kMailtapRefusedChunkUnreadableSize =
    "mailtap refused an earlier chunk of this message, under a SIZE it cannot read, so the "
    "server holds the message without it";

// The advice of a refusal between chunks once a chunk of the message was refused, by the server
// or by mailtap: a BDAT, even with LAST, would end the session (bdat_chunk_refused_).
constexpr std::string_view kOnlyRsetAfterRefusedChunk =
    "a chunk of this message was refused, so drop it with RSET (a BDAT now would end the "
    "session)";

// Whether a reply's text says "certificate", in any case: a 421 that names it is about one.
bool mentions_certificate(const Reply& reply) {
  std::string text = reply.raw;
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text.find("certificate") != std::string::npos;
}

// Verbs after which a strict server's reading of the next bytes depends on its reply: the
// client (RFC 2920 §3.1) must wait for it anyway, so mailtap waits too before reading on.
constexpr bool is_sync_verb(Verb verb) {
  switch (verb) {
    case Verb::ehlo:
    case Verb::helo:
    case Verb::data:
    case Verb::auth:
    case Verb::quit:
      return true;
    default:
      return false;
  }
}

// A NOOP line with a parameter (its line ending included or not) in the one spelling Postfix
// and Exim 4.96 both read as a NOOP between BDAT chunks: "NOOP" (any case) from the line's first
// octet, then words of printable ASCII, each after one SP, nothing after the last. Exim matches
// the verb only before SP: "NOOP<TAB>x" is a bad command to it (and the next chunk commands).
bool is_plain_noop_with_parameter(std::string_view line) {
  if (line.ends_with("\r\n"))
    line.remove_suffix(2);
  else if (line.ends_with('\n'))
    line.remove_suffix(1);
  constexpr std::string_view verb = "NOOP";
  if (line.size() <= verb.size() + 1 || !iequals(line.substr(0, verb.size()), verb)) return false;
  char before = '\0';
  for (const char c : line.substr(verb.size())) {
    const bool printable = c > ' ' && c < '\x7f';
    if (!printable && (c != ' ' || before == ' ')) return false;
    before = c;
  }
  return before != ' ';
}

// RFC 2920 §3.1: only MAIL, RCPT and RSET (and BDAT, its chunk counted) may have more commands
// pipelined behind them; NOOP, VRFY, EXPN, as the sync verbs, end a group. Nothing of mailtap's
// own (its QUIT) goes behind one before its reply: Postfix (smtpd_forbid_unauth_pipelining, on
// by default from 3.9) answers such pipelining with 554 to the client's command and a dropped
// session. Unknown verbs end a group: waiting costs one round trip, guessing wrong a reply.
constexpr bool ends_group(Verb verb) {
  switch (verb) {
    case Verb::mail:
    case Verb::rcpt:
    case Verb::rset:
    case Verb::bdat:
      return false;
    default:
      return true;
  }
}

// Every verb mailtap waits behind ends a group: one table may not say otherwise of the other.
static_assert([] {
  for (int v = 0; v <= static_cast<int>(Verb::starttls); ++v)
    if (is_sync_verb(static_cast<Verb>(v)) && !ends_group(static_cast<Verb>(v))) return false;
  return true;
}());

// Why `code` cannot be the reply to the command it is matched with (`answered`, or the end of
// data), or empty if it can. mailtap matches replies to commands by order alone (PIPELINING):
// a reply no server may give there means the two no longer agree on which reply answers which
// command (a second greeting read as EHLO's reply shifts every later one), and from then on
// mailtap's reading of the dialogue is not the server's. Refused (RFC 5321 §4.2.1, §4.3.2):
//
//   answered                               refused                  because
//   EHLO, HELO                             1yz, 2yz but 250, 3yz    §4.3.2 "S: 250" (a 220 is a
//                                                                   greeting, not an answer)
//   DATA                                   1yz, 2yz, 3yz but 354    §4.3.2 "I: 354 -> data": 250
//                                                                   answers the end of data
//   end of data, BDAT                      1yz, 3yz                 §4.3.2 "S: 250", else an
//                                                                   error; RFC 3030 §2 the same
//   MAIL RCPT RSET NOOP QUIT VRFY EXPN HELP 1yz, 3yz                §4.3.2 lists no 3yz for any
//   AUTH, a SASL response                  1yz, 3yz but 334         RFC 4954 §4: 334 is the only
//                                                                   continuation
//
// 1yz answers nothing: "SMTP does not have any commands that allow this type of reply"
// (§4.2.1). Never refused: 4yz and 5yz to anything (any command may get 421, 500, 501 and the
// errors §4.3.2 lists; servers pick among them freely), which 2yz a command other than EHLO or
// HELO gets (251 to RCPT, 252 to VRFY, 221 to QUIT), and any reply to a verb mailtap does not
// know (an extension defines its own). Only classes, EHLO's 250 and DATA's 354 are checked:
// those are what Postfix, Gmail and Microsoft 365 send, and all the order of replies rests on.
std::string_view impossible_reply(Verb answered, bool end_of_data, int code) {
  const int reply_class = code / 100;
  const bool no_such_class = reply_class == 1 || reply_class == 3;
  if (end_of_data)
    return no_such_class ? "the end of data gets 250 or an error (RFC 5321 §4.3.2)" : "";
  switch (answered) {
    case Verb::ehlo:
    case Verb::helo:
      return reply_class <= 3 && code != 250
                 ? "EHLO and HELO succeed only with 250 (RFC 5321 §4.3.2)"
                 : "";
    case Verb::data:
      return reply_class <= 3 && code != 354
                 ? "DATA's only positive reply is 354; 250 answers the end of data (RFC 5321 "
                   "§4.3.2)"
                 : "";
    case Verb::auth:
      return reply_class == 1 || (reply_class == 3 && code != 334)
                 ? "AUTH continues only with 334 (RFC 4954 §4)"
                 : "";
    case Verb::mail:
    case Verb::rcpt:
    case Verb::bdat:
    case Verb::rset:
    case Verb::noop:
    case Verb::quit:
    case Verb::vrfy:
    case Verb::expn:
    case Verb::help:
      return no_such_class ? "no 1yz or 3yz reply exists for it (RFC 5321 §4.2.1, §4.3.2)" : "";
    default:
      return "";
  }
}

// What a client whose BDAT line mailtap could not read should send instead.
constexpr std::string_view bdat_syntax_advice =
    "Send BDAT <size> [LAST] with one space between words and none before BDAT, the size in "
    "decimal digits";

// The reply to a MAIL, DATA or BDAT once recording failed (Dialogue::recording_failed): the
// session goes on (a QUIT, an RSET still work), but no message is started through it.
// The cause may quote a long file path: the reply is split into lines of at most 512 octets.
std::string unrecordable_command_reply(std::string_view cause) {
  return reply_lines("451", "4.3.0 mailtap: recording failed (" + std::string(cause) +
                                "); mailtap sends no more messages, as it delivers nothing it "
                                "cannot record (--record-failure stop), until it is restarted "
                                "once that is fixed: send the message again then");
}
}  // namespace

namespace {
// mailtap's own AUTH lines are rendered as a client's, but its user name, when it holds the
// password, is a secret: an AUTH LOGIN user line, recorded before the password is sent, has it
// redacted as under --redact-users (a PLAIN response is redacted whole by the redactor itself).
RedactionPolicy own_redaction(const DialogueOptions& o) {
  RedactionPolicy policy = o.redaction;
  if (o.login && user_holds_password(o.login->user, o.login->password.get()))
    policy.redact_users = true;
  return policy;
}
}  // namespace

Dialogue::Dialogue(DialogueOptions options)
    : Dialogue(std::move(options), own_events_, own_messages_) {}

Dialogue::Dialogue(DialogueOptions options, std::vector<RecordedEvent>& events,
                   std::vector<Message>& messages)
    : options_(std::move(options)),
      events_(events),
      messages_(messages),
      framer_(options_.max_auth_line),
      redactor_(options_.redaction),
      own_redactor_(own_redaction(options_)) {
  // Credentials only ever travel inside TLS.
  if (options_.login && options_.phase == Phase::tls) {
    UpstreamLoginOptions login = *options_.login;
    login.redact_user = options_.redaction.redact_users;
    login_.emplace(std::move(login));
    login_state_ = LoginState::waiting;
  }
  if (options_.assist_auth) assistant_.emplace(options_.upstream_host, options_.upstream_port);
  if (options_.client_tls == ClientTls::starttls) client_tls_ = ClientTlsState::offered;
  if (options_.client_tls == ClientTls::implicit) client_tls_ = ClientTlsState::active;
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

Event Dialogue::note_event(EventKind kind, std::string_view verb, std::string note) const {
  Event e = make_event(Direction::mailtap_note, kind);
  e.verb = std::string(verb);
  e.note = std::move(note);
  return e;
}

// A message's notes name it as its data events do: a session's offsets and counts then say
// which of its messages they are about, wherever the notes sit among the events.
Event Dialogue::body_note_event(EventKind kind, std::string note) const {
  Event e = note_event(kind, "DATA", std::move(note));
  if (const Transaction* t = body_transaction_.get()) e.transaction = t->message.transaction;
  return e;
}

namespace {

// `line` (its line end included) with each credential_spans span in place of its text, as
// "[<redacted N bytes>]"; empty if it has none.
std::string line_without_credentials(std::string_view line) {
  const std::string_view text = strip_crlf(line);
  const std::vector<std::pair<std::size_t, std::size_t>> spans = credential_spans(text);
  if (spans.empty()) return {};
  std::string out;
  std::size_t kept = 0;
  for (const auto& [begin, end] : spans) {
    out.append(text.substr(kept, begin - kept));
    out += "[<redacted " + std::to_string(end - begin) + " bytes>]";
    kept = end;
  }
  out.append(line.substr(kept));
  return out;
}

// `text` (a client's line with a verb, or a reply's lines) with line_without_credentials
// applied to each line; empty if no line holds a credential.
std::string without_credentials(std::string_view text) {
  std::string out;
  bool any = false;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t lf = text.find('\n', at);
    const std::size_t end = lf == std::string_view::npos ? text.size() : lf + 1;
    const std::string_view line = text.substr(at, end - at);
    std::string kept = line_without_credentials(line);
    any |= !kept.empty();
    out += kept.empty() ? std::string(line) : kept;
    at = end;
  }
  return any ? out : std::string{};
}

// Records `e` (whose wire octets are `wire`) with the credentials in them kept out, if there
// are any (`in`: "a command", "the reply"). False if there were none.
bool keep_credentials_out(Event& e, std::string_view wire, std::string_view in) {
  std::string kept = without_credentials(wire);
  if (kept.empty()) return false;
  e.bytes = std::move(kept);
  e.redacted = true;
  e.note = "a word shaped like an AUTH credential (base64 PLAIN or bearer token) in " +
           std::string(in) + "; kept out of the record";
  return true;
}

}  // namespace

Event Dialogue::reply_event(const Reply& reply) const {
  Event e = make_event(Direction::upstream_to_client, EventKind::reply);
  e.reply_code = reply.code;
  e.enhanced_status = reply.enhanced_status;
  e.bytes = reply.raw;
  e.wire_size = reply.raw.size();
  // A server may echo what it was sent ("252 2.0.0 <blob>" to "VRFY <blob>"): a credential
  // kept out of the command's record is kept out of its reply's too.
  keep_credentials_out(e, reply.raw, "the reply");
  return e;
}

Event Dialogue::rewrite_event(std::string_view verb, std::string bytes, std::string note) const {
  Event e = make_event(Direction::mailtap_to_client, EventKind::rewrite);
  e.verb = std::string(verb);
  e.bytes = std::move(bytes);
  e.note = std::move(note);
  return e;
}

// A client's command line as recorded. Kept out of the record, as a secret: a line without a
// verb behind a failed AUTH exchange (line_distrusted_, see distrust_early_lines), and a line
// shaped like a SASL credential wherever it comes (a PLAIN blob pasted without "AUTH PLAIN").
// Of a line with a verb, only the credential (a blob or a bearer token in clear, "VRFY <blob>"):
// the verb and the rest are kept. Every path that records a client's line comes here, so none
// can forget the rule (relay_command keeps a message's MAIL and RCPT lines so too).
Event Dialogue::client_line_event(Direction d, const Command& cmd, std::string_view line) const {
  Event e = make_event(d, EventKind::command);
  e.wire_size = line.size();
  const bool distrusted = line_distrusted_ && cmd.id == Verb::other;
  const bool credential = cmd.id == Verb::other && line_holds_credential(strip_crlf(line));
  if (cmd.id != Verb::other && keep_credentials_out(e, line, "a command")) {
    e.verb = cmd.verb;
    return e;
  }
  if (distrusted || credential) {
    e.bytes = "[<redacted " + std::to_string(line.size()) + " bytes>]\r\n";
    e.redacted = true;
    e.note = credential ? "shaped like an AUTH credential (base64 PLAIN or bearer token) outside "
                          "an AUTH exchange; kept out of the record"
                        : std::string(
                              "a line without an SMTP verb behind a failed AUTH exchange "
                              "(it may be a SASL response); kept out of the record") +
                              (d == Direction::client_to_upstream ? "" : " and not forwarded");
  } else {
    e.verb = cmd.verb;
    e.bytes = std::string(line);
  }
  return e;
}

Event Dialogue::auth_line_event(Direction d, RedactedLine r, std::size_t wire_size) const {
  Event e = make_event(d, EventKind::auth);
  e.verb = "AUTH";
  e.bytes = r.text + "\r\n";
  e.wire_size = wire_size;
  e.redacted = r.redacted;
  e.note = std::move(r.decoded);
  return e;
}

void Dialogue::relay_greeting(const Reply& greeting, Phase phase) {
  Event e = make_event(Direction::upstream_to_client, EventKind::greeting);
  e.phase = phase;
  e.reply_code = greeting.code;
  e.enhanced_status = greeting.enhanced_status;
  e.bytes = greeting.raw;
  e.wire_size = greeting.raw.size();
  record(std::move(e));
  bytes_from_upstream_ += greeting.raw.size();
  if (phase == Phase::pre_tls) {
    // The certificate vouches for what comes after STARTTLS, not for this: shown, not obeyed.
    ShownGreeting shown = pre_tls_greeting_for_client(greeting.raw);
    if (shown.escaped > 0) {
      record(rewrite_event("", shown.bytes,
                           "greeting sent before TLS, where nothing authenticates it: " +
                               std::to_string(shown.escaped) +
                               " octet(s) not printable ASCII shown as \\xHH, \\r or \\n, "
                               "so that they cannot act on the client's terminal"));
      emit_reply(shown.bytes, greeting.raw.size());
      return;
    }
  }
  emit_reply(greeting.raw, greeting.raw.size());
}

UpstreamOutput Dialogue::take_to_upstream() {
  upstream_taken_ += to_upstream_.size();
  return std::exchange(to_upstream_, {});
}
std::string Dialogue::take_to_client() {
  upstream_octets_taken_ = std::exchange(upstream_octets_in_to_client_, 0);
  return std::exchange(to_client_, {});
}

bool Dialogue::wants_client_input() const {
  return !ending_ && !client_eof_ && !client_unreadable_ && !client_tls_pending() &&
         framer_.unread() < options_.max_client_backlog && !client_output_full();
}

bool Dialogue::awaiting_reply() const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [](const Pending& p) { return p.kind != Pending::Kind::local; });
}

bool Dialogue::upstream_owes_reply() const {
  auto awaited = std::count_if(pending_.begin(), pending_.end(),
                               [](const Pending& p) { return p.kind != Pending::Kind::local; });
  // The chunk being relayed is the last BDAT's: nothing after it is read until it is complete.
  if (mode_ == Mode::bdat_chunk && !bdat_discard_ && awaited > 0) --awaited;
  return awaited > 0;
}

Dialogue::Clock::time_point Dialogue::oldest_pending_since() const {
  for (const Pending& p : pending_)
    if (p.kind != Pending::Kind::local) return p.since;
  return now_;
}

bool Dialogue::awaiting_end_of_data() const {
  for (const Pending& p : pending_) {
    if (p.kind == Pending::Kind::local) continue;
    return p.kind == Pending::Kind::data_end || (p.command == Verb::bdat && p.bdat_last);
  }
  return false;
}

bool Dialogue::end_of_data_unanswered() const {
  // The BDAT whose chunk is still coming (the last one sent, while a chunk is read) has not
  // ended its message: the server cannot have it before the chunk's last octet (nor ever, when
  // a failed recording withholds the rest).
  const Pending* chunk_coming = nullptr;
  if (mode_ == Mode::bdat_chunk) {
    const auto last_bdat = std::find_if(pending_.rbegin(), pending_.rend(), [](const Pending& p) {
      return p.kind == Pending::Kind::command && p.command == Verb::bdat;
    });
    if (last_bdat != pending_.rend()) chunk_coming = &*last_bdat;
  }
  return std::any_of(pending_.begin(), pending_.end(), [chunk_coming](const Pending& p) {
    return p.kind == Pending::Kind::data_end ||
           (p.kind == Pending::Kind::command && p.command == Verb::bdat && p.bdat_last &&
            &p != chunk_coming);
  });
}

bool Dialogue::in_data() const {
  return mode_ == Mode::data || mode_ == Mode::bdat_chunk;
}

void Dialogue::forward(std::string_view bytes) {
  to_upstream_.append(bytes);
  bytes_to_upstream_ += bytes.size();
}

bool Dialogue::client_line_begun() const {
  return octets_since_progress_ > 0 || framer_.partial_line() > 0 || !framer_.peek_unread().empty();
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

// A server's reply (`upstream_octets` of it, as bytes_from_upstream_ counted them) goes to the
// client as `bytes`: its octets are charged to the take that gives them, not to the step the
// reply came in (one held for --auth-user's login is written steps later).
void Dialogue::emit_reply(std::string_view bytes, std::uint64_t upstream_octets) {
  emit_client(bytes);
  upstream_octets_in_to_client_ += upstream_octets;
}

void Dialogue::finish(Ending::Kind kind, std::string reason) {
  if (ending_) return;
  // The rest of the last line's ending, if it was ended at its CR (a QUIT\r\n), is its own, not
  // input left unread.
  if (!in_data() && framer_.settle_line_end()) note_settled_line_end();
  record_telnet_answers(nullptr);
  restore_echo("the session ended");
  record_unfinished_reply(reason);
  record_auth_line_awaiting_token();
  close_body_events();
  ending_ = Ending{kind, std::move(reason)};
  mode_ = Mode::closed;
}

// Called before the dialogue finishes, while what was being relayed is still known.
// `drop_queued`: the upstream refused to go on, or is out of step, so not even what is queued
// for it here may go (the owner drops what it holds likewise, see upstream_output_dropped). A
// client that left has what it sent before relayed as far as it was taken.
void Dialogue::abandon_upstream_now(bool drop_queued) {
  if (abandon_upstream_) return;
  abandon_upstream_ = true;
  if (relaying_body()) {
    abandoned_kind_ = data_event_kind_;
    if (const Transaction* t = body_transaction_.get())
      abandoned_transaction_ = t->message.transaction;
  }
  if (!drop_queued) return;
  const std::size_t queued = to_upstream_.relayed_size();
  to_upstream_ = {};  // its Secret pieces are wiped
  upstream_output_dropped(queued);
}

void Dialogue::upstream_output_dropped(std::uint64_t relayed_octets, std::string_view why) {
  relayed_octets = std::min(relayed_octets, bytes_to_upstream_);
  if (relayed_octets == 0) return;
  bytes_to_upstream_ -= relayed_octets;
  // A write that failed inside a body cut that body, as an abandonment there does.
  EventKind kind = abandoned_kind_;
  std::uint64_t transaction = abandoned_transaction_;
  if (!abandon_upstream_ && relaying_body()) {
    kind = data_event_kind_;
    if (const Transaction* t = body_transaction_.get()) transaction = t->message.transaction;
  }
  Event e = make_event(Direction::client_to_mailtap, kind);
  if (kind != EventKind::command) e.verb = kind == EventKind::data ? "DATA" : "BDAT";
  e.transaction = transaction;
  e.wire_size = static_cast<std::size_t>(relayed_octets);
  e.note = std::string(unsent_note_prefix) + "the last " + std::to_string(relayed_octets) +
           " octets relayed were still queued for the upstream when mailtap stopped writing to "
           "it (" +
           (!why.empty()        ? std::string(why)
            : abandon_upstream_ ? std::string("it abandoned the upstream")
                                : std::string("a write to it failed")) +
           "): the server never received them";
  record(std::move(e));
}

void Dialogue::abort(std::string_view reply_421_text, Ending ending, std::string_view quit_why) {
  if (ending_) return;
  record_auth_line_awaiting_token();  // received before the 421 is sent
  record_unfinished_reply(ending.reason);
  emit_local_421(reply_421_text);
  if (!quit_why.empty() && can_quit_for_client()) quit_for_client(quit_why);
  finish(ending.kind, std::move(ending.reason));
}

void Dialogue::end_instead(std::string_view reply_421_text, Ending ending) {
  if (!ending_) {
    abort(reply_421_text, std::move(ending));
    return;
  }
  emit_local_421(reply_421_text);
  ending_ = std::move(ending);
}

void Dialogue::emit_local_421(std::string_view reply_421_text) {
  std::string line = reply_lines("421", reply_421_text);
  Event e = make_event(Direction::mailtap_to_client, EventKind::local_reply);
  e.reply_code = 421;
  e.enhanced_status = parse_enhanced_status(reply_421_text);
  e.bytes = line;
  e.wire_size = line.size();
  record(std::move(e));
  emit_client(line);
}

void Dialogue::time_out_client(std::string_view limit, bool line_begun, std::string_view advice) {
  // A command line held unfinished: the client did send, and may think it ended the line.
  const std::size_t held = in_data() || ending_ ? 0 : framer_.partial_line();
  if (held > 0) {
    line_begun = true;
    record(note_event(EventKind::note, {},
                      "timed out after an unterminated line of " + std::to_string(held) +
                          " octets; not forwarded"));
  }
  const std::string what =
      line_begun ? "the client's " + std::string(in_data() ? "message line" : "command line") +
                       " was not complete within " + std::string(limit)
                 : "idle for " + std::string(limit) + " waiting for the client";
  const std::string hint = held > 0 ? held_line_hint() : std::string();
  std::string then = hint.empty() ? std::string() : "; " + hint;
  if (!advice.empty()) then += "; " + std::string(advice);
  // Between commands the server is told goodbye as when the client closes (the record shows
  // mailtap's QUIT and why); inside a body the message is abandoned by the close alone.
  abort("4.4.2 mailtap: " + what + then + "; closing",
        {Ending::Kind::timeout,
         line_begun ? "client line not complete in time" : "client idle timeout"},
        "the client " + std::string(line_begun ? "was too slow" : "was idle") + " for " +
            std::string(limit));
}

// Why a line a person may think they ended is not complete: a CR in it that is not the
// client's own line ending (its first line decided that, see ClientFramer::own_line_end).
std::string Dialogue::held_line_hint() const {
  const ClientFramer::ForeignEnd foreign = framer_.foreign_end_in_partial_line();
  const std::string at = " at octet " + std::to_string(foreign.octet);
  if (foreign.end == LineEnd::cr)
    return "its line holds a bare CR" + at +
           ", which ends a line only for a client whose first line (EHLO, HELO, NOOP, RSET, "
           "HELP, QUIT, STARTTLS, AUTH or an empty line) ended so: end lines with CRLF (telnet "
           "in line mode, nc -C)";
  if (foreign.end == LineEnd::cr_nul)
    return "its line holds a CR NUL" + at +
           " (telnet's mode character), which ends a line only for a client whose first line "
           "ended so: go back with telnet's mode line, or end lines with CRLF";
  return {};
}

void Dialogue::queue_local_reply(std::string reply_line, bool starts_tls) {
  // No line of mailtap's own past RFC 5321's 512 octets, whatever its text quotes (a path, a
  // name, a server's words): a longer single line is split as reply_lines splits a 421.
  const std::size_t one_line_end = reply_line.find("\r\n");
  if (reply_line.size() > kMaxExplanation + 2 && reply_line.size() > 4 &&
      one_line_end == reply_line.size() - 2)
    reply_line = reply_lines(std::string_view(reply_line).substr(0, 3),
                             std::string_view(reply_line).substr(4, one_line_end - 4));
  Pending p;
  p.kind = Pending::Kind::local;
  p.line = std::move(reply_line);
  p.starts_tls = starts_tls;
  p.since = now_;
  pending_.push_back(std::move(p));
  flush_local_replies();
}

void Dialogue::flush_local_replies() {
  while (!pending_.empty() && pending_.front().kind == Pending::Kind::local) {
    if (std::optional<Ending> ending = pending_.front().ends_session) {
      const std::string text = std::move(pending_.front().line);
      pending_.pop_front();
      abort(text, std::move(*ending));
      return;
    }
    const std::string& line = pending_.front().line;
    Event e = make_event(Direction::mailtap_to_client, EventKind::local_reply);
    e.reply_code = std::atoi(line.c_str());
    e.enhanced_status =
        parse_enhanced_status(line.size() > 4 ? std::string_view(line).substr(4) : "");
    e.bytes = line;
    e.wire_size = line.size();
    record(std::move(e));
    emit_client(line);
    if (pending_.front().starts_tls && client_tls_ == ClientTlsState::requested)
      client_tls_ = ClientTlsState::due;
    pending_.pop_front();
  }
}

// Every caller has queued the command's line by then.
void Dialogue::push_pending(Pending p) {
  p.since = now_;
  p.sequence = ++commands_sent_;
  p.queued_through = upstream_taken_ + to_upstream_.size();
  if (p.sync) paused_ = true;
  pending_.push_back(std::move(p));
}

// The note follows the body text it counts (recording.md), so that text is recorded first:
// flushed here rather than after the read, it is still one data event per read.
void Dialogue::note_body_rewrites() {
  RewriteCounts rw = framer_.take_rewrites();
  rw += std::exchange(data_rewrites_, {});
  if (!rw.any()) return;
  flush_data_event();
  record(body_note_event(EventKind::rewrite, rw.describe()));
}

// A piece of a body as relayed (DATA text or a BDAT chunk's payload), for the record; its first
// `dots` octets (0 or 1) are a transparency dot, which the server does not store. --max-body
// counts the body as the server stores it, as `size` does, so a body of at most the cap is
// recorded whole; a longer one is cut right after the last octet that fits (before a
// transparency dot that no stored octet follows), and the rest goes to data_cut_.
void Dialogue::capture_body(std::string_view wire, std::size_t dots) {
  if (!options_.capture_bodies || wire.empty()) return;
  std::size_t keep = wire.size();
  if (Transaction* t = body_transaction_.get()) {
    const std::uint64_t stored = wire.size() - dots;
    const std::uint64_t room =
        t->recorded < options_.max_body_capture ? options_.max_body_capture - t->recorded : 0;
    if (stored > room) {
      keep = room == 0 ? 0 : dots + static_cast<std::size_t>(room);
      t->message.body_truncated = true;
    }
    t->recorded += keep == 0 ? 0 : keep - dots;
  }
  data_event_.append(wire.substr(0, keep));
  data_cut_.append(wire.substr(keep));
}

// The DATA terminator is no part of the body: recorded after a body recorded whole (the reader
// knows it by it), left out with the rest of a body the cap cut.
void Dialogue::capture_terminator() {
  if (!options_.capture_bodies) return;
  const Transaction* t = body_transaction_.get();
  (t != nullptr && t->message.body_truncated ? data_cut_ : data_event_) += ".\r\n";
}

// The body is recorded once, as these events, in pieces as it streams through; --max-body
// caps what is kept of each message, never what is relayed.
void Dialogue::flush_data_event() {
  Transaction* t = body_transaction_.get();
  if (!data_event_.empty()) {
    Event e = make_event(Direction::client_to_upstream, data_event_kind_);
    e.verb = data_event_kind_ == EventKind::data ? "DATA" : "BDAT";
    e.bytes = std::exchange(data_event_, {});
    e.wire_size = e.bytes.size();
    if (t != nullptr) e.transaction = t->message.transaction;
    record(std::move(e));
  }
  if (!data_cut_.empty() && t != nullptr) {
    // Still part of the message's SHA-256, which the recorder computes.
    t->unrecorded += data_cut_.size();
    unrecorded_bodies_.push_back(
        UnrecordedBody{t->message.transaction, data_event_kind_, std::exchange(data_cut_, {})});
  }
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
  record(std::move(e));
}

// ---- client side -------------------------------------------------------------------------

void Dialogue::client_bytes(std::string_view bytes) {
  if (ending_ || client_unreadable_) return;
  // Most of a read in DATA goes on as it came: room for all of it, not a regrowth per segment.
  if (mode_ == Mode::data || mode_ == Mode::bdat_chunk) {
    to_upstream_.expect(framer_.unread() + bytes.size());
    // And one allocation for the body event it makes, not a regrowth (and a copy) per line.
    const bool cut = body_transaction_ && body_transaction_->message.body_truncated;
    if (options_.capture_bodies)
      (cut ? data_cut_ : data_event_).reserve(framer_.unread() + bytes.size());
  }
  framer_.lend(bytes);
  process_client();  // ends with framer_.compact(): nothing is read from `bytes` after it
  end_if_unrecordable();
}

void Dialogue::client_closed() {
  // Where the client closed, in the record's order: an MTA that gave up waiting for the reply
  // to its end of data (and pipelined QUIT behind it) hangs up before the 250 and the 221, and
  // a client that only closed its sending side (nc -N) still reads them. mailtap cannot tell
  // the two apart, so the replies still go, after this note.
  if (!client_eof_ && !ending_ && !relaying_body() && replies_due_to_client())
    record(note_event(EventKind::note, {},
                      std::string(client_closed_with_replies_due) +
                          "those after this are relayed, and reach it only if it still reads (it "
                          "closed its sending side alone); a client that hung up never gets them"));
  client_eof_ = true;
  process_client();
}

void Dialogue::discard_unread_client_input() {
  // The rest of the last line's ending, if it was ended at its CR (a QUIT\r\n), is its own.
  if (framer_.settle_line_end()) note_settled_line_end();
  client_octets_discarded_ += framer_.unread();
  framer_.skip_unread();
}

bool Dialogue::replies_due_to_client() const {
  return held_reply_.has_value() ||
         std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) {
           return p.kind == Pending::Kind::command || p.kind == Pending::Kind::sasl ||
                  p.kind == Pending::Kind::data_end || p.kind == Pending::Kind::local;
         });
}

void Dialogue::process_client() {
  client_input_held_ = false;
  if (!client_start_checked_) client_start_checked_ = check_client_start();
  while (client_start_checked_ && !ending_ && !client_unreadable_ && !paused_ &&
         !client_tls_pending() && pending_.size() < options_.max_pending_replies) {
    if (client_output_full()) {  // the lines left wait in the framer (max_client_backlog)
      client_input_held_ = true;
      break;
    }
    bool progressed = false;
    switch (mode_) {
      case Mode::command:
      case Mode::sasl:
        if (quit_sent_) {
          // A server stops reading at QUIT; so does mailtap.
          discard_unread_client_input();
          break;
        }
        if (held_bdat_) {
          progressed = release_held_bdat();
          break;
        }
        if (chunk_reply_pending()) break;  // the line waits for it, in the framer
        progressed = read_line();
        break;
      case Mode::data:
        if (framer_.settle_line_end()) note_settled_line_end();
        progressed = read_data();
        note_body_rewrites();
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
  if (client_tls_pending() && framer_.unread() > 0) refuse_tls_injection();
  framer_.compact();
  if (client_eof_) on_client_input_exhausted();
}

bool Dialogue::read_line() {
  std::optional<FramedLine> line = framer_.next_line(mode_ == Mode::command);
  note_settled_line_end();  // the line before's, before this line's events
  answer_telnet_options();
  if (!line) return false;
  record_telnet_answers(&*line);
  restore_echo("the line typed at the password prompt came");
  progress(0, /*complete=*/true);
  handle_line(std::move(*line));
  return true;
}

// A telnet client waits for the answers to the options it asked for (in character mode it
// echoes nothing until then; after Ctrl-C's IAC DO TM it shows no output): mailtap refuses
// each as soon as it reads it, ahead of the reply to the line it came in.
void Dialogue::answer_telnet_options() {
  std::string answers = framer_.take_telnet_answers();
  if (answers.empty()) return;
  emit_client(answers);
  telnet_answered_ += answers;
}

// The refusals written while a line was read, recorded once with it (however the reads fell),
// before its own events. An option octet on an AUTH line, a SASL response or a line refused
// unread may be an octet of a secret: there only their number is kept, as in the rewrite note.
void Dialogue::record_telnet_answers(const FramedLine* line) {
  if (telnet_answered_.empty()) return;
  const std::string answers = std::exchange(telnet_answered_, {});
  const Verb verb =
      line != nullptr && line->discarded == 0 ? parse_command(line->text).id : Verb::other;
  const bool plain = mode_ == Mode::command && verb != Verb::other && verb != Verb::auth;
  Event e = make_event(Direction::mailtap_to_client, EventKind::note);
  e.bytes = plain ? answers : std::string{};
  e.redacted = !plain;
  e.wire_size = answers.size();
  e.note = "telnet options refused (" + std::to_string(answers.size() / 3) +
           "x): mailtap is not a telnet server, and telnet waits for an answer before it echoes "
           "or shows output again";
  record(std::move(e));
}

namespace {
constexpr std::string_view telnet_will_echo = "\xff\xfb\x01";  // IAC WILL ECHO (RFC 857)
constexpr std::string_view telnet_wont_echo = "\xff\xfc\x01";  // IAC WONT ECHO
}  // namespace

// Telnet echoes what is typed itself until the server says it will echo (IAC WILL ECHO), as a
// telnet server does at its password prompt; mailtap echoes nothing, so the password stays off
// the screen. Only to a client that negotiated telnet options itself: to any other (nc, socat)
// the octets would be text on its screen.
void Dialogue::withhold_echo() {
  if (echo_withheld_ || !framer_.telnet_negotiated()) return;
  echo_withheld_ = true;
  framer_.offer_echo();
  emit_client(telnet_will_echo);
  Event e = make_event(Direction::mailtap_to_client, EventKind::note);
  e.bytes = std::string(telnet_will_echo);
  e.wire_size = telnet_will_echo.size();
  e.note =
      "telnet echo turned off at the password prompt (IAC WILL ECHO): telnet stops showing what "
      "is typed until mailtap sends IAC WONT ECHO (--assist-auth)";
  record(std::move(e));
}

void Dialogue::restore_echo(std::string_view why) {
  if (!std::exchange(echo_withheld_, false)) return;
  emit_client(telnet_wont_echo);
  Event e = make_event(Direction::mailtap_to_client, EventKind::note);
  e.bytes = std::string(telnet_wont_echo);
  e.wire_size = telnet_wont_echo.size();
  e.note = "telnet echo turned back on (IAC WONT ECHO): " + std::string(why);
  record(std::move(e));
}

// The screen showed the line corrected; the server read the Backspace octet and what it was
// meant to erase. Only noted: the server's reply reaches the client as it was sent.
void Dialogue::note_backspace_refused(const Pending& p, const Reply& reply) {
  if (!p.backspace || reply.code < 400) return;
  record(note_event(EventKind::note, p.verb,
                    "the line refused held " + backspace_name(p.backspace->octet) + " at octet " +
                        std::to_string(p.backspace->at) + ": " + std::string(backspace_cause()) +
                        ", so the server read the octet and what it was meant to erase. Type "
                        "the line again without correcting it, or in telnet's line mode (^] "
                        "then mode line), where the terminal edits the line before it is sent"));
}

void Dialogue::abandon_message(std::string_view why) {
  record(note_event(EventKind::note, {},
                    std::string(why) +
                        "; the message was abandoned (no end of data was sent, so the upstream "
                        "discards it)"));
  abandon_upstream_now(/*drop_queued=*/false);
}

void Dialogue::replies_not_relayed(std::string_view replies, std::uint64_t upstream_octets) {
  upstream_octets = std::min(upstream_octets, bytes_from_upstream_);
  bytes_from_upstream_ -= upstream_octets;
  // A note is no octet on a wire (wire_size 0): the count is in its text, where a sum of
  // wire_size over the record cannot take it for octets sent.
  record(note_event(EventKind::note, {},
                    std::string(unrelayed_note_prefix) + std::to_string(upstream_octets) +
                        " octets (" + std::string(replies) + ")"));
}

void Dialogue::recording_failed(std::string cause, std::uint64_t accepted_recorded) {
  if (!recording_failure_) {
    recording_failure_ = std::move(cause);
    accepted_recorded_ = accepted_recorded;
  }
  end_if_unrecordable();
}

// What the server has of this session that the record lacks, for the 421 that ends it: the
// messages it accepted whose record was not committed (their 250 went: the server has them,
// and a person told nothing would send them again, or believe them recorded), or none.
namespace {
std::string unrecorded_messages_clause(std::uint64_t unrecorded, std::string_view last_reply) {
  if (unrecorded == 0)
    return "the server has no message of this session that the record lacks, but the rest of "
           "the session is not recorded";
  const std::string reply = "(" + std::string(last_reply) + ")";
  if (unrecorded == 1)
    return "the message above was accepted by the server " + reply +
           " but is not in the record: do not send it again";
  return std::to_string(unrecorded) +
         " messages of this session were accepted by the server (the last " + reply +
         ") but are not in the record: do not send them again";
}
}  // namespace

// The text of the 421 that tells the client its session is not recorded (after "421 "):
// `closing` is "closing: " where mailtap ends the session, "" after the server's 221.
std::string Dialogue::recording_failure_reply(std::string_view closing) const {
  const std::uint64_t unrecorded =
      messages_accepted_ - std::min(accepted_recorded_, messages_accepted_);
  return "4.3.0 mailtap: recording failed (" + *recording_failure_ +
         "): " + unrecorded_messages_clause(unrecorded, last_accepted_reply_) + "; " +
         std::string(closing) + "fix that, then restart mailtap";
}

std::string Dialogue::recording_failed_at_quit(std::string cause, std::uint64_t accepted_recorded) {
  if (!unrecorded_end_reply_.empty() || !ending_ || ending_->kind != Ending::Kind::quit) return {};
  if (!recording_failure_) {
    recording_failure_ = std::move(cause);
    accepted_recorded_ = accepted_recorded;
  }
  unrecorded_end_reply_ = recording_failure_reply("");
  return reply_lines("421", unrecorded_end_reply_);
}

// Between commands, with no reply due: the client's next command could only start a message
// that is refused (451) or end a session the record does not hold. mailtap says so now, in
// SMTP, rather than let the server's 221 pass for a clean, recorded end.
void Dialogue::end_if_unrecordable() {
  if (!recording_failure_ || ending_ || mode_ != Mode::command || paused_ || quit_sent_ ||
      client_unreadable_ || held_bdat_ || client_tls_pending() || !pending_.empty() ||
      held_reply_ || token_need_ != TokenNeed::none)
    return;
  unrecorded_end_reply_ = recording_failure_reply("closing: ");
  abort(unrecorded_end_reply_,
        {Ending::Kind::error,
         "recording failed: mailtap ended the session, which it could not record"},
        "recording failed");
}

// The server holds the body and waits for its end: only closing the connection without one
// makes it drop the message, so the session ends here, and the client's reply is a 421.
void Dialogue::refuse_unrecordable_end() {
  abandon_message("recording failed (" + *recording_failure_ +
                  "), so the client's end of data was not sent upstream");
  abort("4.3.0 mailtap: recording failed (" + *recording_failure_ +
            "), so the message was not sent: mailtap delivers nothing it cannot record "
            "(--record-failure stop), until it is restarted once that is fixed: send the "
            "message again then",
        {Ending::Kind::error, "recording failed: the message was not sent (no end of data)"});
}

bool Dialogue::refuse_unrecordable_command(const Command& cmd, std::string_view line) {
  if (!recording_failure_ || (cmd.id != Verb::mail && cmd.id != Verb::data)) return false;
  record(client_line_event(Direction::client_to_mailtap, cmd, line));
  queue_local_reply(unrecordable_command_reply(*recording_failure_));
  return true;
}

// mailtap speaks to the upstream on its own account (a cancel "*", a QUIT for a vanished
// client): recorded as mailtap's, with its reply expected like any other.
void Dialogue::send_own_line(std::string_view line, EventKind kind, std::string note,
                             Expect expects, bool sync) {
  const Command cmd = parse_command(line);
  Event e = make_event(Direction::mailtap_to_upstream, kind);
  e.verb = kind == EventKind::auth ? "AUTH" : cmd.verb;
  e.bytes = std::string(line);
  e.wire_size = line.size();
  e.note = std::move(note);
  Pending p;
  p.kind = expects;
  p.verb = e.verb;
  p.command = kind == EventKind::auth ? Verb::auth : cmd.id;
  p.sync = sync;
  record(std::move(e));
  to_upstream_.append_own(line);
  push_pending(std::move(p));
}

void Dialogue::handle_line(FramedLine framed) {
  // The rewrite note follows the event of the line it rewrote, so a transcript reads
  // "C: EHLO x" then "~ bare LF normalised", whatever else the line caused.
  const RewriteCounts rewrites = framer_.take_rewrites();
  const std::size_t first_event = events_.size();
  // Named in the note of what its CR was, if it was ended there (see note_settled_line_end): a
  // verb only, never text that may be a secret's (a SASL response read as a command).
  const std::string verb =
      framed.discarded > 0 ? framed.discarded_verb : parse_command(framed.text).verb;
  ended_at_cr_verb_ = verb_of(verb) != Verb::other ? verb : std::string();
  if (mode_ == Mode::sasl) ended_at_cr_verb_ = "AUTH";
  handle_framed_line(std::move(framed));
  // A line refused whole (too long, a NUL, a line ending or telnet sequence in it; a SASL
  // response so is cancelled with mailtap's "*") was not rewritten: nothing of it was sent.
  if (first_event < events_.size()) {
    const Event& first = events_[first_event].event();
    if ((first.direction == Direction::client_to_mailtap && first.kind == EventKind::error) ||
        first.direction == Direction::mailtap_to_upstream)
      return;
  }
  if (held_bdat_) {
    held_bdat_rewrites_ += rewrites;  // noted once the line is sent
    return;
  }
  note_line_rewrites(rewrites, first_event);
}

void Dialogue::note_settled_line_end() {
  const RewriteCounts settled = framer_.take_settled_rewrites();
  if (!settled.any()) return;
  record(note_event(EventKind::rewrite, ended_at_cr_verb_, settled.describe()));
}

void Dialogue::note_line_rewrites(const RewriteCounts& rewrites, std::size_t first_event) {
  if (!rewrites.any()) return;
  const Event* line = first_event < events_.size() ? &events_[first_event].event() : nullptr;
  // The removed telnet sequences are named, except on a secret's line: an option byte may be
  // one of its octets.
  const bool secret = line == nullptr || line->kind == EventKind::auth || line->redacted;
  Event e = note_event(EventKind::rewrite, line ? line->verb : std::string{},
                       rewrites.describe(/*name_telnet=*/!secret));
  const std::size_t at = std::min(first_event + 1, events_.size());
  events_.insert(events_.begin() + static_cast<std::ptrdiff_t>(at), RecordedEvent(std::move(e)));
}

// A client that pipelined its SASL responses behind AUTH sees them read as commands once the
// exchange fails (a strict server reads them so too, and they are relayed as such). They were
// meant as secrets: lines already received at that moment are recorded redacted unless they
// begin with an SMTP verb (default deny, as for anything sent during AUTH). So are the lines
// that arrive later up to the first that begins with a verb: a person who goes on pasting
// responses after the refusal gets the same record however the bytes were timed.
void Dialogue::distrust_early_lines() {
  framer_.distrust_unread();
  distrust_until_verb_ = true;
}

Dialogue::LineFault Dialogue::line_fault(const FramedLine& framed, LineEnd own) {
  if (!framed.telnet_fault.empty())
    return {std::string(framed.telnet_fault), "a 0xFF octet in text is sent as 0xFF 0xFF"};
  if (framed.foreign_end == LineEnd::none) return {};
  const std::string owns = own == LineEnd::cr || own == LineEnd::cr_nul
                               ? "CRLF, LF or " + std::string(to_string(own))
                               : std::string("CRLF or LF");
  return {"a " + std::string(to_string(framed.foreign_end)) +
              " inside it, where this client ends its lines with " + owns,
          "servers disagree on where such a line ends; end each line with CRLF",
          /*line_ending=*/true};
}

void Dialogue::handle_framed_line(FramedLine framed) {
  const std::string& line = framed.text;
  const LineFault fault = line_fault(framed, framer_.own_line_end());
  const std::size_t discarded = framed.discarded;
  const bool has_nul = framed.has_nul || line.find('\0') != std::string::npos;
  // A line can complete in the same read that takes it past the limit: check the whole size too.
  const bool over_auth_limit = discarded > 0 || line.size() > options_.max_auth_line;
  if (mode_ == Mode::sasl) {
    if (framed.telnet_interrupt) {
      // Ctrl-C at the prompt: the person aborting, as the RFC 4954 cancel says. What else the
      // line holds (the start of a password, or what was typed after Ctrl-C) is neither sent
      // nor recorded.
      send_own_line("*\r\n", EventKind::auth,
                    "telnet interrupt (Ctrl-C) at the SASL prompt: sent as the cancel *; the "
                    "line was not forwarded",
                    Expect::sasl, /*sync=*/true);
      return;
    }
    if (over_auth_limit || !fault.what.empty()) {
      // The upstream is still waiting for a SASL response; cancel the exchange for the client
      // (RFC 4954 "*") so both sides agree on where it ended.
      const std::string why = over_auth_limit ? "exceeds 12288 (RFC 4954)" : "has " + fault.what;
      send_own_line("*\r\n", EventKind::auth,
                    "SASL response of " + std::to_string(discarded + line.size()) + " octets " +
                        why + ": not forwarded, exchange cancelled",
                    Expect::sasl, /*sync=*/true);
      return;
    }
    handle_sasl_line(line);
    return;
  }
  Command cmd = parse_command(line);
  if (discarded > 0) {
    cmd.verb = framed.discarded_verb;
    cmd.id = verb_of(cmd.verb);
  }
  const std::size_t total = discarded + line.size();
  const bool too_long =
      over_auth_limit || (cmd.id != Verb::auth && line.size() > options_.max_command_line);
  if (too_long || has_nul || !fault.what.empty()) {
    refuse_line(cmd, total, too_long, fault);
    return;
  }
  line_end_ = framed.end;
  handle_command(cmd, line, framed.distrusted);
}

// A command line refused whole: too long, with a NUL, or with something in it that makes its
// reading uncertain (`fault`: a telnet sequence mailtap could not remove without guessing, a
// line ending not the client's own). It is not forwarded, and not kept: it may be anything,
// secrets included.
void Dialogue::refuse_line(const Command& cmd, std::size_t total, bool too_long,
                           const LineFault& fault) {
  Event e = make_event(Direction::client_to_mailtap, EventKind::error);
  e.verb = cmd.verb.size() <= 16 ? cmd.verb : std::string{};
  e.wire_size = total;
  e.redacted = true;
  std::string reply;
  if (too_long) {
    e.note = "command line of " + std::to_string(total) + " octets refused";
    reply =
        "500 5.5.2 mailtap: line too long (limit " +
        std::to_string(cmd.id == Verb::auth ? options_.max_auth_line : options_.max_command_line) +
        " octets); not forwarded\r\n";
  } else if (!fault.what.empty()) {
    e.note = "command line with " + fault.what + " refused";
    reply = "500 5.5.2 mailtap: the line has " + fault.what + " (" + std::string(fault.advice) +
            "); not forwarded\r\n";
  } else {
    e.note = "command line with a NUL byte refused";
    reply =
        "500 5.5.2 mailtap: NUL byte in command line; not forwarded: send the command again "
        "without it\r\n";
  }
  record(std::move(e));
  // A BDAT line refused: where its chunk ends is unknown, so nothing after it may be read.
  if (cmd.id == Verb::bdat) {
    // A line ending in the line is no matter of BDAT's syntax.
    end_at_unframable_bdat(
        too_long ? "line longer than " + std::to_string(options_.max_command_line) + " octets"
        : fault.line_ending   ? fault.what
        : !fault.what.empty() ? fault.what + " in its line"
                              : std::string("NUL byte in its line"),
        fault.line_ending ? "End each line with CRLF" : bdat_syntax_advice);
    return;
  }
  // A refused AUTH line: what follows may be its SASL responses, as after any refused AUTH.
  if (cmd.id == Verb::auth) {
    end_auth_exchange_locally(std::move(reply));
  } else {
    queue_local_reply(std::move(reply));
  }
}

void Dialogue::handle_command(const Command& cmd, std::string_view line, bool distrusted) {
  // A line that begins with an SMTP verb is a command whatever came before it.
  if (cmd.id != Verb::other) distrust_until_verb_ = false;
  line_distrusted_ = (distrusted || distrust_until_verb_) && cmd.id == Verb::other;
  // Between chunks first: no other gate may answer or send (--assist-auth's translated AUTH)
  // a line that no server would take there.
  if (refuse_between_chunks(cmd, line) || gate_client_tls(cmd, line) ||
      refuse_distrusted_line(cmd, line) || intercept_command(cmd, line) ||
      refuse_unrecordable_command(cmd, line))
    return;
  switch (cmd.id) {
    case Verb::starttls: {
      record(client_line_event(Direction::client_to_mailtap, cmd, line));
      std::string reply = answer_starttls(cmd);
      queue_local_reply(std::move(reply), client_tls_ == ClientTlsState::requested);
      return;
    }
    case Verb::bdat:
      handle_bdat(cmd, line);
      return;
    case Verb::auth:
      send_client_auth(line, /*response=*/false);
      return;
    default:
      relay_command(cmd, line);
      return;
  }
}

// The server would read such a line as a command, and may log what it does not know: the
// password, token or PLAIN blob a client sent behind an AUTH that was refused (by the server or
// by mailtap) would reach it outside any AUTH exchange. mailtap answers it instead, in its turn
// among the replies, and records it redacted. Only up to the first line with a verb after the
// refusal (distrust_until_verb_): which lines those are does not depend on how the client's
// bytes were split into reads, as what reaches the server must not. A line received before the
// refusal that comes behind such a verb is still recorded redacted (line_distrusted_), but
// relayed, as a command after that verb would be.
bool Dialogue::refuse_distrusted_line(const Command& cmd, std::string_view line) {
  if (!distrust_until_verb_ || cmd.id != Verb::other) return false;
  record(client_line_event(Direction::client_to_mailtap, cmd, line));
  queue_local_reply(
      "500 5.5.2 mailtap: line taken for a SASL response after a refused AUTH; not forwarded "
      "(send a command, or AUTH again)\r\n");
  return true;
}

// From a client whose lines end in a bare CR, the LF after a BDAT line's CR may be the chunk's
// first octet: where the chunk begins is not known, and the session ends.
bool Dialogue::refuse_bdat_of_a_bare_cr_client(const Command& cmd, std::string_view line) {
  if (line_end_ != LineEnd::crlf || framer_.own_line_end() != LineEnd::cr) return false;
  record(client_line_event(Direction::client_to_mailtap, cmd, line));
  end_at_unframable_bdat(
      "its line ends in CR LF from a client whose lines end in a bare CR, so the LF may be the "
      "chunk's first octet",
      "End every line with CRLF to send BDAT, or send the message with DATA");
  return true;
}

void Dialogue::handle_bdat(const Command& cmd, std::string_view line) {
  if (refuse_bdat_of_a_bare_cr_client(cmd, line)) return;
  const BdatArgs args = parse_bdat_line(line);
  if (!args) {
    // Servers differ on whether they skip a chunk after a BDAT they refuse (and how long), so
    // the line never reaches the upstream, and mailtap cannot tell where the chunk ends.
    record(client_line_event(Direction::client_to_mailtap, cmd, line));
    if (args.problem == BdatArgs::Problem::size_too_large) {
      end_at_unframable_bdat("size over " + std::to_string(bdat_size_max) +
                                 " octets, more than some servers can count",
                             "Send the message in smaller chunks (BDAT <size> with a size below " +
                                 std::to_string(bdat_size_max + 1) + ")");
    } else {
      end_at_unframable_bdat("syntax is BDAT SP <size> [SP LAST]", bdat_syntax_advice);
    }
    return;
  }
  if (chunking_ != Chunking::advertised || recording_failure_) {
    // The upstream would read the chunk as commands; mailtap consumes it as RFC 3030 asks
    // of a server refusing BDAT, and nothing of it travels upstream.
    record(client_line_event(Direction::client_to_mailtap, cmd, line));
    queue_local_reply(recording_failure_ ? unrecordable_command_reply(*recording_failure_)
                                         : bdat_refusal());
    if (args.size > 0) {
      mode_ = Mode::bdat_chunk;
      bdat_remaining_ = args.size;
      bdat_discard_ = true;
    }
    return;
  }
  // The chunk goes upstream with no reply awaited, so the transaction it is recorded for is
  // the one the server will have open when it reads it. When commands still awaiting replies
  // leave that open (a MAIL sent behind another, or behind an RSET with arguments), BDAT waits
  // for their replies, as the line after a sync point does. No line behind a chunk without
  // LAST is read before that chunk's reply (chunk_reply_pending): whether the server reads this
  // chunk as a chunk depends on it (see bdat_chunk_refused_).
  const TransactionTracker::Forecast forecast = forecast_transaction();
  if (!forecast.certain() || (!bdat_chunk_refused_.empty() && awaiting_reply())) {
    held_bdat_ = std::string(line);
    return;
  }
  if (!bdat_chunk_refused_.empty() || (args.size == 0 && !args.last && bdat_transaction())) {
    record(client_line_event(Direction::client_to_mailtap, cmd, line));
    if (!bdat_chunk_refused_.empty()) {
      end_at_unframable_bdat(
          std::string(bdat_chunk_refused_),
          "Start a new session and send the message again; after a refused chunk or NOOP, send "
          "RSET before another BDAT");
    } else {  // Exim answers it 504 and takes the next BDAT's chunk as commands
      queue_local_reply(
          "504 5.5.4 mailtap: BDAT 0 without LAST between the chunks of a message; not "
          "forwarded: end the message with BDAT <size> LAST, or drop it with RSET\r\n");
    }
    return;
  }
  if (refuse_bdat_over_size(cmd, line, args.size, forecast.transaction().get())) return;
  record(client_line_event(Direction::client_to_upstream, cmd, line));
  forward(line);
  Pending p;
  p.verb = "BDAT";
  p.command = Verb::bdat;
  p.bdat_last = args.last;
  p.transaction = forecast.transaction();
  p.relayed_through = bytes_to_upstream_ + args.size;  // the chunk follows the line at once
  push_pending(std::move(p));
  if (forecast.transaction()) forecast.transaction()->message.via_bdat = true;
  if (args.size > 0) {
    mode_ = Mode::bdat_chunk;
    bdat_remaining_ = args.size;
    bdat_discard_ = false;
    bdat_last_ = args.last;
    data_event_kind_ = EventKind::bdat_chunk;
    body_transaction_ = forecast.transaction();
  }
}

// A BDAT line refused without a size mailtap can trust: the chunk behind it has no end mailtap
// knows. Reading on as commands would relay chunk text as commands where a server that took the
// line frames a chunk (SMTP smuggling), so nothing after the line is read and the session ends,
// whatever the server would have done with it. Replies owed for commands pipelined ahead of the
// line come first, relayed and recorded as usual (within the usual reply deadline): one may
// answer an end of data, and a client that got only the 421 would send that message again.
void Dialogue::end_at_unframable_bdat(std::string_view why, std::string_view what_to_do) {
  end_reading_client("4.5.4 mailtap: BDAT refused (" + std::string(why) +
                         "), so where its chunk ends is unknown: nothing after it is read; "
                         "closing. " +
                         std::string(what_to_do),
                     "client's BDAT refused (" + std::string(why) +
                         "): where its chunk ends is unknown, nothing after it was read");
}

// The client's bytes from here on have no reading every server shares: nothing more of them is
// read, and the session ends with a 421 (`reply_text`, without "421 " and CRLF) once the
// replies owed for what came before are relayed.
void Dialogue::end_reading_client(std::string reply_text, std::string reason) {
  discard_unread_client_input();
  client_unreadable_ = true;
  Pending p;
  p.kind = Pending::Kind::local;
  p.line = std::move(reply_text);
  p.ends_session = Ending{Ending::Kind::error, std::move(reason)};
  p.since = now_;
  pending_.push_back(std::move(p));
  flush_local_replies();
}

// A transaction that BDAT began (a chunk of it went upstream, or mailtap refused one: see
// refuse_bdat_over_size), as the server will find it when it reads a command sent now (decided
// as for BDAT's chunk); nullptr when none, or when pending replies leave that open.
TransactionTracker::Handle Dialogue::bdat_transaction() const {
  const TransactionTracker::Forecast forecast = forecast_transaction();
  if (!forecast.certain() || !forecast.transaction() || !forecast.transaction()->message.via_bdat)
    return nullptr;
  return forecast.transaction();
}

// Between the chunks of a message only BDAT, RSET, NOOP and QUIT are answered as usual: RFC 3030
// §2 refuses DATA there, and Exim answers any other command (VRFY, MAIL, RCPT, EHLO, AUTH, RSET
// or QUIT with arguments) 503 and from then on answers the next BDAT line 503 too, without
// reading its chunk, which it takes as commands while a server without that state (Postfix)
// frames it as a chunk. mailtap answers such a command itself, not forwarded, so no server
// reaches that state and every one reads the next chunk as a chunk. STARTTLS is answered by
// mailtap in any case. Decided by the transaction the server will have open, as for BDAT's chunk.
bool Dialogue::refuse_between_chunks(const Command& cmd, std::string_view line) {
  // Bare, and spelled from the line's first octet: Exim strips white space after the verb but
  // not before it, so " NOOP" is a bad command to it (Postfix tokenizes: a NOOP).
  const bool bare = cmd.args.empty() && iequals(line.substr(0, cmd.verb.size()), cmd.verb);
  switch (cmd.id) {
    case Verb::bdat:
    case Verb::starttls:
      return false;
    case Verb::rset:
    case Verb::quit:
      if (bare) return false;
      break;
    case Verb::noop:  // RFC 5321 lets NOOP carry a string, which both servers ignore there
      if (bare || is_plain_noop_with_parameter(line)) return false;
      break;
    default:
      break;
  }
  if (!bdat_transaction()) return false;
  // After a refused chunk (bdat_chunk_refused_) a BDAT ends the session: only RSET is advised.
  const bool chunk_refused = !bdat_chunk_refused_.empty();
  if (cmd.id == Verb::data) {
    record(client_line_event(Direction::client_to_mailtap, cmd, line));
    queue_local_reply(std::string("503 5.5.1 mailtap: DATA after BDAT in one transaction (RFC "
                                  "3030); not forwarded: ") +
                      std::string(chunk_refused
                                      ? kOnlyRsetAfterRefusedChunk
                                      : "end the message with BDAT <size> LAST, or RSET") +
                      "\r\n");
    return true;
  }
  std::string reply =
      std::string(
          "503 5.5.1 mailtap: only BDAT, RSET, NOOP or QUIT, without arguments (NOOP's "
          "may be printable ASCII words, one SP before each), may come between the "
          "chunks of a message (RFC 3030); not forwarded: ") +
      std::string(chunk_refused ? kOnlyRsetAfterRefusedChunk
                                : "end the message with BDAT <size> LAST, or drop it with RSET") +
      "\r\n";
  if (cmd.id == Verb::auth) {
    refuse_auth_line(line, std::move(reply));  // recorded redacted, as any AUTH line
    return true;
  }
  record(client_line_event(Direction::client_to_mailtap, cmd, line));
  queue_local_reply(std::move(reply));
  return true;
}

// A chunk that would take its transaction past the server's SIZE (less bdat_size_margin) is
// refused by mailtap, consumed and not forwarded: a server at its size limit may stop reading
// the chunk there and take the rest as commands (Exim 4.96 answers 552, then runs a hidden
// RSET/MAIL/RCPT/BDAT LAST in the chunk's tail), where mailtap would record chunk text. Under a
// SIZE mailtap cannot read, every chunk with octets is, as any may cross the limit (the guard
// fails closed). The server's transaction stays open, so until it accepts an RSET the client
// sent after this BDAT, a BDAT ends the session as after a chunk the server refused
// (bdat_chunk_refused_), and the transaction counts as begun with BDAT even when this was its
// first chunk: other commands are refused between chunks (refuse_between_chunks).
bool Dialogue::refuse_bdat_over_size(const Command& cmd, std::string_view line, std::uint64_t chunk,
                                     Transaction* transaction) {
  const std::uint64_t sent = transaction != nullptr ? transaction->message.size : 0;
  std::string reply;
  if (upstream_size_unreadable_) {
    if (chunk == 0) return false;
    reply =
        "552 5.3.4 mailtap: the server's EHLO reply gives a SIZE that mailtap cannot read as a "
        "number, so no chunk is forwarded, as a server may stop reading a chunk at its limit "
        "and take the rest as commands; BDAT chunk discarded: send RSET, then the message with "
        "DATA\r\n";
  } else {
    const std::optional<std::uint64_t> allowed = bdat_octets_allowed(upstream_size_);
    if (!allowed || sent + chunk <= *allowed) return false;
    // A SIZE no larger than the margin leaves no octet for BDAT: a smaller message cannot help.
    if (*allowed == 0)
      reply = "552 5.3.4 mailtap: the server's SIZE " + std::to_string(upstream_size_) +
              " leaves no room for BDAT through mailtap, which keeps " +
              std::to_string(bdat_size_margin(upstream_size_)) +
              " octets below it for the header fields the server adds; not forwarded, as a "
              "server may stop reading a chunk at its limit and take the rest as commands; BDAT "
              "chunk discarded: send RSET, then the message with DATA\r\n";
    else
      reply = "552 5.3.4 mailtap: this chunk would take the message to " +
              std::to_string(sent + chunk) + " octets, past the server's SIZE " +
              std::to_string(upstream_size_) + " less " +
              std::to_string(bdat_size_margin(upstream_size_)) +
              " for the header fields it adds; not forwarded, as a server may stop reading a chunk "
              "at its limit and take the rest as commands; BDAT chunk discarded: send RSET, then a "
              "smaller message\r\n";
  }
  record(client_line_event(Direction::client_to_mailtap, cmd, line));
  queue_local_reply(std::move(reply));
  if (chunk > 0) {
    mode_ = Mode::bdat_chunk;
    bdat_remaining_ = chunk;
    bdat_discard_ = true;
  }
  // Refused as the client's order reaches it: the replies to a MAIL or RSET sent before it may
  // still come, and say nothing of this chunk.
  if (transaction != nullptr) {
    refuse_chunks_until_reset(
        upstream_size_unreadable_ ? kMailtapRefusedChunkUnreadableSize : kMailtapRefusedChunk,
        commands_sent_);
    // The client began (or went on with) this message by BDAT, even when the server saw none of
    // it: a MAIL, RCPT or DATA sent now would land in the server's transaction that still waits
    // for this chunk (a RCPT adding a recipient of the next message to it, a DATA ending it
    // without the chunk), so they are refused between chunks, as after a forwarded chunk.
    transaction->message.via_bdat = true;
  }
  return true;
}

void Dialogue::refuse_chunks_until_reset(std::string_view why, std::uint64_t after) {
  bdat_chunk_refused_ = why;
  bdat_chunk_refused_after_ = after;
}

// The reply to a command the client pipelined ahead of a BDAT that mailtap refused itself comes
// after that refusal: the MAIL that opened the transaction whose chunk was refused, or an RSET
// before that MAIL. Its acceptance leaves the server holding that transaction without the chunk,
// so it must not end the refusal: a BDAT ... LAST let through then would end a message without
// it. Only what the client sent after the refusal starts anew.
void Dialogue::end_chunk_refusal(const Pending& p) {
  if (p.sequence > bdat_chunk_refused_after_) bdat_chunk_refused_ = {};
}

// Why BDAT is refused where CHUNKING is not known to be on: only "not advertised" is the
// upstream's doing; otherwise the client has yet to send the EHLO that would tell.
std::string Dialogue::bdat_refusal() const {
  constexpr std::string_view discarded = "; BDAT chunk discarded\r\n";
  constexpr std::string_view needs_ehlo =
      "503 5.5.1 mailtap: BDAT needs CHUNKING, which only the reply to EHLO offers";
  switch (chunking_) {
    case Chunking::after_starttls:
      return std::string(greet_again_reply).append(discarded);
    case Chunking::after_helo:
      return std::string(needs_ehlo)
          .append(" (this client greeted with HELO): send EHLO")
          .append(discarded);
    case Chunking::ungreeted:
      return std::string(needs_ehlo).append(": send EHLO first").append(discarded);
    case Chunking::not_advertised:
    case Chunking::advertised:
      break;
  }
  return "502 5.5.1 mailtap: the upstream did not advertise CHUNKING; BDAT chunk discarded: send "
         "the message with DATA\r\n";
}

// A BDAT held by handle_bdat goes on once no reply is awaited: the server's state is known.
bool Dialogue::release_held_bdat() {
  if (!held_bdat_ || awaiting_reply()) return false;
  const std::string line = std::exchange(held_bdat_, std::nullopt).value();
  const std::size_t first_event = events_.size();
  handle_bdat(parse_command(line), line);
  note_line_rewrites(std::exchange(held_bdat_rewrites_, {}), first_event);
  return true;
}

// Where the server will be when it reads a command sent now: its open transaction, changed by
// what the commands still awaiting their replies will do.
TransactionTracker::Forecast Dialogue::forecast_transaction() const {
  TransactionTracker::Forecast f(transactions_.active());
  for (const Pending& p : pending_) {
    if (p.kind == Pending::Kind::data_end) f.end();
    if (p.kind != Pending::Kind::command) continue;
    switch (p.command) {
      case Verb::mail:
        f.mail(p.transaction);
        break;
      case Verb::rset:
        f.rset(!parse_command(p.line).args.empty());
        break;
      case Verb::bdat:
        if (p.bdat_last) f.end();
        break;
      case Verb::ehlo:
      case Verb::helo:
        f.rset(/*with_arguments=*/true);  // may be refused; sync points, so never seen here
        break;
      default:
        break;
    }
  }
  return f;
}

// A command the upstream answers and mailtap only watches: relayed, its reply awaited in turn.
void Dialogue::relay_command(const Command& cmd, std::string_view line) {
  Event e = client_line_event(Direction::client_to_upstream, cmd, line);
  const bool redacted = e.redacted;
  std::string verb = e.verb;  // none when the whole line was kept out of the record
  record(std::move(e));
  forward(line);
  Pending p;
  p.verb = std::move(verb);  // the reply event names it
  p.command = cmd.id;
  switch (cmd.id) {
    case Verb::mail:
    case Verb::rcpt:
    case Verb::rset:
    case Verb::ehlo:
    case Verb::helo:
      p.line = std::string(strip_crlf(line));
      break;
    default:
      break;
  }
  // A message keeps its MAIL and RCPT lines as the record has them.
  if (redacted && (cmd.id == Verb::mail || cmd.id == Verb::rcpt))
    p.line = std::string(strip_crlf(without_credentials(line)));
  // Each MAIL asks for a transaction of its own; the server's replies say which one is open.
  if (cmd.id == Verb::mail) p.transaction = transactions_.begin(p.line, now_);
  // Between chunks a NOOP is a sync point: Exim answers a NOOP it reads together with the chunk
  // before it and more input behind it (a second NOOP) "503 only BDAT permissible after non-LAST
  // BDAT", and then takes the next chunk as commands. Its transaction marks it as between
  // chunks (see on_command_reply).
  if (cmd.id == Verb::noop) p.transaction = bdat_transaction();
  p.sync = is_sync_verb(cmd.id) || (cmd.id == Verb::noop && p.transaction);
  p.line_end = line_end_;
  if (!redacted) p.backspace = first_backspace(strip_crlf(line));
  if (cmd.id == Verb::quit) quit_sent_ = true;
  push_pending(std::move(p));
}

void Dialogue::handle_sasl_line(std::string_view line) {
  if (assistant_) {
    AssistedLine a = assistant_->response(strip_crlf(line));
    if (a.changed) {
      send_assisted_auth(std::move(a), /*response=*/true);
      return;
    }
  }
  send_client_auth(line, /*response=*/true);
}

// The client's AUTH line or SASL response (`wire`, CRLF included, as it goes upstream): recorded
// through the redactor, forwarded, and its reply awaited before anything else is read.
void Dialogue::send_client_auth(std::string_view wire, bool response) {
  record_client_auth(wire, response);
  forward(wire);
  await_client_auth_reply(response);
}

// The same for a line --assist-auth encoded from what the client typed: it holds the client's
// secret, so it goes upstream as a Secret piece (see UpstreamOutput), followed by the note
// saying what mailtap changed (which holds none).
void Dialogue::send_assisted_auth(AssistedLine assisted, bool response) {
  record_client_auth(assisted.line.view(), response);
  bytes_to_upstream_ += assisted.line.size();
  to_upstream_.append(std::move(assisted.line));
  await_client_auth_reply(response);
  note_rewrite("AUTH", std::move(assisted.note));
}

void Dialogue::record_client_auth(std::string_view wire, bool response) {
  RedactedLine r =
      response ? redactor_.client_response(strip_crlf(wire)) : redactor_.begin(strip_crlf(wire));
  record(auth_line_event(Direction::client_to_upstream, std::move(r), wire.size()));
}

void Dialogue::await_client_auth_reply(bool response) {
  Pending p;
  p.kind = response ? Pending::Kind::sasl : Pending::Kind::command;
  p.verb = "AUTH";
  p.command = Verb::auth;
  p.sync = true;
  push_pending(std::move(p));
}

bool Dialogue::read_data() {
  std::string segment;
  for (;;) {
    if (framer_.unread() == 0) {
      // A bare-CR client's line ends at its CR, whether an LF follows or not: its end of data
      // ends the message now, not when the client's next octet comes (a client that waits for
      // the 250, or closes, would otherwise lose the message).
      if (data_own_end_ != LineEnd::cr || !framer_.cr_held() || !data_dot_held_ ||
          !ends_message(data_prev_end_))
        return false;
      segment.clear();
      framer_.end_line_at_held_cr(segment);
      if (body_segment(segment, 1)) return true;
      continue;
    }
    // Most of a body is whole CRLF lines that leave mailtap nothing to decide: they go to the
    // upstream and the record as they are; the rest takes the line-by-line path.
    const bool line_start = data_line_len_ == 0 && !data_dot_held_;
    if (const std::string_view lines =
            line_start ? framer_.take_plain_lines(long_line_noted_) : std::string_view{};
        !lines.empty()) {
      const std::size_t n = lines.size();
      forward(lines);
      capture_body(lines, 0);
      answer_timing_marks(lines);
      data_body_offset_ += n;
      if (body_transaction_) TransactionTracker::add_body(*body_transaction_, n);
      data_prev_end_ = LineEnd::crlf;
      progress(n, /*complete=*/true);
      continue;
    }
    segment.clear();
    const std::size_t n = framer_.normalise_body(segment, data_own_end_);
    if (segment.empty()) {
      if (n == 0) return false;
      continue;
    }
    if (body_segment(segment, n)) return true;
  }
}

// Only the client's own kind of line ending can end its message: CRLF always, and a bare LF,
// bare CR or CR NUL when the DATA line itself ended that way (nc without -C, a terminal sending
// CR, a telnet NVT). CR NUL and a bare CR are different kinds: neither is the other's own.
bool Dialogue::ends_message(LineEnd end) const {
  return end == LineEnd::crlf || end == data_own_end_;
}

// One piece of canonical body text: a line, or part of one, ending in CRLF or not. A dot at
// the start of a line is where SMTP smuggling happens: a line "." ends the message, and a
// leading dot is removed by the server (RFC 5321 §4.5.2). So such a dot is forwarded only once
// the line shows what it is, and doubled when the client did not mean it that way.
// `wire_octets`: the client's octets `segment` was made of.
bool Dialogue::body_segment(std::string_view segment, std::size_t wire_octets) {
  const bool eol = segment.size() >= 2 && segment.compare(segment.size() - 2, 2, "\r\n") == 0;
  const LineEnd end = eol ? framer_.last_line_end() : LineEnd::none;
  const std::string_view content = segment.substr(0, segment.size() - (eol ? 2 : 0));
  const bool line_start = data_line_len_ == 0 && !data_dot_held_;
  if (line_start && content == "." && !eol) {
    data_dot_held_ = true;
    return false;
  }
  const bool dot_first = data_dot_held_ || (line_start && !content.empty() && content[0] == '.');
  // The octet after the line's leading dot: a NUL there ends the message for a server that
  // compares lines as C strings (see refuse_dot_nul_line). After a foreign line ending the dot
  // is doubled, and "..", as a C string, is no end for anyone.
  const std::size_t after_dot = data_dot_held_ ? 0 : 1;
  if (dot_first && ends_message(data_prev_end_) && segment.size() > after_dot &&
      segment[after_dot] == '\0') {
    // The line's dot (unless held from an earlier segment) and its NUL are recorded; the rest
    // of what was consumed with them is thrown away unread.
    client_octets_discarded_ += wire_octets - (after_dot + 1);
    refuse_dot_nul_line();
    return true;
  }
  if (dot_first) {
    if (dot_line(segment, end)) return true;
  } else {
    forward_body(segment, line_start);
  }
  if (eol) {
    data_line_len_ = 0;
    // "\r\r\n" ends in a real CRLF: a line "." after it ends the message, as at any server.
    data_prev_end_ = end == LineEnd::cr_crlf ? LineEnd::crlf : end;
  }
  return false;
}

// A body line that begins with a dot (held, or first in `segment`); `end`: how the client ended
// it, if `segment` ends it. True: it was the end of data.
bool Dialogue::dot_line(std::string_view segment, LineEnd end) {
  const bool eol = segment.size() >= 2 && segment.compare(segment.size() - 2, 2, "\r\n") == 0;
  const std::size_t text = segment.size() - (eol ? 2 : 0);
  const bool lone_dot = eol && text + (data_dot_held_ ? 1 : 0) == 1;
  // The line began after a line ending that cannot end the message: in the client's meaning it
  // continues the previous line, so a leading dot is text, not transparency.
  const bool after_foreign_end = !ends_message(data_prev_end_);
  if (lone_dot && ends_message(end) && !after_foreign_end) {
    data_dot_held_ = false;
    if (recording_failure_) {
      refuse_unrecordable_end();
      return true;
    }
    // A bare-CR client's end of data is not counted as a bare CR, whatever follows it: when its
    // CR ends the input it is acted on before the next octet shows what it was.
    if (end == LineEnd::cr) framer_.uncount_bare_cr();
    forward(".\r\n");  // the terminator: on the wire, not in the stored body
    capture_terminator();
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
  return false;
}

// A body line "." then NUL, begun after one of the client's own line endings: text for the
// client and for an RFC 5321 server (which stores ".<NUL>..."), but the end of data for a server
// that compares lines as C strings (OpenSMTPD: strcmp(line, ".")), which would take the message
// cut there and read the rest as commands (SMTP smuggling). No rewrite makes both read it alike
// (a doubled dot changes what an RFC server stores), and RFC 5321 text has no NUL, so nothing
// of the line goes upstream: the message is abandoned (no end of data) and the session ends.
void Dialogue::refuse_dot_nul_line() {
  flush_data_event();
  const std::string where = "at offset " + std::to_string(data_body_offset_) + " of the message";
  data_dot_held_ = false;
  Event e = body_note_event(EventKind::error, "body line \".\" followed by a NUL " + where +
                                                  " refused: servers that read lines as C "
                                                  "strings take it as the end of data");
  e.direction = Direction::client_to_mailtap;
  e.bytes = std::string(".\0", 2);
  e.wire_size = e.bytes.size();
  record(std::move(e));
  abandon_message("a body line \".\" followed by a NUL was refused");
  end_reading_client(
      "4.6.0 mailtap: message refused: a body line begins with \".\" and a NUL byte, which ends "
      "the message for servers that read lines as C strings while others read on (SMTP "
      "smuggling); nothing of that line or after it was sent and the message was not ended, so "
      "the server discards it; closing. Remove the NUL (or encode the body, e.g. base64) and "
      "send the message again",
      "client's body line \".\" followed by a NUL refused " + where +
          " (SMTP smuggling): the message was not sent");
}

// Forwards body text and records it; `line_start`: it begins a line (its leading dot, if any,
// is transparency, not stored by the server).
void Dialogue::forward_body(std::string_view bytes, bool line_start) {
  forward(bytes);
  const bool eol = bytes.size() >= 2 && bytes.compare(bytes.size() - 2, 2, "\r\n") == 0;
  const std::size_t line_len = data_line_len_ + bytes.size() - (eol ? 2 : 0);
  std::string_view stored = bytes;
  if (line_start && !stored.empty() && stored[0] == '.') stored.remove_prefix(1);
  capture_body(bytes, bytes.size() - stored.size());
  answer_timing_marks(bytes);
  data_body_offset_ += stored.size();
  if (body_transaction_) TransactionTracker::add_body(*body_transaction_, stored.size());
  if (line_len > 998 && !long_line_noted_) {
    long_line_noted_ = true;
    record(body_note_event(EventKind::note,
                           "message line longer than 1000 octets with CRLF (RFC 5321 §4.5.3.1.6); "
                           "forwarded unchanged"));
  }
  data_line_len_ = line_len;
  progress(bytes.size(), eol);
}

// Line-mode telnet sends Ctrl-C as IAC IP IAC DO TM and then shows nothing the server sends
// until its DO TM is answered: typed in a message, it would hide the 250 and the 221. The body is
// data and went on as it came (`body_text`, as relayed: one parse at mailtap and the server);
// each DO TM in it is answered IAC WONT TM at once, and recorded, after the text that held it,
// with what the person needs to know: Ctrl-C did not abort the message.
void Dialogue::answer_timing_marks(std::string_view body_text) {
  for (std::size_t n = body_timing_marks_.scan(body_text); n > 0; --n) {
    constexpr std::string_view wont_tm = "\xff\xfc\x06";
    emit_client(wont_tm);
    flush_data_event();  // the note follows the body text that asked
    Event e = make_event(Direction::mailtap_to_client, EventKind::note);
    e.verb = "DATA";
    if (const Transaction* t = body_transaction_.get()) e.transaction = t->message.transaction;
    e.bytes = std::string(wont_tm);
    e.wire_size = e.bytes.size();
    e.note =
        "telnet timing mark (IAC DO TM, sent with Ctrl-C) in the message body refused (IAC WONT "
        "TM), so that telnet shows the replies again. The interrupt went upstream as body octets "
        "and did not abort the message: it is sent when its end of data (a line \".\") comes. "
        "To abandon it, close the connection instead: a server discards a message whose end of "
        "data never came";
    record(std::move(e));
  }
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
  p.command = Verb::data;
  p.transaction = body_transaction_;  // its final reply ends it
  p.relayed_through = bytes_to_upstream_;
  push_pending(std::move(p));
}

// A line "." that would end the message for a server reading mailtap's CRLF text, but not for
// the client: its line endings are not both the client's own. Recorded with what the client
// sent and where, so that `mailtap audit` can list it.
void Dialogue::note_smuggling_shape(LineEnd before, LineEnd after) {
  flush_data_event();  // the note follows the body text it concerns
  std::string note =
      std::string(smuggling_shape_note_prefix) + std::string(escaped(before)) + "." +
      std::string(escaped(after)) + " at offset " + std::to_string(data_body_offset_) +
      " of the message: sent as \"..\", so it does not end the message (the DATA line "
      "ended in " +
      std::string(to_string(data_own_end_)) + "; only that or CRLF, around a lone \".\", ends it)";
  record(body_note_event(EventKind::rewrite, std::move(note)));
}

bool Dialogue::read_bdat_chunk() {
  const std::string_view chunk = framer_.take_chunk(bdat_remaining_);
  const std::size_t take = chunk.size();
  if (take == 0) return false;
  bdat_remaining_ -= take;
  progress(take, bdat_remaining_ == 0);
  // Recording failed while the last chunk is relayed: the rest of it is read, not sent, so the
  // server never has the whole message; its end is answered as an end of data would be.
  if (recording_failure_ && bdat_last_ && !bdat_discard_) bdat_withheld_ = true;
  if (!bdat_discard_ && !bdat_withheld_) {
    // Chunks are counted octets, binary-safe: no normalisation, no telnet handling.
    forward(chunk);
    capture_body(chunk, 0);
    if (body_transaction_) TransactionTracker::add_body(*body_transaction_, take);
  }
  if (bdat_remaining_ > 0) return false;
  if (bdat_withheld_) {
    refuse_unrecordable_end();
    return true;
  }
  close_body_events();
  bdat_last_ = false;
  mode_ = Mode::command;
  data_event_kind_ = EventKind::data;
  return true;
}

void Dialogue::on_client_input_exhausted() {
  if (ending_ || client_unreadable_ || paused_ || held_bdat_ || framer_.unread() > 0) return;
  if (relaying_body()) {
    // A client that closed only its sending side (nc -N with a file that lacks the final ".")
    // still reads: mailtap's 421 tells it why nothing was sent, where it would otherwise see
    // the 354 and then the end. One that hung up never gets it (the note after the end says so).
    const bool chunk = mode_ == Mode::bdat_chunk;
    abandon_message("client closed the connection inside a message body");
    abort(chunk ? "4.4.2 mailtap: the client closed its sending side inside a BDAT chunk (" +
                      std::to_string(bdat_remaining_) +
                      " of its octets were still to come); the message was not sent: send it "
                      "again, with as many octets after each BDAT line as its size says"
                : std::string("4.4.2 mailtap: the client closed its sending side inside the "
                              "message body (no end of data: a line with a single \".\" was "
                              "missing); the message was not sent: send it again, ending it with "
                              "a line holding only \".\""),
          {Ending::Kind::client_closed, "client closed inside a message body"});
    return;
  }
  if (framer_.partial_line() > 0) {
    record(note_event(EventKind::note, {},
                      "client closed after an unterminated line of " +
                          std::to_string(framer_.partial_line()) + " octets; not forwarded"));
    framer_.drop_partial_line();
  }
  if (quit_sent_) return;            // the QUIT reply ends the dialogue
  if (awaiting_group_end()) return;  // the QUIT goes once that reply came (upstream_bytes)
  quit_for_client("client closed the connection");
}

// A command that ends a pipelined group (ends_group) still awaits its reply: mailtap's own QUIT
// may not go behind it yet. Nor behind a chunk without LAST (chunk_reply_pending).
bool Dialogue::awaiting_group_end() const {
  return chunk_reply_pending() ||
         std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) {
           return p.kind == Pending::Kind::command && ends_group(p.command);
         });
}

// A chunk without LAST went upstream and its reply has not come. A server may stop reading it
// short of its end (at a size limit below the SIZE it advertised: Exim computes its limit per
// message) and run the rest as commands; a hidden "BDAT <n> LAST" there would take the lines
// sent behind the chunk as its own chunk, and the replies would still match mailtap's commands
// in number. So nothing goes upstream behind such a chunk before its reply, neither the client's
// lines nor mailtap's QUIT: replies to a tail run as commands then answer no command mailtap
// sent, and end the session as out of step.
bool Dialogue::chunk_reply_pending() const {
  return std::any_of(pending_.begin(), pending_.end(), [](const Pending& p) {
    return p.kind == Pending::Kind::command && p.command == Verb::bdat && !p.bdat_last;
  });
}

// Where the server reads a QUIT as a command: between commands (an AUTH exchange is cancelled
// first), not behind one it has yet to answer that makes it read what follows as something
// else (paused_: DATA, AUTH, EHLO) or that ends a pipelined group, nor inside a body.
bool Dialogue::can_quit_for_client() const {
  return (mode_ == Mode::command || mode_ == Mode::sasl) && !paused_ && !quit_sent_ &&
         !awaiting_group_end();
}

void Dialogue::quit_for_client(std::string_view why) {
  quit_sent_ = true;
  if (mode_ == Mode::sasl) {
    // The upstream waits for a SASL response and would read "QUIT" as one: cancel the exchange
    // first (RFC 4954 "*"), then quit.
    send_own_line("*\r\n", EventKind::auth,
                  std::string(why) + " during AUTH; mailtap cancels the exchange",
                  Expect::own_cancel, /*sync=*/false);
    mode_ = Mode::command;
  }
  send_own_line("QUIT\r\n", EventKind::command,
                std::string(why) + "; mailtap ends the upstream session politely", Expect::own_quit,
                /*sync=*/false);
}

// Not at a sync point (paused_): the server has yet to answer a command after which it reads
// something other than a command (DATA's body, an AUTH line's SASL response), or one that
// changes what it is (EHLO), and a QUIT pipelined behind it would be read as that. Nor behind
// any other group end (awaiting_group_end: a NOOP, a VRFY), improper pipelining to a strict
// server. The dialogue ends at once: no reply is waited for, the client being gone.
void Dialogue::client_not_reading(std::string_view limit) {
  if (ending_) return;
  const std::string what = "the client did not read its replies for " + std::string(limit);
  record(note_event(EventKind::note, {},
                    what + ": mailtap dropped the connection, as a 421 would have waited unread "
                           "behind them"));
  discard_unread_client_input();
  if (relaying_body())
    abandon_message(what + " inside a message body");
  else if (can_quit_for_client())
    quit_for_client(what);
  finish(Ending::Kind::timeout, "client did not read its replies in time");
}

// ---- upstream side -----------------------------------------------------------------------

void Dialogue::upstream_bytes(std::string_view bytes) {
  if (ending_) return;
  // A reply line ends in LF (CRLF, or leniently a bare LF): see ReplyParser.
  upstream_progress_ += static_cast<std::uint64_t>(std::count(bytes.begin(), bytes.end(), '\n'));
  replies_.feed(bytes);
  while (!ending_) {
    std::optional<Reply> reply = replies_.next();
    if (!reply) break;
    ++upstream_replies_;
    if (!pending_.empty()) note_answered(pending_.front());
    on_reply(std::move(*reply));
  }
  // A line of a reply not yet complete answers the command first in line all the same.
  if (!ending_ && !pending_.empty() && replies_.line_buffered()) note_answered(pending_.front());
  if (!ending_ && replies_.error() != ReplyParser::Error::none) {
    const bool malformed = replies_.error() == ReplyParser::Error::malformed;
    if (malformed) record_malformed_reply();
    // "upstream sent ...", with the server named and what to do, as for a reply out of step.
    std::string_view what = replies_.error_text();
    what.remove_prefix(std::min(what.size(), std::string_view("upstream ").size()));
    abort("4.5.0 mailtap: " + options_.upstream_label + " " + std::string(what) +
              (malformed ? " (" + replies_.malformed_reason() + ")" : std::string()) +
              "; closing. Start a new session; if this recurs, tell the server's operator",
          {Ending::Kind::error, std::string(replies_.error_text())});
    return;
  }
  process_client();
  end_if_unrecordable();
}

// What the server sent as a reply that is none (a line without a code, a continuation with
// another code): in the record as it came, since the session ends on it and it was not relayed.
void Dialogue::record_malformed_reply() {
  record_unrelayed_reply(replies_.malformed_octets(),
                         "malformed reply (" + replies_.malformed_reason() +
                             "): not relayed, and the session was closed");
}

// What the server had sent of a reply it never finished when the session ended (it closed,
// reset, went silent, sent a line or a reply too long): never relayed, but the best evidence
// there is of what it was saying ("250 2.0.0 Ok queu" to an end of data), so kept as it came.
void Dialogue::record_unfinished_reply(std::string_view ending_reason) {
  if (replies_.error() == ReplyParser::Error::malformed) return;  // recorded as such
  std::string raw = replies_.take_buffered();
  if (raw.empty()) return;
  if (replies_.error() == ReplyParser::Error::none) {
    record_unrelayed_reply(raw, "not a whole reply when the session ended (" +
                                    std::string(ending_reason) + "): not relayed");
    return;
  }
  // Too long: how much had come when that showed depends on how the reads fell, and the
  // rest says nothing more. A start of the same size every time.
  constexpr std::size_t kept = 1024;
  raw.resize(std::min(raw.size(), kept));
  record_unrelayed_reply(raw, std::string(replies_.error_text()) + ": its first " +
                                  std::to_string(raw.size()) + " octets, not relayed");
}

void Dialogue::record_unrelayed_reply(std::string_view raw, std::string note) {
  Event e = make_event(Direction::upstream_to_mailtap, EventKind::reply);
  if (raw.size() >= 3 &&
      std::all_of(raw.begin(), raw.begin() + 3, [](char c) { return c >= '0' && c <= '9'; }))
    e.reply_code = (raw[0] - '0') * 100 + (raw[1] - '0') * 10 + (raw[2] - '0');
  e.bytes = std::string(raw);
  e.wire_size = raw.size();
  // A server that echoes a credential (see reply_event) may be cut off in the middle of it.
  if (keep_credentials_out(e, raw, "the reply")) note += "; " + e.note;
  e.note = std::move(note);
  record(std::move(e));
}

void Dialogue::note_answered(const Pending& p) {
  upstream_answered_through_ = std::max(upstream_answered_through_, p.queued_through);
}

void Dialogue::upstream_closed(std::string_view tls_reason, bool reset) {
  if (ending_) return;
  if (!tls_reason.empty()) {
    upstream_failed("4.7.0", tls_reason);
    return;
  }
  flush_data_event();
  // Closed with an end of data unanswered: the server had the whole message and may have
  // queued it, as when it does not answer in time, and the 421 says so in the same words.
  const bool after_end = end_of_data_unanswered();
  // Inside a body the server got no end of data, so it discards the message: it may go again.
  const std::string hint = after_end ? "; " + std::string(may_have_the_message)
                           : relaying_body()
                               ? "; the message was not delivered (no end of data reached the "
                                 "server): send it again"
                               : std::string();
  const std::string reason_hint =
      after_end ? std::string(may_have_the_message_reason) : std::string();
  const std::string how = std::string(reset ? "reset the connection" : "closed the connection") +
                          (after_end ? " after the end of data" : "");
  abort("4.4.2 mailtap: " + options_.upstream_label + " " + how + hint,
        {Ending::Kind::upstream_closed, "upstream " + how + reason_hint});
}

void Dialogue::upstream_sent_plain_text(std::string_view quoted) {
  if (ending_) return;
  upstream_failed("4.4.2",
                  std::string(upstream_plain_text_phrase) + ": \"" + std::string(quoted) + "\"");
}

void Dialogue::upstream_failed(std::string_view status, std::string_view phrase) {
  flush_data_event();
  const bool after_end = end_of_data_unanswered();
  const std::string reason = options_.upstream_label + " " + std::string(phrase) +
                             (after_end ? ", after the end of data" : "");
  abort(std::string(status) + " mailtap: " + reason +
            (after_end ? "; " + std::string(may_have_the_message) : std::string()),
        {Ending::Kind::upstream_closed,
         reason + (after_end ? std::string(may_have_the_message_reason) : std::string())});
}

void Dialogue::on_reply(Reply reply) {
  bytes_from_upstream_ += reply.raw.size();
  Relayed out{reply_event(reply), reply.raw, std::nullopt};

  if (pending_.empty()) {
    on_unsolicited_reply(reply, out);
    return;
  }

  Pending p = std::move(pending_.front());
  pending_.pop_front();
  out.event.verb = p.verb;
  const bool after_refused_chunk = refused_chunk_answered_;
  refused_chunk_answered_ =
      p.kind == Pending::Kind::command && p.command == Verb::bdat && reply.code >= 400;
  if (replied_before_chunk(p)) {
    refuse_early_bdat_reply(reply, std::move(out.event));
    return;
  }
  const bool end_of_data = p.kind == Pending::Kind::data_end;
  if (const std::string_view why = impossible_reply(p.command, end_of_data, reply.code);
      !why.empty()) {
    const bool sasl_response = p.kind == Pending::Kind::sasl || p.kind == Pending::Kind::own_cancel;
    const std::string answered = end_of_data     ? std::string("the end of data")
                                 : sasl_response ? std::string("a SASL response")
                                                 : p.verb;
    refused_chunk_answered_ = after_refused_chunk;  // this reply may answer the chunk's text
    refuse_out_of_step_reply(reply, std::move(out.event),
                             "answered " + answered + " with " + std::to_string(reply.code), why);
    return;
  }

  switch (p.kind) {
    case Pending::Kind::own_quit:
    case Pending::Kind::own_cancel:
      on_own_end_reply(p, reply, std::move(out.event));
      return;
    case Pending::Kind::own_ehlo:
    case Pending::Kind::own_auth:
      on_own_reply(p, reply, std::move(out.event));
      return;
    case Pending::Kind::sasl:
      if (reply.code == 334) {
        sasl_challenge(reply, out);
      } else {
        sasl_end(reply);
        mode_ = Mode::command;
      }
      break;
    case Pending::Kind::data_end:
      record_message(p.transaction, reply);
      break;
    case Pending::Kind::command:
      if (on_command_reply(p, reply, out)) return;
      break;
    case Pending::Kind::local:
      break;  // locals never wait at the head: flush_local_replies emits them at once
  }
  if (p.sync) paused_ = false;
  explain_certificate_refusal(reply, /*unsolicited=*/false, out);
  record(std::move(out.event));
  if (out.rewrite) record(std::move(*out.rewrite));
  note_backspace_refused(p, reply);
  emit_reply(out.to_client, reply.raw.size());
  if (out.withhold_echo) withhold_echo();
  if (std::optional<Ending> ending = ending_by_reply(p, reply)) {
    finish(ending->kind, std::move(ending->reason));
    return;
  }
  flush_local_replies();
}

// Whether the reply relayed for `p` ends the session: the reply to QUIT, and any reply after
// which the server closes (Reply::closes_session). The dialogue finishes on it, so the session
// holds it back, with everything after it, until the closing record is committed, as it does
// every last reply (docs/recording.md, "Guarantees"): a 221 the client saw is never one the
// record lacks.
std::optional<Ending> Dialogue::ending_by_reply(const Pending& p, const Reply& reply) const {
  if (p.kind == Pending::Kind::command && p.command == Verb::quit) {
    // The client closed before this 221 (see client_closed): the session ended by its close.
    if (client_eof_)
      return Ending{Ending::Kind::client_closed,
                    client_closed_before_quit_reply(first_line(reply))};
    return Ending{Ending::Kind::quit, first_line(reply)};
  }
  if (reply.closes_session()) return Ending{Ending::Kind::upstream_closed, closing_reason(reply)};
  return std::nullopt;
}

// A reply while no command awaits one, as the server sees it: a command mailtap has not
// forwarded yet (held behind a sync point) is none it could be answering. Inside a message body
// a 4yz or 5yz is a server refusing the message before its end (a size limit, a filter, a 421
// shutdown) and, as a rule, closing: that one is the client's to see, and nothing more of the
// body may go (see on_body_refused). Elsewhere a 421 may come at any time (RFC 5321 §3.8):
// relayed, and the session ends. Anything else is out of step (every reply answers one command,
// §4.2): relayed, the client would read it as the answer to its next command, and every reply
// after it would be one off.
void Dialogue::on_unsolicited_reply(const Reply& reply, Relayed& out) {
  if (relaying_body() && reply.code >= 400) {
    on_body_refused(reply, out);
    return;
  }
  if (reply.code == 421) {
    out.event.note = "unsolicited reply";
    explain_certificate_refusal(reply, /*unsolicited=*/true, out);
    record(std::move(out.event));
    if (out.rewrite) record(std::move(*out.rewrite));
    emit_reply(out.to_client, reply.raw.size());
    finish(Ending::Kind::upstream_closed, closing_reason(reply));
    return;
  }
  const std::string code = std::to_string(reply.code);
  if (!relaying_body()) {
    refuse_out_of_step_reply(reply, std::move(out.event),
                             "replied " + code + " when no command awaited a reply",
                             "every reply answers one command (RFC 5321 §4.2); only a 421 may "
                             "come unasked");
    return;
  }
  refuse_out_of_step_reply(reply, std::move(out.event),
                           "replied " + code + " while the message body was still being sent",
                           "no command awaited a reply: the end of data was not sent yet");
}

// A 421 that is the server's first reply, from a server that asked for a client certificate in
// its TLS handshake, may be its refusal of what mailtap presented there (or of its absence):
// Postfix (smtpd_tls_req_ccert) completes the handshake and then says "421 4.7.1 ... Client
// certificate not trusted". Only plausibly so when it came unasked, before any command of the
// client's, or says "certificate": a 421 answering the client's EHLO for another reason (a
// shutdown, too many connections) is not blamed on the certificate. The client is told what
// mailtap knows of it in last lines of mailtap's own ("421 4.7.1 mailtap: HOST:PORT asked for a
// client certificate ...", split into lines of at most 512 octets: reply_lines): the server's
// lines stay as sent but for the continuation mark of its last one. Recorded as the EHLO
// filter's rewrite is: the server's reply as received, then a rewrite event with what the client
// got.
void Dialogue::explain_certificate_refusal(const Reply& reply, bool unsolicited, Relayed& out) {
  if (reply.code != 421 || upstream_replies_ != 1 || options_.certificate_request_note.empty())
    return;
  if (!unsolicited && !mentions_certificate(reply)) return;
  std::string bytes = reply.raw;
  // The last line's start: after the line end before the one that ends the reply.
  const std::size_t before_end =
      bytes.size() >= 2 ? bytes.rfind('\n', bytes.size() - 2) : std::string::npos;
  const std::size_t last = before_end == std::string::npos ? 0 : before_end + 1;
  if (bytes.size() < last + 3) return;  // no reply the parser passes
  if (bytes.size() > last + 3 && bytes[last + 3] == ' ')
    bytes[last + 3] = '-';
  else
    bytes.insert(last + 3, "-");  // "421" alone on its line
  const std::string status = reply.enhanced_status.empty() ? "4.7.0" : reply.enhanced_status;
  bytes += reply_lines("421", status + " mailtap: " + options_.upstream_label + " " +
                                  options_.certificate_request_note);
  out.to_client = bytes;
  out.rewrite = rewrite_event(out.event.verb, std::move(bytes),
                              "the server asked for a client certificate in the TLS handshake and "
                              "ended the session at once: mailtap's reason added as the last line");
  certificate_refusal_explained_ = true;
}

// Why a 421 from the server ended the session, for the record and the log.
std::string Dialogue::closing_reason(const Reply& reply) const {
  std::string reason = "upstream: " + first_line(reply);
  if (certificate_refusal_explained_)
    reason += "; " + options_.upstream_label + " " + options_.certificate_request_note;
  return reason;
}

// A 4yz or 5yz while the body is still being sent ("552 5.3.4 Message size exceeds fixed
// limit", "421 4.3.2 shutting down"): the server refuses the message without waiting for its
// end. Relayed as the server sent it, so the client sees a permanent failure as permanent and
// does not retry it; nothing more of the body goes upstream, not even what the session has
// queued for it (the server no longer reads it as a message, and may read it as commands), and
// the upstream is closed without a QUIT or an end of data, so the message is discarded and has
// no row. The session ends as any upstream close does (upstream_closed).
void Dialogue::on_body_refused(const Reply& reply, Relayed& out) {
  flush_data_event();
  out.event.note =
      "reply while the message body was still being sent; relayed, the rest of the body was not "
      "sent and the upstream was closed without an end of data";
  record(std::move(out.event));
  emit_reply(out.to_client, reply.raw.size());
  abandon_upstream_now(/*drop_queued=*/true);
  finish(Ending::Kind::upstream_closed, "upstream: " + first_line(reply));
}

// A reply that cannot answer what it is matched with (see impossible_reply): mailtap and the
// upstream are out of step, and any further reply or client byte would be read differently by
// each. Not relayed: the client would take it as the answer to its command. The session ends
// and the upstream is closed without a QUIT (inside a body, the server would read QUIT as
// text), so an open message gets no end of data: the server discards it, and the record holds
// no message for it.
void Dialogue::refuse_out_of_step_reply(const Reply& reply, Event e, std::string what,
                                        std::string_view why) {
  e.direction = Direction::upstream_to_mailtap;
  e.note = "impossible reply: " + std::string(why) +
           "; replies are out of step with commands, so it was not relayed and the session was "
           "closed";
  bytes_from_upstream_ -= reply.raw.size();
  record(std::move(e));
  abandon_upstream_now(/*drop_queued=*/true);
  if (refused_chunk_answered_) {
    // servers-F1: Exim at its size limit answers a chunk 552 and reads the rest of it as
    // commands, whose replies come next: those commands may have ended a message of their own.
    abort("4.5.0 mailtap: " + options_.upstream_label + " " + what +
              " right after refusing a BDAT chunk, which SMTP does not allow: it may have read "
              "the rest of that chunk as commands, and a message they sent is in no record; "
              "closing. Start a new session; ask the server's operator what it queued from this "
              "session",
          {Ending::Kind::error, "upstream " + what +
                                    " after refusing a BDAT chunk (it may have "
                                    "read the rest of the chunk as commands): " +
                                    std::string(why)});
    return;
  }
  abort("4.5.0 mailtap: " + options_.upstream_label + " " + what +
            ", which SMTP does not allow, so its replies no longer match the commands sent; "
            "closing without ending any open message. Start a new session; if this recurs, "
            "tell the server's operator",
        {Ending::Kind::error, "upstream " + what + ": " + std::string(why)});
}

// True if this is the reply to the BDAT whose chunk is still being relayed: the upstream
// answered without reading the chunk, so it would take the rest of it as commands.
bool Dialogue::replied_before_chunk(const Pending& p) const {
  return p.kind == Pending::Kind::command && p.command == Verb::bdat && pending_.empty() &&
         mode_ == Mode::bdat_chunk && !bdat_discard_;
}

bool Dialogue::awaiting_chunk() const {
  if (pending_.size() != 1) return false;
  const Pending& p = pending_.front();
  return p.kind == Pending::Kind::command && p.command == Verb::bdat && mode_ == Mode::bdat_chunk &&
         !bdat_discard_;
}

// Not relayed (a 250 there would tell the client its chunk arrived) and nothing more is sent
// upstream: client bytes that a server takes as commands are SMTP smuggling.
void Dialogue::refuse_early_bdat_reply(const Reply& reply, Event e) {
  e.direction = Direction::upstream_to_mailtap;
  e.note = "reply to BDAT before its chunk was relayed; not relayed";
  bytes_from_upstream_ -= reply.raw.size();
  record(std::move(e));
  abandon_upstream_now(/*drop_queued=*/true);
  abort("4.5.0 mailtap: " + options_.upstream_label +
            " answered BDAT before its chunk was sent, so it could read the rest of the chunk "
            "as commands; closing. Use DATA with this server",
        {Ending::Kind::error, "upstream answered BDAT before its chunk was sent"});
}

// The reply to mailtap's own QUIT or "*" for a client that is gone: recorded, not relayed.
void Dialogue::on_own_end_reply(const Pending& p, const Reply& reply, Event e) {
  e.direction = Direction::upstream_to_mailtap;
  bytes_from_upstream_ -= reply.raw.size();  // not relayed: the client is gone
  if (p.kind == Pending::Kind::own_quit) {
    record(std::move(e));
    finish(Ending::Kind::client_closed, "client closed the connection");
    return;
  }
  redactor_.finish(reply.code);
  record(std::move(e));
  if (reply.closes_session())
    finish(Ending::Kind::upstream_closed, "upstream: " + first_line(reply));
}

// The reply to a client's command (not a SASL response, not an end of data). True: it was
// fully handled (held back for mailtap's own AUTH).
bool Dialogue::on_command_reply(Pending& p, const Reply& reply, Relayed& out) {
  const bool positive = reply.positive_completion();
  switch (p.command) {
    case Verb::ehlo:
    case Verb::helo:
      return on_greeting_reply(p, reply, out);
    case Verb::mail:
      transactions_.mail_reply(p.transaction, positive);
      if (positive) end_chunk_refusal(p);  // a server waiting for RSET refuses MAIL
      break;
    case Verb::rcpt:
      transactions_.rcpt_reply(Recipient{p.line, reply.code, std::string(strip_crlf(reply.raw))});
      break;
    case Verb::data:
      if (reply.code == 354) begin_body(p);
      break;
    case Verb::auth:
      if (reply.code == 334) {
        sasl_challenge(reply, out);
      } else {
        sasl_end(reply);
      }
      break;
    case Verb::rset:
      if (positive) {
        transactions_.reset();
        end_chunk_refusal(p);
      }
      break;
    case Verb::bdat:
      // The server ends the transaction it has open (the one the chunks were recorded for:
      // handle_bdat waits for the replies that would leave that in doubt).
      if (p.bdat_last) record_message(transactions_.active(), reply);
      if (!p.bdat_last && p.transaction && !positive)
        refuse_chunks_until_reset(kServerRefusedChunk, p.sequence);
      break;
    case Verb::noop:
      // A NOOP refused between chunks may have put the server where a refused chunk does
      // (Exim's "only RSET accepted now": it reads the next chunk as commands).
      if (p.transaction && !positive) refuse_chunks_until_reset(kServerRefusedNoop, p.sequence);
      break;
    default:
      break;
  }
  return false;
}

// The reply to EHLO or HELO. True: held back while mailtap authenticates (--auth-user).
bool Dialogue::on_greeting_reply(const Pending& p, const Reply& reply, Relayed& out) {
  if (greet_again_from_earlier_reply(p, reply, out)) return false;
  const bool positive = reply.positive_completion();
  if (positive) {
    accepted_greeting_ = AcceptedGreeting{p.command, reply};
    greet_again_ = false;
    // RFC 5321 §4.1.4: EHLO/HELO reset the transaction state
    transactions_.reset();
    end_chunk_refusal(p);
    const Capabilities caps = p.command == Verb::ehlo ? parse_capabilities(reply) : Capabilities{};
    chunking_ = p.command == Verb::helo ? Chunking::after_helo
                : caps.chunking         ? Chunking::advertised
                                        : Chunking::not_advertised;
    upstream_size_ = caps.size;
    upstream_size_unreadable_ = caps.size_unreadable;
  }
  if (hold_for_login(p, reply, positive)) {
    // mailtap authenticates first; the client gets this reply when it is done.
    record(std::move(out.event));
    start_login(p);
    return true;
  }
  if (p.command == Verb::ehlo && positive) {  // a refusal lists no extensions: relay it as is
    bool removed = false;
    out.to_client = client_ehlo_reply(reply, removed);
    if (options_.phase == Phase::plain && parse_capabilities(reply).starttls)
      starttls_offered_in_plain_ = true;
    if (removed) out.rewrite = rewrite_event("EHLO", out.to_client, ehlo_rewrite_note());
  } else if (p.command == Verb::helo && positive) {
    bool changed = false;
    out.to_client = client_helo_reply(reply, changed);
    if (changed) out.rewrite = rewrite_event("HELO", out.to_client, helo_rewrite_note());
  }
  return false;
}

// The server accepted DATA (354): what the client sends next is the body, until its end.
void Dialogue::begin_body(const Pending& p) {
  mode_ = Mode::data;
  data_own_end_ = p.line_end;
  data_prev_end_ = p.line_end;
  data_line_len_ = 0;
  data_dot_held_ = false;
  data_body_offset_ = 0;
  body_timing_marks_.reset();
  data_event_kind_ = EventKind::data;
  body_transaction_ = transactions_.active();  // replies come in order: the server's own
  long_line_noted_ = false;
}

void Dialogue::sasl_challenge(const Reply& reply, Relayed& out) {
  RedactedLine r = redactor_.server_challenge(strip_crlf(reply.raw));
  out.event.kind = EventKind::auth;
  if (r.redacted) {
    out.event.bytes = r.text + "\r\n";
    out.event.redacted = true;
  }
  out.event.note = std::move(r.decoded);
  mode_ = Mode::sasl;
  if (!assistant_) return;
  if (std::optional<AssistedChallenge> shown = assistant_->challenge(reply)) {
    out.to_client = std::move(shown->line);
    out.rewrite = rewrite_event("AUTH", out.to_client, std::move(shown->note));
    out.withhold_echo = shown->password_prompt;
  }
}

void Dialogue::sasl_end(const Reply& reply) {
  restore_echo("the AUTH exchange ended");
  redactor_.finish(reply.code);
  if (reply.code != 235) distrust_early_lines();
  if (!assistant_) return;
  if (assistant_->oauth_in_progress()) assist_token_refused_ = reply.code != 235;
  assistant_->finish();
}

// ---- transactions ------------------------------------------------------------------------

void Dialogue::record_message(const TransactionTracker::Handle& t, const Reply& final_reply) {
  std::optional<Message> m = transactions_.finish(t, final_reply, now_);
  if (!m) return;
  if (m->recipients_left_out->rcpts > 0) {
    Event e = note_event(EventKind::note, "RCPT", recipients_left_out_note(*m));
    e.transaction = m->transaction;
    record(std::move(e));
  }
  if (m->final_code >= 200 && m->final_code < 300) {
    ++messages_accepted_;
    last_accepted_reply_ = m->final_reply;
  }
  messages_.push_back(std::move(*m));
}

// Replies come in order, so what is still pending when the session ends never got its reply.
// An end whose octets were dropped unwritten (upstream_output_dropped) never reached the
// server: that message it discarded, as one the client left inside.
std::vector<Message> Dialogue::unanswered_messages() const {
  std::vector<Message> out;
  for (const Pending& p : pending_) {
    const bool end = p.kind == Pending::Kind::data_end ||
                     (p.kind == Pending::Kind::command && p.command == Verb::bdat && p.bdat_last);
    const Transaction* t = p.transaction.get();
    if (!end || t == nullptr || t->settled || p.relayed_through > bytes_to_upstream_) continue;
    out.push_back(t->message);  // final_code 0, no final_reply, no finished: none came
  }
  return out;
}

}  // namespace mailtap::smtp
