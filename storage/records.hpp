// The records sessions hand to the storage thread. They carry only what the dialogue has
// already redacted (smtp::Event / smtp::Message), plus session and TLS metadata.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/smtp/event.hpp"

namespace mailtap::storage {

using Clock = std::chrono::system_clock;

// In-process handle of a session; the storage thread maps it to the database row id.
using SessionKey = std::uint64_t;

struct SessionOpened {
  SessionKey key = 0;
  Clock::time_point started{};
  std::string client_address;  // "127.0.0.1:53124"
  std::string listen_address;  // "127.0.0.1:2525"
  std::string upstream_host;
  std::uint16_t upstream_port = 0;
  std::string tls_mode;                   // "starttls" | "implicit" | "none"
  std::string ehlo_name;                  // the name mailtap used in its own EHLO
  bool insecure = false;                  // --insecure was in force
  std::optional<std::int64_t> replay_of;  // database id of the session this one replays
};

struct Certificate {
  std::string der;  // raw DER bytes
  std::string sha256_hex;
  std::string subject;
  std::string issuer;
  std::string not_before;  // ISO 8601 UTC
  std::string not_after;
};

struct SessionTls {
  SessionKey key = 0;
  std::string resolved_address;  // upstream IP:port actually connected
  std::string tls_version;       // "TLSv1.3"
  std::string cipher;
  std::string sni;
  std::string verified_name;       // name the certificate was checked against, empty if not checked
  std::string verify_result;       // "ok", "skipped (--insecure)", or the failure reason
  std::vector<Certificate> chain;  // leaf first
  bool resumed = false;            // the TLS session was resumed (an earlier session's ticket)
};

struct SessionEvent {
  SessionKey key = 0;
  std::uint64_t seq = 0;  // 1-based, in order of occurrence within the session
  smtp::Event event;
};

struct SessionMessage {
  SessionKey key = 0;
  std::uint64_t seq = 0;  // 1-based message number within the session
  smtp::Message message;
};

enum class Outcome : std::uint8_t {
  quit,
  client_closed,
  upstream_closed,
  timeout,
  refused,
  error,
  shutdown
};
std::string_view to_string(Outcome o);

// Inverses of the to_string functions, for reading the text columns back. False if `text` names
// no enumerator (out is left unchanged).
bool parse(std::string_view text, Outcome& out);
bool parse(std::string_view text, smtp::Direction& out);
bool parse(std::string_view text, smtp::Phase& out);
bool parse(std::string_view text, smtp::EventKind& out);

struct SessionClosed {
  SessionKey key = 0;
  Clock::time_point ended{};
  Outcome outcome = Outcome::error;
  std::string reason;
  std::uint64_t bytes_client_to_upstream =
      0;  // octets mailtap sent upstream on the client's behalf
  std::uint64_t bytes_upstream_to_client = 0;  // octets relayed from upstream to the client
  std::string auth_user;                       // authenticated user (subject to --redact-users)
  std::string auth_mechanism;                  // of the AUTH that succeeded, "" if none did
  bool auth_by_mailtap = false;    // mailtap authenticated (--auth-user), not the client
  std::string client_tls_version;  // the client's side was TLS (--local-tls): "TLSv1.3"; "" plain
};

using Record = std::variant<SessionOpened, SessionTls, SessionEvent, SessionMessage, SessionClosed>;

}  // namespace mailtap::storage
