// The queries `mailtap web` needs beyond storage::Reader: the sessions list with what each row
// shows (messages, last reply, failure replies) and the filters of the page, and a cheap token
// that changes whenever the proxy commits anything (for the page's live updates).
// Read-only: opens its own SQLITE_OPEN_READONLY connection, one per thread that uses it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/reader.hpp"

namespace mailtap::storage {

struct SessionListQuery {
  std::optional<Clock::time_point> since;  // started_at >= since
  std::optional<Clock::time_point> until;  // started_at < until
  // "" = any; an outcome name ("quit", "timeout", ...); "in_progress" (not ended); "failed"
  // (ended other than by QUIT, or any 4xx/5xx reply reached the client).
  std::string outcome;
  int reply_class = 0;                    // 2..5: a reply of that class reached the client
  std::string user;                       // exact auth_user, "" = any
  std::string upstream;                   // exact upstream_host, "" = any
  std::string text;                       // substring of the dialogue, a message or an address
  std::optional<std::int64_t> before_id;  // id < before_id (paging, newest first)
  std::size_t limit = 200;                // 0 = no limit
};

struct SessionListRow {
  SessionRow session;
  std::int64_t messages = 0;
  int last_reply_code = 0;           // 0 if no reply reached the client
  std::string last_reply;            // first line of it, no CRLF
  std::int64_t failure_replies = 0;  // 4xx/5xx replies that reached the client
};

// Changes whenever another connection commits to the database (PRAGMA data_version, which is
// per connection: compare tokens of one SessionQuery only).
struct ChangeToken {
  std::int64_t data_version = 0;
  std::int64_t max_session_id = 0;
  bool operator==(const ChangeToken&) const = default;
};

class SessionQuery {
 public:
  // nullptr and `error` set if the file is missing or not a mailtap database of this version.
  static std::unique_ptr<SessionQuery> open(const std::string& path, std::string& error);
  ~SessionQuery();
  SessionQuery(const SessionQuery&) = delete;
  SessionQuery& operator=(const SessionQuery&) = delete;

  // Newest first.
  bool list(const SessionListQuery& q, std::vector<SessionListRow>& out, std::string& error);
  bool change_token(ChangeToken& out, std::string& error);

  struct Impl;

 private:
  explicit SessionQuery(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailtap::storage
