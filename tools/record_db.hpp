// A raw read-only connection to a mailtap database, for the queries storage::Reader does not
// offer (per-session counts for `sessions`, the full-byte scan of `audit`), and the read-write
// one `prune` needs. Both refuse files that are not mailtap databases at this schema version.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/database.hpp"

namespace mailtap::tools {

// Never creates the file. `error` names the file and the reason.
bool open_record_db(const std::string& path, storage::OpenMode mode, storage::Database& out,
                    std::string& error);

// What `mailtap sessions` shows beside the session row.
struct SessionStats {
  std::int64_t messages = 0;
  int last_reply_code = 0;  // 0 if no reply was recorded
  std::string last_reply;   // first line of the last reply the client saw, no CRLF
};
bool load_session_stats(storage::Database& db, std::int64_t session_id, SessionStats& out,
                        std::string& error);

}  // namespace mailtap::tools
