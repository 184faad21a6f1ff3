// What mailtap observed of one session: the unit the transcript prints and the recorder stores.
// The recorder takes only RecordedEvent, which the dialogue makes from client bytes after
// redacting them, and mailtap_event() from mailtap's own lines: an unredacted client line
// cannot reach the database, by construction.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/record_vocabulary.hpp"

namespace mailtap::smtp {

// A `rewrite` note on DATA that starts with this names a smuggling-shaped line ending the
// client sent ("smuggling shape \\n.\\n at offset 12 of the message: ..."); audit lists them.
inline constexpr std::string_view smuggling_shape_note_prefix = "smuggling shape ";

// A `client_to_mailtap` event that starts with this says how many of the octets recorded as
// relayed (`client_to_upstream`) before it mailtap never wrote upstream: it abandoned the
// upstream (a refusal inside a body, a client gone inside one, a reply out of step) or a write
// failed, and dropped what it still had queued. sessions.bytes_client_to_upstream leaves them
// out (docs/recording.md, "Byte counts").
inline constexpr std::string_view unsent_note_prefix = "not sent upstream: ";

// Its counterpart on the client's side, a `note` after replies recorded as relayed that mailtap
// never wrote to the client: held for a commit that did not come within the client's limit
// (docs/dialogue.md, "Timeouts"). The record does not claim the client was told. A
// mailtap_note: its wire_size is 0, the octets withheld are in its text ("N octets (...)").
inline constexpr std::string_view unrelayed_note_prefix = "not relayed to the client: ";

struct Event {
  Direction direction = Direction::mailtap_note;
  Phase phase = Phase::plain;
  EventKind kind = EventKind::note;
  std::string verb;             // upper-cased command verb ("MAIL", "EHLO"), empty if none
  int reply_code = 0;           // basic reply code of a reply, 0 if not a reply
  std::string enhanced_status;  // RFC 3463 "x.y.z" of the reply's first line, empty if none
  std::string bytes;            // wire bytes; for redacted events the redacted rendering
  std::size_t wire_size = 0;  // octets that crossed the wire (equals bytes.size() unless redacted)
  bool redacted = false;
  std::string note;  // human explanation (rewrites, TLS, errors, decoded SASL text)
  std::chrono::system_clock::time_point time{};
  // data / bdat_chunk: the mail transaction (Message::transaction) whose body these bytes are;
  // 0 if none (a chunk sent without MAIL).
  std::uint64_t transaction = 0;
};

// An event that starts with unsent_note_prefix: a note about the record (octets counted as
// relayed that never left), not a line or body piece the client sent. Readers that rebuild the
// client's side (replay, mock) skip it; show prints it as a note.
inline bool is_unsent_note(const Event& e) {
  return e.direction == Direction::client_to_mailtap && e.note.starts_with(unsent_note_prefix);
}

class Dialogue;
struct RecordedEventForTests;

// An Event that may be recorded. Only the dialogue (friend) makes one from a client line;
// everyone else goes through mailtap_event(), which keeps no client bytes. Read-only after
// construction, so what was redacted stays redacted.
class RecordedEvent {
 public:
  const Event& operator*() const noexcept { return event_; }
  const Event* operator->() const noexcept { return &event_; }
  const Event& event() const noexcept { return event_; }

 private:
  friend class Dialogue;
  friend RecordedEvent mailtap_event(Event e);
  friend struct RecordedEventForTests;  // tests/unit only: rows built by hand
  explicit RecordedEvent(Event e) noexcept : event_(std::move(e)) {}

  Event event_;
};

// One of mailtap's own lines (its commands to the upstream and their replies, its replies to
// the client, notes) as a RecordedEvent. An event in a client direction is not mailtap's to
// record: its bytes are dropped and it is marked redacted.
inline RecordedEvent mailtap_event(Event e) {
  if (from_client(e.direction)) {
    e.bytes.clear();
    e.redacted = true;
  }
  return RecordedEvent(std::move(e));
}

// One mail transaction as the upstream saw it (MAIL .. final reply to DATA / BDAT LAST).
struct Recipient {
  std::string command;  // the RCPT line without CRLF
  int reply_code = 0;
  std::string reply;  // full reply text
  // 0-based place among the transaction's RCPT commands: the message row may leave some out
  // (TransactionTracker keeps a bounded number), the events hold them all.
  std::uint64_t position = 0;
};

// Body octets past --max-body: not recorded, but the message's SHA-256 covers them (it is
// computed where the body is stored). The owner hands them on after the events taken with them.
struct UnrecordedBody {
  std::uint64_t transaction = 0;
  EventKind kind = EventKind::data;  // data: DATA text as sent; bdat_chunk: chunk payload
  std::string wire;
};

// How many RCPTs of a transaction its message's `recipients` leave out, and how many of those
// the server accepted.
struct RecipientsLeftOut {
  std::uint64_t rcpts = 0;
  std::uint64_t accepted = 0;
  bool operator==(const RecipientsLeftOut&) const = default;
};

struct Message {
  std::string mail_from;  // the MAIL line without CRLF (address and parameters)
  std::vector<Recipient> recipients;
  // 1-based ordinal of the MAIL transaction within the session. The body is recorded once, as
  // the data / bdat_chunk events carrying this ordinal; the proxy never holds it whole.
  std::uint64_t transaction = 0;
  // As upstream received it (DATA: un-dot-stuffed; BDAT: concatenated). Filled by the reader
  // from the body events; empty on the recording side.
  std::string body;
  std::uint64_t size = 0;       // full body size, even when the recorded body was truncated
  bool body_truncated = false;  // the body events stop at --max-body
  std::string sha256_hex;       // over the full body; computed by the recorder as it stores it
  bool via_bdat = false;
  int final_code = 0;
  std::string final_reply;  // e.g. "250 2.0.0 Ok: queued as 4Xyz"
  std::chrono::system_clock::time_point started{}, finished{};
  // RCPTs of the transaction not in `recipients` (TransactionTracker's bounds). Recorded with
  // the row (messages.recipients_left_out); nullopt only where a reader found them unknown: a
  // row recorded before mailtap counted them that a migration could not count (schema.md).
  std::optional<RecipientsLeftOut> recipients_left_out = RecipientsLeftOut{};
};

}  // namespace mailtap::smtp
