#include "storage/session_query.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "storage/database.hpp"
#include "storage/reader_impl.hpp"
#include "storage/schema.hpp"
#include "storage/timestamp.hpp"

namespace mailtap::storage {

namespace {

// Replies the client saw: relayed from the server, or written by mailtap itself.
constexpr std::string_view kClientReply =
    "e.direction IN ('upstream_to_client', 'mailtap_to_client')";

// The session columns in the order session_from() (storage/reader.cpp) reads them, qualified
// because the query joins events.
const std::string kListSql =
    std::string(
        "SELECT s.id, s.started_at, s.ended_at, s.client_address, "
        "s.listen_address, s.upstream_host, s.upstream_port, "
        "s.resolved_address, s.tls_mode, s.ehlo_name, s.tls_version, "
        "s.cipher, s.sni, s.verified_name, s.verify_status, s.verify_reason, "
        "s.insecure, "
        "s.outcome, s.outcome_reason, s.bytes_client_to_upstream, "
        "s.bytes_upstream_to_client, s.auth_user, s.replay_of, "
        "s.auth_mechanism, s.auth_by, s.tls_resumed, s.client_tls_version, "
        "(SELECT count(*) FROM messages m WHERE m.session_id = s.id), "
        "(SELECT count(*) FROM events e WHERE e.session_id = s.id AND "
        "e.reply_code >= 400 AND ") +
    std::string(kClientReply) +
    "), lr.reply_code, lr.bytes "
    "FROM sessions s LEFT JOIN events lr ON lr.id = (SELECT e.id FROM "
    "events e WHERE e.session_id = s.id AND e.reply_code IS NOT NULL "
    "AND " +
    std::string(kClientReply) +
    " ORDER BY e.seq DESC LIMIT 1) "
    "WHERE (?1 IS NULL OR s.started_at >= ?1) "
    "AND (?2 IS NULL OR s.started_at < ?2) "
    "AND (?3 IS NULL OR s.upstream_host = ?3) "
    "AND (?4 IS NULL OR s.auth_user = ?4) "
    "AND (?5 IS NULL OR s.id < ?5) "
    "AND (?6 IS NULL OR EXISTS (SELECT 1 FROM events e WHERE "
    "e.session_id = s.id AND e.reply_code >= ?6 * 100 AND "
    "e.reply_code < ?6 * 100 + 100 AND " +
    std::string(kClientReply) +
    ")) "
    "AND (?7 IS NULL OR s.client_address LIKE ?7 ESCAPE '\\' "
    "OR s.upstream_host LIKE ?7 ESCAPE '\\' "
    "OR coalesce(s.auth_user, '') LIKE ?7 ESCAPE '\\' "
    "OR coalesce(s.outcome_reason, '') LIKE ?7 ESCAPE '\\' "
    "OR EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND "
    "(CAST(e.bytes AS TEXT) LIKE ?7 ESCAPE '\\' "
    "OR coalesce(e.note, '') LIKE ?7 ESCAPE '\\')) "
    "OR EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id AND "
    "(m.mail_from LIKE ?7 ESCAPE '\\' "
    "OR CAST(m.body AS TEXT) LIKE ?7 ESCAPE '\\'))) "
    "AND (?9 IS NULL OR s.outcome = ?9 "
    "OR (?9 = 'in_progress' AND s.ended_at IS NULL) "
    "OR (?9 = 'failed' AND ((s.outcome IS NOT NULL AND s.outcome <> "
    "'quit') OR EXISTS (SELECT 1 FROM events e WHERE e.session_id = "
    "s.id AND e.reply_code >= 400 AND " +
    std::string(kClientReply) +
    ")))) "
    "ORDER BY s.id DESC LIMIT ?8";

constexpr int kColumns = 27;  // session_from()'s

// LIKE pattern matching `text` anywhere, with LIKE's own wildcards escaped.
std::string contains_pattern(std::string_view text) {
  std::string p = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') p += '\\';
    p += c;
  }
  p += '%';
  return p;
}

}  // namespace

struct SessionQuery::Impl {
  Database db;
  Statement list;
  Statement version;
  Statement max_id;

  std::string failed(const Statement& st) const {
    return db.path() + ": " + st.last_error().message;
  }
};

SessionQuery::SessionQuery(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SessionQuery::~SessionQuery() = default;

std::unique_ptr<SessionQuery> SessionQuery::open(const std::string& path, std::string& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  OpenOptions options;
  options.mode = OpenMode::read_only;
  if (auto s = Database::open(path, options, impl->db); !s.ok()) {
    error = s.message;
    return nullptr;
  }
  if (auto s = check_for_reading(impl->db); !s.ok()) {
    error = s.message;
    return nullptr;
  }
  for (auto [sql, stmt] :
       {std::pair{std::string_view(kListSql), &impl->list},
        std::pair{std::string_view("PRAGMA data_version"), &impl->version},
        std::pair{std::string_view("SELECT coalesce(max(id), 0) FROM sessions"), &impl->max_id}}) {
    if (auto s = impl->db.prepare(sql, *stmt); !s.ok()) {
      error = s.message;
      return nullptr;
    }
  }
  return std::unique_ptr<SessionQuery>(new SessionQuery(std::move(impl)));
}

bool SessionQuery::list(const SessionListQuery& q, std::vector<SessionListRow>& out,
                        std::string& error) {
  Statement& st = impl_->list;
  const std::string since = q.since ? format_timestamp(*q.since) : std::string();
  const std::string until = q.until ? format_timestamp(*q.until) : std::string();
  const std::string pattern = q.text.empty() ? std::string() : contains_pattern(q.text);
  st.bind_text_or_null(1, since)
      .bind_text_or_null(2, until)
      .bind_text_or_null(3, q.upstream)
      .bind_text_or_null(4, q.user)
      .bind_optional(5, q.before_id)
      .bind_text_or_null(7, pattern)
      .bind_int(8, q.limit == 0 ? -1 : static_cast<std::int64_t>(q.limit))
      .bind_text_or_null(9, q.outcome);
  if (q.reply_class >= 2 && q.reply_class <= 5)
    st.bind_int(6, q.reply_class);
  else
    st.bind_null(6);
  out.clear();
  for (;;) {
    switch (st.step()) {
      case Statement::Step::row: {
        SessionListRow s;
        s.session = session_from(st);
        s.messages = st.column_int(kColumns);
        s.failure_replies = st.column_int(kColumns + 1);
        s.last_reply_code = static_cast<int>(st.column_int(kColumns + 2));
        s.last_reply = st.column_blob(kColumns + 3);
        if (auto eol = s.last_reply.find_first_of("\r\n"); eol != std::string::npos)
          s.last_reply.resize(eol);
        out.push_back(std::move(s));
        break;
      }
      case Statement::Step::done:
        st.reset();
        return true;
      case Statement::Step::error:
        error = impl_->failed(st);
        st.reset();
        return false;
    }
  }
}

bool SessionQuery::change_token(ChangeToken& out, std::string& error) {
  for (auto [stmt, field] : {std::pair{&impl_->version, &out.data_version},
                             std::pair{&impl_->max_id, &out.max_session_id}}) {
    if (stmt->step() != Statement::Step::row) {
      error = impl_->failed(*stmt);
      stmt->reset();
      return false;
    }
    *field = stmt->column_int(0);
    stmt->reset();
  }
  return true;
}

}  // namespace mailtap::storage
