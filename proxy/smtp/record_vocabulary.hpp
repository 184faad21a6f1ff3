// The record's vocabulary: every enumerated value mailtap stores, each enum with ONE name
// table. to_string, parse, the database's constraints (storage/schema.cpp) and the tables in
// docs/schema.md all come from these tables, so a value cannot be written under one spelling
// and read back under another. tests/unit/record_vocabulary_test.cpp round-trips every
// enumerator and fails to compile when one is added without being listed there (then add its
// name here, in enumerator order).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

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

// The client's own bytes (relayed or answered by mailtap), as opposed to anyone's reply.
constexpr bool from_client(Direction d) {
  return d == Direction::client_to_upstream || d == Direction::client_to_mailtap;
}

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

// How a session ended.
enum class Outcome : std::uint8_t {
  quit,             // QUIT answered
  client_closed,    // the client closed first: mailtap's own QUIT, or the 221 came after
  upstream_closed,  // the server closed the link
  timeout,          // setup, reply or idle limit
  refused,          // the upstream or its certificate was refused before the relay
  error,            // name resolution, connection or protocol failure
  shutdown,         // mailtap's grace period ran out
};

// How the link to the upstream is encrypted.
enum class TlsMode : std::uint8_t { starttls, implicit, none };

// Whether the upstream's certificate was verified; the reason says why not, or what else is
// worth knowing.
enum class VerifyStatus : std::uint8_t {
  ok,                     // verified for the name mailtap connected to
  not_verified_insecure,  // not enforced: --insecure (the reason: what checking said)
  failed,                 // checked and refused (the handshake ended, unless --insecure)
};

// Who authenticated the session: the client through the relay, or mailtap with --auth-user.
enum class AuthBy : std::uint8_t { client, mailtap };

// One name table per enum, indexed by the enumerator's value. `column` names where the value
// is stored (for messages and docs).
template <typename Enum>
struct Vocabulary;

template <>
struct Vocabulary<Direction> {
  static constexpr std::string_view column = "events.direction";
  static constexpr std::array<std::string_view, 7> names{
      "client_to_upstream",  "upstream_to_client", "client_to_mailtap", "mailtap_to_upstream",
      "upstream_to_mailtap", "mailtap_to_client",  "mailtap_note"};
};

template <>
struct Vocabulary<Phase> {
  static constexpr std::string_view column = "events.phase";
  static constexpr std::array<std::string_view, 3> names{"plain", "pre_tls", "tls"};
};

template <>
struct Vocabulary<EventKind> {
  static constexpr std::string_view column = "events.kind";
  static constexpr std::array<std::string_view, 11> names{
      "greeting", "command",     "reply", "data",  "bdat_chunk", "auth",
      "rewrite",  "local_reply", "tls",   "error", "note"};
};

template <>
struct Vocabulary<Outcome> {
  static constexpr std::string_view column = "sessions.outcome";
  static constexpr std::array<std::string_view, 7> names{
      "quit", "client_closed", "upstream_closed", "timeout", "refused", "error", "shutdown"};
};

template <>
struct Vocabulary<TlsMode> {
  static constexpr std::string_view column = "sessions.tls_mode";
  static constexpr std::array<std::string_view, 3> names{"starttls", "implicit", "none"};
};

template <>
struct Vocabulary<VerifyStatus> {
  static constexpr std::string_view column = "sessions.verify_status";
  static constexpr std::array<std::string_view, 3> names{"ok", "not_verified_insecure", "failed"};
};

template <>
struct Vocabulary<AuthBy> {
  static constexpr std::string_view column = "sessions.auth_by";
  static constexpr std::array<std::string_view, 2> names{"client", "mailtap"};
};

template <typename Enum>
concept RecordEnum = requires {
  Vocabulary<Enum>::names;
};

template <RecordEnum Enum>
inline constexpr std::size_t enumerator_count = Vocabulary<Enum>::names.size();

// The enumerator with value `i` (i < enumerator_count<Enum>).
template <RecordEnum Enum>
constexpr Enum enumerator(std::size_t i) {
  return static_cast<Enum>(i);
}

template <RecordEnum Enum>
constexpr std::string_view to_string(Enum e) {
  const auto i = static_cast<std::size_t>(static_cast<std::underlying_type_t<Enum>>(e));
  return i < Vocabulary<Enum>::names.size() ? Vocabulary<Enum>::names[i] : "unknown";
}

// The enumerator named `text`, nullopt if there is none.
template <RecordEnum Enum>
constexpr std::optional<Enum> parse_name(std::string_view text) {
  for (std::size_t i = 0; i < Vocabulary<Enum>::names.size(); ++i)
    if (Vocabulary<Enum>::names[i] == text) return enumerator<Enum>(i);
  return std::nullopt;
}

// False (and `out` unchanged) if `text` names no enumerator.
template <RecordEnum Enum>
constexpr bool parse(std::string_view text, Enum& out) {
  const auto e = parse_name<Enum>(text);
  if (e) out = *e;
  return e.has_value();
}

// "a, b, c": the names for help texts and error messages.
template <RecordEnum Enum>
std::string names_list(std::string_view separator = ", ") {
  std::string out;
  for (std::string_view n : Vocabulary<Enum>::names) {
    if (!out.empty()) out += separator;
    out += n;
  }
  return out;
}

}  // namespace mailtap::smtp
