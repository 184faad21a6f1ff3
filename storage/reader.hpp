// Read-only access to a mailtap database for the tools (list, show, replay, export). Opens with
// SQLITE_OPEN_READONLY, so it can run beside a recording proxy and sees only committed data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/records.hpp"
#include "storage/schema.hpp"

namespace mailtap::storage {

struct SessionRow {
  std::int64_t id = 0;
  Clock::time_point started{};
  std::optional<Clock::time_point> ended;  // nullopt: in progress, or its writer died
  std::string client_address;
  std::string listen_address;
  std::string upstream_host;
  std::uint16_t upstream_port = 0;
  std::string resolved_address;  // "" if never connected
  std::string tls_mode;
  std::string ehlo_name;
  std::string tls_version;  // "" if no TLS
  std::string cipher;
  std::string sni;
  std::string verified_name;
  std::string verify_result;
  bool insecure = false;
  std::optional<Outcome> outcome;  // set iff ended
  std::string outcome_reason;
  std::uint64_t bytes_client_to_upstream = 0;
  std::uint64_t bytes_upstream_to_client = 0;
  std::string auth_user;
  std::optional<std::int64_t> replay_of;
  std::string auth_mechanism;      // of the AUTH that succeeded, "" if none (or before schema v2)
  bool auth_by_mailtap = false;    // --auth-user: mailtap authenticated, not the client
  bool tls_resumed = false;        // the upstream TLS session was resumed
  std::string client_tls_version;  // the client's side was TLS (--local-tls), "" if plain
};

struct EventRow {
  std::uint64_t seq = 0;
  smtp::Event event;  // time is the epoch if the event carried none
};

struct CertificateRow {
  std::size_t position = 0;  // 0 = leaf
  Certificate certificate;
};

struct MessageRow {
  std::int64_t id = 0;
  std::uint64_t seq = 0;
  smtp::Message message;  // recipients in order
};

struct SessionDetail {
  SessionRow session;
  std::vector<CertificateRow> certificates;  // leaf first
  std::vector<EventRow> events;              // by seq
  std::vector<MessageRow> messages;          // by seq
};

struct SessionFilter {
  std::optional<Clock::time_point> since;  // started_at >= since
  std::optional<Clock::time_point> until;  // started_at < until
  std::string upstream;                    // exact upstream_host, "" = any
  std::optional<Outcome> outcome;          // nullopt = any (including in progress)
  bool only_in_progress = false;           // ended_at IS NULL
  std::string user;                        // exact auth_user, "" = any
  std::size_t limit = 0;                   // 0 = no limit
  bool newest_first = true;
};

class Reader {
 public:
  // nullptr and `error` set if the file is missing, not a mailtap database, or at another
  // schema version.
  static std::unique_ptr<Reader> open(const std::string& path, std::string& error);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  bool list_sessions(const SessionFilter& filter, std::vector<SessionRow>& out, std::string& error);

  // Loads one session and everything recorded for it from a single snapshot. Returns false
  // with `error` set on a database error; true with `out` empty if there is no such session.
  bool load_session(std::int64_t id, std::optional<SessionDetail>& out, std::string& error);

  bool fingerprint_key(FingerprintKey& key, std::string& error);
  const std::string& path() const;

  struct Impl;

 private:
  explicit Reader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailtap::storage
