// A recorded session seen from its two ends, for the tools that act it out again: what the
// client sent (in the flights it sent it in) and what the client received, reply by reply.
// Sans-IO: built from the events storage::Reader loaded, no sockets, no database.
//
// Which events count:
//   client side: client_to_upstream and client_to_mailtap events (commands, SASL lines, DATA
//     and BDAT bytes). mailtap's own commands (pre-TLS EHLO, STARTTLS, QUIT for a vanished
//     client) are not the client's and are left out.
//   mailtap's own AUTH (proxy --auth-user): the client never saw it, but everything it sent
//     after went over an authenticated session, so the model says that it happened
//     (MailtapLogin) and the replay authenticates the same way.
//   server side: upstream_to_client (greeting, replies, SASL challenges) and mailtap_to_client
//     local replies, i.e. every reply the client read, in the order it read them. A reply's
//     bytes are the upstream's; the EHLO reply the client saw (STARTTLS removed) is kept too.
//
// Flights: the client bytes recorded between two replies were sent before the later reply
// arrived, so they travel together (RFC 2920 pipelining); a flight is followed by the replies
// the client read before it sent the next flight.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/event.hpp"
#include "proxy/smtp/secret.hpp"
#include "storage/reader.hpp"

namespace mailtap::tools {

struct ClientStep {
  std::uint64_t seq = 0;  // event sequence number in the original session
  smtp::Direction direction = smtp::Direction::client_to_upstream;
  smtp::EventKind kind = smtp::EventKind::command;
  std::string verb;   // "MAIL", "AUTH" (also for SASL responses), "DATA" for body bytes
  std::string bytes;  // as recorded: wire bytes, or the redacted rendering when `redacted`
  // A body step whose octets were left in the session's body file (EventRow::file_offset):
  // where they are, read a piece at a time as they are sent (RecordedDialogue::next_flight_piece)
  // so that no tool holds a body whole; `bytes` is empty.
  std::optional<std::int64_t> file_offset;
  std::size_t file_length = 0;
  // Set when those octets are its event's row's own instead (recorded before schema v6, when a
  // row held a whole body: EventRow::row_id): `file_offset` is 0, and they are read from the
  // row as they are sent, the same way.
  std::optional<std::int64_t> row_id;
  // The octets the client sent: more than `bytes` for a body step whose record --max-body cut
  // (PartialBodies::counted; the step that closes such a body records none of its octets).
  std::size_t wire_size = 0;
  // The wire line with its secrets filled in (fill_secrets, for replay); wiped when the step
  // goes, so no exit path has to remember to wipe it.
  std::optional<smtp::Secret> filled;
  std::string shown;  // the redacted rendering of `filled` (what was sent), "" if not filled
  bool redacted = false;
  std::string note;  // decoded SASL view ("user=\"alice\"")
  // A line mailtap answered itself (client_to_mailtap): its reply, an index into
  // RecordedDialogue::replies, if the recording has it.
  std::optional<std::size_t> local_answer;

  // What goes on the wire: the filled line if there is one, else the recorded bytes (none for
  // a step whose octets are in the body file: next_flight_piece reads them).
  std::string_view wire() const { return filled ? filled->view() : std::string_view(bytes); }
  // The octets the record holds of it, in `bytes` or in the body file.
  std::size_t recorded_octets() const { return file_offset ? file_length : bytes.size(); }
  // A body step's size as the client sent it, also where its record is cut.
  std::size_t body_octets() const { return std::max(wire_size, recorded_octets()); }
  // The line as sent, without CRLF and never with a secret: the rendering of the filled line,
  // else the recorded one; bodies summarised.
  std::string summary() const;
};

struct RecordedReply {
  std::uint64_t seq = 0;
  int code = 0;
  std::string raw;          // as the upstream (or mailtap) sent it, CRLFs included
  std::string client_view;  // what the client received (differs for a rewritten EHLO reply)
  std::string verb;         // the command it answers, if known
  bool local = false;       // mailtap answered the client itself
  // raw is not the wire text: a SASL challenge carrying a secret, or a reply with a word shaped
  // like an AUTH credential kept out (an echo of the client's, or a server's token, a queue id,
  // that has the shape by chance: "250 2.0.0 Ok: queued as [<redacted 12 bytes>]").
  bool redacted = false;
  bool challenge = false;  // a 334 inside the client's AUTH exchange (the event kind auth)
  // The server sent it while no command awaited a reply (a 421 "too many errors", a refusal
  // inside a message body); client_steps_before: how many client steps came before it.
  bool unsolicited = false;
  std::size_t client_steps_before = 0;

