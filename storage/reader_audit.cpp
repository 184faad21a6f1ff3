// storage::Reader's whole-file reads for `mailtap audit`: every event, message and recipient
// one row at a time, and the summaries audit prints, grouped in SQL.
#include <sqlite3.h>

#include <algorithm>
#include <string>
#include <utility>

#include "storage/reader.hpp"
#include "storage/reader_impl.hpp"

namespace mailtap::storage {

namespace {

// "'upstream_to_client', ..." for the directions given, spelled by the vocabulary.
template <typename... D>
std::string directions_sql(D... d) {
  std::string out;
  for (smtp::Direction x : {d...}) {
    if (!out.empty()) out += ", ";
    out += "'" + std::string(to_string(x)) + "'";
  }
  return out;
}

// Session `id`'s started_at as stored, or "" when it cannot be read: looked up on its own, so
// that a damaged sessions table spoils no scan of the events.
std::string stored_started_at(Reader::Impl& impl, std::int64_t id) {
  Statement st;
  if (!impl.db.prepare("SELECT CAST(started_at AS BLOB) FROM sessions WHERE id = ?1", st).ok())
    return {};
  st.bind_int(1, id);
  std::string out;
  if (st.step() == Statement::Step::row) out = st.column_blob(0);
  st.reset();
  return out;
}

}  // namespace

// Runs `sql` calling `row` per row; false with `error` set on failure.
template <typename Fn>
static bool query(Reader::Impl& impl, std::string_view sql, std::string& error, Fn&& row) {
  error.clear();
  const Status s = impl.rows(sql, row);  // rows() notes the result in impl.last_failure
  if (!s.ok()) error = s.message;
  return s.ok();
}

bool Reader::last_failure_is_damage() const {
  switch (impl_->last_failure & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return true;
    default:
      return impl_->last_failure == SQLITE_IOERR_SHORT_READ;
  }
}

bool Reader::integrity_check(std::vector<std::string>& lines, std::string& error) {
  lines.clear();
  return query(*impl_, "PRAGMA integrity_check", error,
               [&](const Statement& r) { lines.push_back(r.column_text(0)); });
}

bool Reader::for_each_event(const std::function<void(std::int64_t, const EventRow&)>& fn,
                            std::string& error) {
  return query(*impl_,
               "SELECT session_id, seq, " + std::string(kEventColumns) +
                   " FROM events ORDER BY session_id, seq",
               error, [&](const Statement& r) {
                 EventRow e;
                 e.seq = static_cast<std::uint64_t>(r.column_int(1));
                 // The damage of one body file is this event's, not the end of the read.
                 if (Status s = impl_->event_from(r, 2, r.column_int(0), e.event); !s.ok()) {
                   e.event.bytes.clear();
                   e.unreadable = s.message;
                   e.session_started_at = stored_started_at(*impl_, r.column_int(0));
                 }
                 fn(r.column_int(0), e);
               });
}

bool Reader::is_still_the_session(std::int64_t id, const std::string& started_at, bool& still,
                                  std::string& error) {
  error.clear();
  still = false;
  Statement st;
  // Without a started_at (it could not be read with the event), by id alone.
  Status s = impl_->db.prepare(
      started_at.empty() ? "SELECT 1 FROM sessions WHERE id = ?1"
                         : "SELECT 1 FROM sessions WHERE id = ?1 AND CAST(started_at AS BLOB) = "
                           "CAST(?2 AS BLOB)",
      st);
  if (s.ok()) {
    st.bind_int(1, id);
    if (!started_at.empty()) st.bind_text(2, started_at);
    s = impl_->each_row(st, [&still](const Statement&) { still = true; });
  }
  s = impl_->noted(s);
  if (!s.ok()) error = s.message;
  return s.ok();
}

bool Reader::for_each_message(const std::function<void(std::int64_t, const MessageRow&)>& fn,
                              std::string& error) {
  return query(*impl_,
               "SELECT session_id, " + message_columns(/*leave_long_body=*/false) +
                   " FROM messages ORDER BY session_id, seq",
               error, [&](const Statement& r) {
                 MessageRow m;
                 message_from(r, 1, m);
                 fn(r.column_int(0), m);
               });
}

bool Reader::for_each_recipient(const std::function<void(const RecordedRecipient&)>& fn,
                                std::string& error) {
  return query(*impl_,
               "SELECT m.session_id, m.seq, r.position, r.command, r.reply_code, r.reply "
               "FROM recipients r JOIN messages m ON m.id = r.message_id "
               "ORDER BY m.session_id, m.seq, r.position",
               error, [&](const Statement& r) {
                 RecordedRecipient rc;
                 rc.session_id = r.column_int(0);
                 rc.message_seq = static_cast<std::uint64_t>(r.column_int(1));
                 rc.position = static_cast<std::size_t>(r.column_int(2));
                 rc.recipient.command = r.column_text(3);
                 rc.recipient.reply_code = static_cast<int>(r.column_int(4));
                 rc.recipient.reply = r.column_text(5);
                 fn(rc);
               });
}

bool Reader::failure_reply_counts(std::vector<FailureReplyCount>& out, std::string& error) {
  out.clear();
  using smtp::Direction;
  const std::string sql =
      "SELECT s.upstream_host, e.reply_code, coalesce(e.enhanced_status, ''), e.direction IN (" +
      directions_sql(Direction::mailtap_to_client) +
      "), count(*), count(DISTINCT e.session_id) FROM events e JOIN sessions s ON s.id = "
      "e.session_id WHERE e.reply_code >= 400 AND e.direction IN (" +
      directions_sql(Direction::upstream_to_client, Direction::upstream_to_mailtap,
                     Direction::mailtap_to_client) +
      ") GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC, 2, 4";
  return query(*impl_, sql, error, [&](const Statement& r) {
    out.push_back({r.column_text(0), static_cast<int>(r.column_int(1)), r.column_text(2),
                   r.column_int(3) != 0, r.column_int(4), r.column_int(5)});
  });
}

bool Reader::outcome_counts(std::vector<OutcomeCount>& out, std::string& error) {
  out.clear();
  // Sessions without an end are grouped by their writer, judged here (not SQL): running, cut
  // or unknown, each counted apart.
  const bool ok =
      query(*impl_,
            "SELECT outcome, CASE WHEN outcome IS NULL THEN writer END, count(*) FROM sessions "
            "GROUP BY 1, 2",
            error, [&](const Statement& r) {
              OutcomeCount c;
              if (!r.is_null(0)) {
                c.outcome = parse_name<Outcome>(r.column_text(0)).value_or(Outcome::error);
                c.record = RecordState::ended;
              } else {
                c.record = record_state(
                    false, r.is_null(1) ? std::nullopt : std::optional(r.column_text(1)));
              }
              c.sessions = r.column_int(2);
              const auto same = std::find_if(out.begin(), out.end(), [&](const OutcomeCount& o) {
                return o.outcome == c.outcome && o.record == c.record;
              });
              if (same == out.end()) {
                out.push_back(c);
              } else {
                same->sessions += c.sessions;
              }
            });
  std::stable_sort(out.begin(), out.end(), [](const OutcomeCount& a, const OutcomeCount& b) {
    if (a.sessions != b.sessions) return a.sessions > b.sessions;
    const auto key = [](const OutcomeCount& c) {
      return std::pair(c.outcome ? std::string(to_string(*c.outcome)) : std::string("in_progress"),
                       static_cast<int>(c.record));
    };
    return key(a) < key(b);
  });
  return ok;
}

bool Reader::tls_counts(std::vector<TlsCount>& out, std::string& error) {
  out.clear();
  return query(*impl_,
               "SELECT coalesce(tls_version, ''), coalesce(cipher, ''), count(*) FROM sessions "
               "GROUP BY 1, 2 ORDER BY 3 DESC",
               error, [&](const Statement& r) {
                 out.push_back({r.column_text(0), r.column_text(1), r.column_int(2)});
               });
}

bool Reader::certificates_seen(std::vector<CertificateSeen>& out, std::string& error) {
  out.clear();
  return query(*impl_,
               "SELECT sha256, coalesce(subject, ''), coalesce(not_after, ''), min(session_id), "
               "count(DISTINCT session_id) FROM certificates GROUP BY sha256 ORDER BY 3",
               error, [&](const Statement& r) {
                 out.push_back({r.column_text(0), r.column_text(1), r.column_text(2),
                                r.column_int(3), r.column_int(4)});
               });
}

}  // namespace mailtap::storage
