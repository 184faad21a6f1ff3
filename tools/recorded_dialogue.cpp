#include "tools/recorded_dialogue.hpp"

#include <algorithm>
#include <deque>

#include "proxy/common/text.hpp"
#include "proxy/smtp/command.hpp"

namespace mailtap::tools {

std::string ClientStep::summary() const {
  if (kind == smtp::EventKind::data || kind == smtp::EventKind::bdat_chunk)
    return "<" + std::to_string(body_octets()) + " octets of message " +
           (kind == smtp::EventKind::data ? "body>" : "chunk>");
  if (kind == smtp::EventKind::error) return "<refused line>";
  if (!shown.empty()) return shown;
  return std::string(strip_crlf(bytes));
}

std::string RecordedReply::first_line() const {
  const std::string_view v = client_view.empty() ? std::string_view(raw) : client_view;
  return std::string(strip_crlf(v.substr(0, v.find('\n'))));
}

int RecordedReply::client_code() const {
  if (client_view.size() < 3) return code;
  const int read = std::atoi(client_view.substr(0, 3).c_str());
  return read > 0 ? read : code;
}

namespace {

// The octets a step puts on the wire: its filled or recorded line, or its octets in the body file.
std::size_t octets_to_send(const ClientStep& s) {
  return s.file_offset ? s.file_length : s.wire().size();
}

}  // namespace

bool RecordedDialogue::next_flight_piece(const Flight& f, FlightCursor& at, smtp::Secret& out,
                                         std::string& error) const {
  std::size_t size = 0;
  for (FlightCursor c = at; !c.done(f) && size < kFlightPieceOctets; ++c.step, c.offset = 0)
    size += std::min(octets_to_send(client[f.steps[c.step]]) - c.offset, kFlightPieceOctets - size);
  out = smtp::Secret(size);
  std::string stored;
  while (!at.done(f) && out.room() > 0) {
    const ClientStep& s = client[f.steps[at.step]];
    const std::size_t n = std::min(octets_to_send(s) - at.offset, out.room());
    if (!s.file_offset) {
      out.append(s.wire().substr(at.offset, n));
    } else if (!read_stored) {
      error = "event " + std::to_string(s.seq) + ": its body octets cannot be read";
      return false;
    } else {
      if (!read_stored(s, at.offset, n, stored, error)) return false;
      out.append(stored);
    }
    at.offset += n;
    if (at.offset == octets_to_send(s)) {
      ++at.step;
      at.offset = 0;
    }
  }
  // Steps with nothing to send (none are recorded empty, but no piece should stop at one).
  while (!at.done(f) && octets_to_send(client[f.steps[at.step]]) == 0) ++at.step;
  return true;
}

namespace {

bool is_body(smtp::EventKind kind) {
  return kind == smtp::EventKind::data || kind == smtp::EventKind::bdat_chunk;
}

// A BDAT line mailtap answered itself (the upstream did not advertise CHUNKING, or the client
// had sent HELO): mailtap read and dropped its chunk unrecorded, so the client's octets behind
// the line are not in the record, and a Dialogue given the line would wait for them.
std::string discarded_chunk(const storage::EventRow& row, const std::string& where) {
  const smtp::Event& e = row.event;
  if (e.direction != smtp::Direction::client_to_mailtap || e.kind != smtp::EventKind::command ||
      e.verb != "BDAT")
    return {};
  const smtp::BdatArgs args = smtp::parse_bdat_line(e.bytes);
  // Today a line the strict parse refuses ends the session with no chunk behind it, but an
  // older mailtap read lenient spellings ("BDAT\t10") as a size and discarded that many
  // octets unrecorded: which of the two the record holds cannot be told.
  if (!args)
    return where +
           "mailtap answered the client's BDAT itself, and its line is not RFC 3030's strict "
           "form: a chunk behind it may have been discarded unrecorded; it cannot be sent again";
  if (args.size == 0) return {};  // no chunk follows
  return where + "mailtap answered the client's BDAT itself and discarded its chunk of " +
         std::to_string(args.size) + " octets unrecorded; it cannot be sent again";
}

// Why a client event cannot be sent again, or empty if it can: a refused line was not recorded,
// a body was not kept in full, or the client spoke before the greeting.
std::string why_not_replayable(const storage::EventRow& row, bool greeted, RefusedLines refused,
                               PartialBodies partial) {
  const smtp::Event& e = row.event;
  const std::string where = "event " + std::to_string(row.seq) + ": ";
  if (e.kind == smtp::EventKind::error && refused == RefusedLines::cannot_be_sent)
    return where + "the client sent a line mailtap refused and did not record (" + e.note +
           "); it cannot be sent again";
  const std::size_t recorded = row.file_offset ? static_cast<std::size_t>(row.file_length)
                                               : e.bytes.size();  // BodyOctets::leave_past_inline
  if (is_body(e.kind) && recorded != e.wire_size && partial == PartialBodies::cannot_be_sent)
    return where + "only " + std::to_string(recorded) + " of " + std::to_string(e.wire_size) +
           " body octets were recorded";
  if (!greeted) return where + "client bytes before any greeting";
  if (refused == RefusedLines::cannot_be_sent) return discarded_chunk(row, where);
  return {};
}

ClientStep client_step(const storage::EventRow& row) {
  const smtp::Event& e = row.event;
  ClientStep step;
  step.seq = row.seq;
  step.direction = e.direction;
  step.kind = e.kind;
  step.verb = e.verb;
  step.bytes = e.bytes;
  step.file_offset = row.file_offset;
  step.file_length = static_cast<std::size_t>(row.file_length);
  step.row_id = row.row_id;
  step.wire_size = e.wire_size;
  step.redacted = e.redacted;
  step.note = e.note;
  return step;
}

// A reply the client read: the upstream's greeting, replies and SASL challenges, and the
// replies mailtap gave itself.
bool upstream_reply(const smtp::Event& e) {
  return e.direction == smtp::Direction::upstream_to_client &&
         (e.kind == smtp::EventKind::greeting || e.kind == smtp::EventKind::reply ||
          e.kind == smtp::EventKind::auth);
}

bool local_reply(const smtp::Event& e) {
  return e.direction == smtp::Direction::mailtap_to_client &&
         e.kind == smtp::EventKind::local_reply;
}

// The EHLO reply as the client received it (STARTTLS removed).
bool rewritten_reply(const smtp::Event& e) {
  return e.direction == smtp::Direction::mailtap_to_client && e.kind == smtp::EventKind::rewrite;
}

// A server's reply to a client's BDAT that mailtap did not relay: one that came before the chunk
// was all relayed, or out of step (Dialogue::refuse_early_bdat_reply, refuse_out_of_step_reply).
// mailtap sends no BDAT of its own.
bool refused_chunk_reply(const smtp::Event& e) {
  return e.direction == smtp::Direction::upstream_to_mailtap && e.kind == smtp::EventKind::reply &&
         e.verb == "BDAT";
}

int reply_code(const smtp::Event& e) {
  if (e.reply_code == 0 && e.bytes.size() >= 3) return std::atoi(e.bytes.substr(0, 3).c_str());
  return e.reply_code;
}

RecordedReply recorded_reply(const storage::EventRow& row) {
  const smtp::Event& e = row.event;
  RecordedReply r;
  r.seq = row.seq;
  r.code = reply_code(e);
  r.raw = e.bytes;
  r.verb = e.verb;
  r.local = local_reply(e);
  r.redacted = e.redacted;
  r.challenge = e.kind == smtp::EventKind::auth;
  return r;
}

// mailtap's own AUTH line and the server's answers to it (proxy --auth-user).
void note_mailtap_login(const smtp::Event& e, RecordedDialogue& out) {
  if (e.direction == smtp::Direction::mailtap_to_upstream && e.kind == smtp::EventKind::auth) {
    const std::string_view line = strip_crlf(e.bytes);
    if (out.mailtap_login || line.size() < 5 || !smtp::iequals(line.substr(0, 5), "AUTH ")) return;
    MailtapLogin login;
    const std::string_view rest = line.substr(5);
    login.mechanism = std::string(rest.substr(0, rest.find(' ')));
    login.held_reply = out.replies.empty() ? 0 : out.replies.size() - 1;
    out.mailtap_login = std::move(login);
  } else if (e.direction == smtp::Direction::upstream_to_mailtap && out.mailtap_login &&
             e.verb == "AUTH" && reply_code(e) / 100 == 2) {
    out.mailtap_login->succeeded = true;
  }
}

// proxy --local-tls implicit: mailtap notes the client's handshake (made, failed or cut by a
// shutdown) before anything else, with no verb; STARTTLS's notes carry the verb STARTTLS. The
// note is there from the start, where the session row says TLS only once the session ends.
void note_client_implicit_tls(const smtp::Event& e, RecordedDialogue& out) {
  if (e.direction == smtp::Direction::mailtap_note && e.kind == smtp::EventKind::tls &&
      e.verb.empty() && e.note.starts_with("client side: TLS"))
    out.client_implicit_tls = true;
}

// Groups the client's steps into flights as the events come, in recorded order.
class DialogueBuilder {
 public:
  DialogueBuilder(RecordedDialogue& out, RefusedLines refused, PartialBodies partial)
      : out_(out), refused_(refused), partial_(partial) {}