  std::string first_line() const;  // "250 2.1.0 Ok", without CRLF
  // The code the client read: a rewrite may change it (a server's 503 to the client's EHLO
  // after its STARTTLS, answered with the server's earlier EHLO reply: docs/proxy.md).
  int client_code() const;
  // What the client read: the rewritten EHLO reply or decoded challenge if mailtap changed it.
  const std::string& to_client() const { return client_view.empty() ? raw : client_view; }
};

struct Flight {
  std::vector<std::size_t> steps;  // indexes into RecordedDialogue::client
  std::size_t first_reply = 0;     // index into RecordedDialogue::replies
  std::size_t reply_count = 0;     // replies read before the next flight was sent
};

// How far the sending of a flight has got (RecordedDialogue::next_flight_piece).
struct FlightCursor {
  std::size_t step = 0;    // index into Flight::steps
  std::size_t offset = 0;  // octets of that step already sent
  bool done(const Flight& f) const { return step >= f.steps.size(); }
};

// Reads `length` octets from `at` of the octets of `step` the record left where they are stored
// (ClientStep::file_offset: the session's body file, or the step's row) into `out`; false with
// `error` set (naming the file) if it cannot supply them.
using StoredOctetsReader =
    std::function<bool(const ClientStep& step, std::size_t at, std::size_t length, std::string& out,
                       std::string& error)>;

// mailtap authenticated upstream by itself (proxy --auth-user): its AUTH lines are
// mailtap_to_upstream events, the server's answers upstream_to_mailtap, and the client's
// EHLO reply was held back until the exchange ended.
struct MailtapLogin {
  std::string mechanism;       // "PLAIN", as mailtap chose it
  std::string user;            // the session's auth_user; "" if unknown (--redact-users, failed)
  bool succeeded = false;      // the server answered the exchange with 235
  std::size_t held_reply = 0;  // index into RecordedDialogue::replies of the EHLO reply held
};

struct RecordedDialogue {
  std::optional<RecordedReply> greeting;
  std::vector<ClientStep> client;
  std::vector<RecordedReply> replies;  // greeting excluded
  std::vector<Flight> flights;
  bool client_quit = false;  // the client ended the session with QUIT
  std::optional<MailtapLogin> mailtap_login;
  // The client's STARTTLS was answered by mailtap with 220 and a handshake towards the client
  // (proxy --local-tls starttls): mailtap's own offer, not the server's.
  bool client_starttls = false;
  // The client spoke TLS to mailtap from its first byte (proxy --local-tls implicit).
  bool client_implicit_tls = false;
  // The session has no end (storage::SessionRow::ended unset): "cut" (the process recording it
  // is gone: it never will) or "in_progress" (still recorded); "" for one that ended. Its last
  // events are not an ending: what the server said after them is unknown.
  std::string unfinished;
  // A message body was recorded only in part (--max-body): see PartialBodies.
  bool partial_body = false;
  // The server answered a BDAT before its chunk was all relayed (a 421 timeout, a 552 for a
  // message too big): mailtap refused that reply (recorded upstream_to_mailtap, never relayed)
  // and closed with its own 421, replies[refused_chunk_reply_before]. Its client_steps_before
  // takes in the chunk's octets relayed before it. The mock gives it to its dialogue where it
  // came, which refuses it the same way; the replay has mailtap's 421 to compare. Likewise a
  // reply inside a DATA body that answered nothing (out of step: OpenSMTPD's 250 to a line "."
  // NUL), which mailtap refused and closed over.
  std::optional<RecordedReply> refused_chunk_reply;
  std::size_t refused_chunk_reply_before = 0;

