// What mailtap observed of one session: the unit the transcript prints and the recorder stores.
// Every Event leaves the dialogue already redacted; nothing else constructs events from client
// bytes, so nothing downstream of the dialogue ever holds a secret.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::smtp {

enum class Direction : std::uint8_t {
  client_to_upstream,   // relayed from the client
  upstream_to_client,   // relayed from the upstream server
  client_to_mailtap,    // a client line mailtap answered itself and did not forward
  mailtap_to_upstream,  // mailtap's own command (pre-TLS EHLO, STARTTLS, QUIT for a vanished
                        // client)
  upstream_to_mailtap,  // the upstream's reply to mailtap's own command
  mailtap_to_client,    // a reply mailtap wrote itself (local answer, 421 on failure)
  mailtap_note,         // nothing crossed a wire: a rewrite, a TLS fact, an error
};

enum class Phase : std::uint8_t { plain, pre_tls, tls };

enum class EventKind : std::uint8_t {
  greeting,
  command,
  reply,
  data,        // DATA body bytes (dot-stuffed, as on the wire), terminator included in the last
  bdat_chunk,  // BDAT chunk payload
  auth,        // a SASL exchange line (client response or 334 challenge), redacted/decoded
  rewrite,     // mailtap changed client bytes (bare LF/CR, telnet IAC, STARTTLS filtered)
  local_reply,
  tls,
  error,
  note,
};

// A `rewrite` note on DATA that starts with this names a smuggling-shaped line ending the
// client sent ("smuggling shape \\n.\\n at offset 12 of the message: ..."); audit lists them.
inline constexpr std::string_view smuggling_shape_note_prefix = "smuggling shape ";

std::string_view to_string(Direction d);
std::string_view to_string(Phase p);
std::string_view to_string(EventKind k);

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

// One mail transaction as the upstream saw it (MAIL .. final reply to DATA / BDAT LAST).
struct Recipient {
  std::string command;  // the RCPT line without CRLF
  int reply_code = 0;
  std::string reply;  // full reply text
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
  std::string sha256_hex;       // over the full body
  bool via_bdat = false;
  int final_code = 0;
  std::string final_reply;  // e.g. "250 2.0.0 Ok: queued as 4Xyz"
  std::chrono::system_clock::time_point started{}, finished{};
};

}  // namespace mailtap::smtp