  bool add_client_event(const storage::EventRow& row, std::string& error) {
    std::string why = why_not_replayable(row, out_.greeting.has_value(), refused_, partial_);
    if (!why.empty()) {
      error = std::move(why);
      return false;
    }
    ClientStep step = client_step(row);
    if (is_body(step.kind) && step.body_octets() != step.recorded_octets())
      out_.partial_body = true;
    if (step.kind == smtp::EventKind::command && step.verb == "QUIT") out_.client_quit = true;
    if (reply_since_flight_) {
      Flight f;
      f.first_reply = out_.replies.size();
      out_.flights.push_back(std::move(f));
      reply_since_flight_ = false;
    }
    out_.flights.back().steps.push_back(out_.client.size());
    if (step.direction == smtp::Direction::client_to_mailtap && !is_body(step.kind))
      awaiting_local_.push_back(out_.client.size());
    out_.client.push_back(std::move(step));
    return true;
  }

  void add_server_event(const storage::EventRow& row) {
    const smtp::Event& e = row.event;
    if (rewritten_reply(e)) {
      // It follows the reply it rewrites.
      if (!out_.replies.empty()) out_.replies.back().client_view = e.bytes;
      return;
    }
    // Inside a DATA body a reply with no command to answer was refused the same way
    // (Dialogue::refuse_out_of_step_reply): no verb, after the body relayed before it, and no
    // reply since. One after the body's own reply (the end of data's, or one taken as it) was
    // refused outside the body: the mock serves it as any unsolicited reply.
    const bool refused_body_reply = e.direction == smtp::Direction::upstream_to_mailtap &&
                                    e.kind == smtp::EventKind::reply && e.verb.empty() &&
                                    !out_.client.empty() && is_body(out_.client.back().kind) &&
                                    !reply_since_flight_;
    if (refused_chunk_reply(e) || refused_body_reply) {
      if (out_.refused_chunk_reply) return;  // mailtap closed at the first
      out_.refused_chunk_reply = recorded_reply(row);
      out_.refused_chunk_reply->unsolicited = true;
      out_.refused_chunk_reply->client_steps_before = out_.client.size();
      out_.refused_chunk_reply_before = out_.replies.size();
      return;
    }
    if (!upstream_reply(e) && !local_reply(e)) return;
    RecordedReply r = recorded_reply(row);
    if (r.local && r.code == 220 && !out_.client.empty() && out_.client.back().verb == "STARTTLS")
      out_.client_starttls = true;
    if (e.kind == smtp::EventKind::greeting || (!out_.greeting && out_.client.empty())) {
      out_.greeting = std::move(r);
      return;
    }
    // No command awaited it (the dialogue gives every other reply its command's verb).
    r.unsolicited = !r.local && r.verb.empty();
    r.client_steps_before = out_.client.size();
    // mailtap answers the lines it answers itself in the order they came.
    if (r.local && !awaiting_local_.empty()) {
      out_.client[awaiting_local_.front()].local_answer = out_.replies.size();
      awaiting_local_.pop_front();
    }
    out_.replies.push_back(std::move(r));
    if (!out_.flights.empty()) ++out_.flights.back().reply_count;
    reply_since_flight_ = true;
  }