  // The server ended the session by closing the connection (or with a TLS alert), and the
  // last reply, replies.back(), is mailtap's own 421 saying so: not a reply to a line of the
  // client's, but the recorded ending, which replay compares when its server closes at the same
  // point and mock serves as recorded (note_session_outcome).
  bool server_closed = false;
  // The record was made by an older mailtap, which went on after a server reply that ends the
  // session (a 221 or 421 to any command, Postfix's "221 2.7.0 Error: I can break rules, too.
  // Goodbye." to a lone ".") until the server closed, and then recorded its own 421 saying so.
  // Today's mailtap ends the session on that reply and records nothing after it, so that 421
  // is taken out of `replies` (with what the client sent after the reply, which today's would
  // not have read): replay shows it as not expected again, mock does not serve it
  // (note_session_outcome).
  std::optional<RecordedReply> older_close_notice;

  // Where the octets of the steps left in the body file or their rows (ClientStep::file_offset)
  // are read from; unset when there are none (a model built from events that hold their bytes).
  StoredOctetsReader read_stored;

  // A flight is sent in pieces of at most this many octets: a body of any size goes out with a
  // buffer this big (the size storage hands out a stored body in, StoredBodyReader).
  static constexpr std::size_t kFlightPieceOctets = std::size_t{256} * 1024;

  // The next wire bytes of flight `f` from `at`, at most kFlightPieceOctets (a flight that
  // fits goes in one piece), advancing `at` past them (redacted steps as rendered: fill them
  // first). A Secret: a flight may carry a filled-in password. False with `error` set if the
  // body file cannot supply a stored step's octets.
  bool next_flight_piece(const Flight& f, FlightCursor& at, smtp::Secret& out,
                         std::string& error) const;
};

// A line mailtap refused (too long, a NUL) is not recorded, nor the chunk behind a BDAT mailtap
// answered itself (it read and dropped it): replay cannot send them again, but mock can answer
// them as mailtap did (its Dialogue refuses such a line with the same reply, and reads and drops
// the client's chunk), so there a refused line is a step of kind error, compared by its verb.
enum class RefusedLines : std::uint8_t { cannot_be_sent, answered_again };

// A body --max-body cut (its record keeps the first octets and counts the rest) cannot be sent
// again by replay, but mock only counts a client's body: there its steps keep their size.
enum class PartialBodies : std::uint8_t { cannot_be_sent, counted };

// Builds the model; false with `error` set when the events cannot be acted out (no greeting
// reached the client, a body event whose bytes were not kept in full unless `partial` says
// they are only counted, a refused line whose bytes were not recorded or a BDAT chunk mailtap
// discarded unrecorded unless `refused` says they may be answered again).
// Notes what the events alone do not say: how the session ended (its row's outcome), for
// RecordedDialogue::server_closed.
void note_session_outcome(RecordedDialogue& d, std::optional<storage::Outcome> outcome);

bool build_recorded_dialogue(const std::vector<storage::EventRow>& events, RecordedDialogue& out,
                             std::string& error,
                             RefusedLines refused = RefusedLines::cannot_be_sent,
                             PartialBodies partial = PartialBodies::cannot_be_sent);

// Why the record of a session without an end (RecordedDialogue::unfinished) cannot be acted out
// to its end, to follow "it " or "session N ": "has no end (cut: ...), so ..."; "" for a
// session that ended.
std::string unfinished_reason(const RecordedDialogue& d);

}  // namespace mailtap::tools
