// The records sessions hand to the storage thread. They carry only what the dialogue has
// already redacted (smtp::Event / smtp::Message), session and TLS metadata, and the body octets
// past --max-body (smtp::UnrecordedBody), which are hashed and never stored.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/smtp/event.hpp"
#include "proxy/smtp/record_vocabulary.hpp"
#include "proxy/smtp/upstream_tls.hpp"

namespace mailtap::storage {

// The record's types and vocabulary belong to the sans-IO core (proxy/smtp); storage stores
// them and owns only their spelling on disk.
using smtp::AuthBy;
using smtp::Certificate;
using smtp::Outcome;
using smtp::parse;
using smtp::parse_name;
using smtp::TlsMode;
using smtp::to_string;
using smtp::VerifyStatus;

using Clock = std::chrono::system_clock;

// In-process handle of a session; the storage thread maps it to the database row id.
using SessionKey = std::uint64_t;

// Where the storage thread puts the database id of a session's row once it wrote it (0 until
// then), for the session to say. It is the key unless another process recording into the same
// file took that id first; the session learns it without waiting for the disk.
using RecordedId = std::shared_ptr<std::atomic<std::int64_t>>;

struct SessionOpened {
  SessionKey key = 0;
  Clock::time_point started{};
  std::string client_address;  // "127.0.0.1:53124"
  std::string listen_address;  // "127.0.0.1:2525"
  std::string upstream_host;
  std::uint16_t upstream_port = 0;
  TlsMode tls_mode = TlsMode::starttls;
  std::string ehlo_name;                  // the name mailtap used in its own EHLO
  bool insecure = false;                  // --insecure was in force
  std::optional<std::int64_t> replay_of;  // database id of the session this one replays
  RecordedId recorded_id = nullptr;       // optional: told the row's id
};

struct SessionTls : smtp::UpstreamTls {
  SessionKey key = 0;
};

struct SessionEvent {
  SessionKey key = 0;
  std::uint64_t seq = 0;      // 1-based, in order of occurrence within the session
  smtp::RecordedEvent event;  // redacted by construction (see event.hpp)
};

struct SessionMessage {
  SessionKey key = 0;
  std::uint64_t seq = 0;  // 1-based message number within the session
  smtp::Message message;
};

// Body octets past --max-body: hashed into the message's SHA-256, not stored.
struct SessionBodyTail {
  SessionKey key = 0;
  smtp::UnrecordedBody body;
};

// AUTH succeeded: who, written at once so that a running session shows its user (the closing
// record says it again).
struct SessionAuthenticated {
  SessionKey key = 0;
  std::string auth_user;         // subject to --redact-users ("" there)
  std::string auth_mechanism;    // of the AUTH that succeeded
  bool auth_by_mailtap = false;  // mailtap authenticated (--auth-user), not the client
};

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
                                   // (stored as AuthBy when auth_mechanism is set)
  std::string client_tls_version;  // the client's side was TLS (--local-tls): "TLSv1.3"; "" plain
  // From the session's opening to `ended` by the steady clock, which no clock step moves; nullopt
  // when the opening was not timed.
  std::optional<std::chrono::microseconds> duration;
};

// What became known of a session once its closing record was committed: its last replies go
// to the client only then (docs/recording.md), and the lingering close after them ends later.
// A note appended to its events and, when the client turned out to have gone before the reply
// to its QUIT, the outcome that says so (replacing `quit`, never another ending). Addressed by
// the session's database id: its key is finished at the close.
struct SessionAfterEnd {
  std::int64_t session_id = 0;
  std::uint64_t seq = 0;  // after the session's other events
  smtp::RecordedEvent note;
  std::optional<Outcome> outcome;
  std::string reason;  // with `outcome`
};

using Record = std::variant<SessionOpened, SessionTls, SessionEvent, SessionBodyTail,
                            SessionMessage, SessionAuthenticated, SessionClosed, SessionAfterEnd>;

}  // namespace mailtap::storage