 private:
  RecordedDialogue& out_;
  RefusedLines refused_;
  PartialBodies partial_;
  std::deque<std::size_t> awaiting_local_;  // client steps mailtap has not answered yet
  bool reply_since_flight_ = true;          // a new flight starts at the first client step
};

// The record ends with mailtap's own 421 right after a server reply that had already ended the
// session (RecordedDialogue::older_close_notice): an older mailtap went on to the close.
bool ends_with_older_close_notice(const RecordedDialogue& d) {
  const std::size_t n = d.replies.size();
  if (n < 2) return false;
  const RecordedReply& notice = d.replies[n - 1];
  const RecordedReply& ending = d.replies[n - 2];
  return notice.local && notice.code == 421 && !ending.local &&
         (ending.code == 221 || ending.code == 421);
}

// Reads the record as today's mailtap would have made it: it ends with the server's reply, and
// nothing the client sent after that reply was read.
void set_older_close_notice_aside(RecordedDialogue& d) {
  d.older_close_notice = std::move(d.replies.back());
  d.replies.pop_back();
  const std::size_t steps = d.replies.back().client_steps_before;
  if (d.client.size() > steps) d.client.erase(d.client.begin() + steps, d.client.end());
  std::erase_if(d.flights, [&](const Flight& f) { return f.steps.front() >= steps; });
  for (Flight& f : d.flights)
    f.reply_count =
        std::min(f.reply_count, d.replies.size() - std::min(f.first_reply, d.replies.size()));
  for (ClientStep& s : d.client)
    if (s.local_answer && *s.local_answer >= d.replies.size()) s.local_answer.reset();
  d.client_quit = std::any_of(d.client.begin(), d.client.end(), [](const ClientStep& s) {
    return s.kind == smtp::EventKind::command && s.verb == "QUIT";
  });
}

}  // namespace

void note_session_outcome(RecordedDialogue& d, std::optional<storage::Outcome> outcome) {
  if (outcome == storage::Outcome::upstream_closed && ends_with_older_close_notice(d))
    set_older_close_notice_aside(d);
  // A 421 the server sent is relayed (not local); mailtap's own ends every other ending.
  d.server_closed = outcome == storage::Outcome::upstream_closed && !d.replies.empty() &&
                    d.replies.back().local && d.replies.back().code == 421;
}

bool build_recorded_dialogue(const std::vector<storage::EventRow>& events, RecordedDialogue& out,
                             std::string& error, RefusedLines refused, PartialBodies partial) {
  out = RecordedDialogue{};
  DialogueBuilder builder(out, refused, partial);
  for (const storage::EventRow& row : events) {
    note_mailtap_login(row.event, out);
    note_client_implicit_tls(row.event, out);
    // A note about the record (relayed octets dropped unsent), not something the client sent.
    if (smtp::is_unsent_note(row.event)) continue;
    if (!smtp::from_client(row.event.direction))
      builder.add_server_event(row);
    else if (!builder.add_client_event(row, error))
      return false;
  }
  if (!out.greeting) {
    error = "no greeting reached the client (the session never got past setting up the upstream)";
    return false;
  }
  return true;
}

std::string unfinished_reason(const RecordedDialogue& d) {
  if (d.unfinished.empty()) return "";
  const std::string why = d.unfinished == "cut"
                              ? "has no end (cut: the process recording it stopped without "
                                "ending it)"
                              : "has no end yet (in_progress: the proxy recording it still runs)";
  return why + ", so what the server said after its last recorded event is unknown";
}

}  // namespace mailtap::tools
