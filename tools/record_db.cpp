#include "tools/record_db.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "storage/schema.hpp"

namespace mailtap::tools {

bool open_record_db(const std::string& path, storage::OpenMode mode, storage::Database& out,
                    std::string& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  storage::OpenOptions options;
  options.mode = mode;
  storage::Database db;
  if (auto s = storage::Database::open(path, options, db); !s.ok()) {
    error = s.message;
    return false;
  }
  if (auto s = storage::check_for_reading(db); !s.ok()) {
    error = s.message;
    return false;
  }
  out = std::move(db);
  return true;
}

bool load_session_stats(storage::Database& db, std::int64_t session_id, SessionStats& out,
                        std::string& error) {
  storage::Statement count;
  if (auto s = db.prepare("SELECT count(*) FROM messages WHERE session_id = ?1", count); !s.ok()) {
    error = s.message;
    return false;
  }
  count.bind_int(1, session_id);
  if (count.step() == storage::Statement::Step::row) out.messages = count.column_int(0);

  storage::Statement last;
  if (auto s = db.prepare(
          "SELECT reply_code, bytes FROM events WHERE session_id = ?1 AND reply_code IS NOT NULL "
          "AND direction IN ('upstream_to_client', 'mailtap_to_client') "
          "ORDER BY seq DESC LIMIT 1",
          last);
      !s.ok()) {
    error = s.message;
    return false;
  }
  last.bind_int(1, session_id);
  if (last.step() == storage::Statement::Step::row) {
    out.last_reply_code = static_cast<int>(last.column_int(0));
    std::string bytes = last.column_blob(1);
    const auto eol = bytes.find_first_of("\r\n");
    if (eol != std::string::npos) bytes.resize(eol);
    out.last_reply = std::move(bytes);
  }
  return true;
}

}  // namespace mailtap::tools
