#include "storage/pruner.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "proxy/common/duration.hpp"
#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/schema.hpp"
#include "storage/timestamp.hpp"

namespace mailtap::storage {

namespace {

// The times `before` is compared with, as stored: `before` itself, and for a session still in
// progress the time its last record must precede. A live session records something at least
// every kLongestDuration (no wait of its lasts longer), so one silent for longer than that, and
// since `before`, has lost its writer; one a person merely left idle at a prompt is kept.
struct Bounds {
  std::string before;
  std::string silent_before;
};

Bounds bounds_of(const PruneCriteria& c) {
  if (!c.before) return {};
  const Clock::time_point silent = std::min(*c.before, Clock::now() - kLongestDuration);
  return {format_timestamp(*c.before), format_timestamp(silent)};
}

// The sessions `criteria` selects, as an SQL condition on `sessions s` with ?1 = before,
// ?2 = keep, ?3 = silent_before. Completed sessions match `before` by start time; an open one
// only if nothing was recorded for it since silent_before either (see Bounds).
std::string victims_condition(const PruneCriteria& c) {
  std::string where = "1";
  if (c.before)
    where +=
        " AND s.started_at < ?1 AND (s.ended_at IS NOT NULL OR "
        "coalesce((SELECT max(at) FROM events e WHERE e.session_id = s.id), s.started_at) < ?3)";
  else
    where += " AND s.ended_at IS NOT NULL";
  if (c.keep)
    where +=
        " AND s.id NOT IN (SELECT id FROM sessions WHERE ended_at IS NOT NULL "
        "ORDER BY started_at DESC, id DESC LIMIT ?2)";
  return where;
}

void bind_criteria(Statement& st, const PruneCriteria& c, const Bounds& b) {
  if (c.before) {
    st.bind_text(1, b.before);
    st.bind_text(3, b.silent_before);
  }
  if (c.keep) st.bind_int(2, static_cast<std::int64_t>(*c.keep));
}

Status select_victims(Database& db, const PruneCriteria& c, const Bounds& before,
                      std::vector<PrunedSession>& out) {
  Statement st;
  if (Status s =
          db.prepare("SELECT s.id, s.started_at, s.ended_at, s.client_address, s.upstream_host, "
                     "s.upstream_port, s.outcome, "
                     "(SELECT count(*) FROM events e WHERE e.session_id = s.id), "
                     "(SELECT count(*) FROM messages m WHERE m.session_id = s.id) "
                     "FROM sessions s WHERE " +
                         victims_condition(c) + " ORDER BY s.started_at, s.id",
                     st);
      !s.ok()) {
    return s;
  }
  bind_criteria(st, c, before);
  Statement::Step step;
  while ((step = st.step()) == Statement::Step::row) {
    PrunedSession p;
    p.id = st.column_int(0);
    p.started = parse_timestamp(st.column_text(1)).value_or(Clock::time_point{});
    if (!st.is_null(2)) p.ended = parse_timestamp(st.column_text(2));
    p.client_address = st.column_text(3);
    p.upstream_host = st.column_text(4);
    p.upstream_port = static_cast<std::uint16_t>(st.column_int(5));
    if (!st.is_null(6)) p.outcome = parse_name<Outcome>(st.column_text(6)).value_or(Outcome::error);
    p.events = st.column_int(7);
    p.messages = st.column_int(8);
    out.push_back(std::move(p));
  }
  return step == Statement::Step::error ? st.last_error() : Status{};
}

Status delete_victims(Database& db, const PruneCriteria& c, const Bounds& before) {
  Statement del;
  if (Status s = db.prepare("DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s WHERE " +
                                victims_condition(c) + ")",
                            del);
      !s.ok()) {
    return s;
  }
  bind_criteria(del, c, before);
  if (Status s = del.run(); !s.ok()) return s;
  // The stored copies of certificates no remaining session saw.
  return db.exec(
      "DELETE FROM certificate_ders WHERE sha256 NOT IN (SELECT sha256 FROM certificates)");
}

// Copies the -wal file into the database file and empties it, waiting up to `wait` for the
// readers that hold an older snapshot. Empty when that finished, else why not: the pragma
// reports a reader it could not wait out (or a writer it could not get ahead of) as busy=1 in
// its result row, not as an error.
//
// A TRUNCATE checkpoint holds the write lock while it waits for readers, so a proxy recording
// into the file waits for its commits all that time, its clients' replies with them: it is
// tried in short turns, with pauses in which the proxy commits (longer than the 100 ms between
// the tries of SQLite's busy handler, so the proxy's tries land in them). Each turn starts with
// a PASSIVE checkpoint, which never takes the write lock, so that the bulk of the copying (a
// whole file after VACUUM) is not done under it either.
//
// No turn ends past `wait`: a turn's wait for readers is what is left of it (at most the turn's
// 100 ms), the pause before the next turn too, and a turn at the deadline waits for nothing.
std::string checkpoint_wal(Database& db, std::chrono::milliseconds wait) {
  using std::chrono::milliseconds;
  using std::chrono::steady_clock;
  constexpr milliseconds kHold{100};
  constexpr milliseconds kPause{250};
  const auto deadline = steady_clock::now() + wait;
  for (;;) {
    // This connection does nothing after the checkpoint: its own busy timeout need not return.
    const milliseconds left =
        std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    const milliseconds hold = std::clamp(left, milliseconds{0}, kHold);
    if (Status s = db.exec("PRAGMA busy_timeout=" + std::to_string(hold.count())); !s.ok())
      return s.message;
    std::int64_t busy = 0;
    if (Status s = db.query_int("PRAGMA wal_checkpoint(PASSIVE)", busy); !s.ok()) return s.message;
    if (Status s = db.query_int("PRAGMA wal_checkpoint(TRUNCATE)", busy); !s.ok()) return s.message;
    if (busy == 0) return {};
    const steady_clock::time_point now = steady_clock::now();
    if (now >= deadline) {
      return std::string(kReaderHoldsTheCheckpoint) + "; waited " +
             std::to_string(wait.count() / 1000) + " s for it";
    }
    std::this_thread::sleep_for(std::min<steady_clock::duration>(kPause, deadline - now));
  }
}

// After the deletion: VACUUM (unless told not to), then the WAL checkpoint that takes the
// deleted bytes out of the file. What could not finish is said in out.vacuum_warning.
void vacuum_and_checkpoint(Database& db, bool vacuum, std::chrono::milliseconds reader_wait,
                           PruneResult& out) {
  const std::string& path = db.path();
  if (Status v = vacuum ? db.exec("VACUUM") : Status{}; !v.ok()) {
    out.vacuum_warning = "VACUUM failed (" + v.message +
                         "); the sessions are deleted but the file did not shrink, and their "
                         "bytes may still be in its free pages";
    return;
  }
  if (std::string why = checkpoint_wal(db, reader_wait); !why.empty()) {
    // In WAL mode VACUUM writes the clean file into the -wal file, and the deletion its zeroed
    // pages (secure_delete); until a checkpoint copies them back, the main file still holds
    // the deleted sessions' pages.
    out.vacuum_warning = std::string(vacuum ? "VACUUM ran, but the WAL checkpoint that writes it"
                                            : "the WAL checkpoint that writes the deletion") +
                         " into '" + path + "' could not finish (" + why +
                         "), so the deleted sessions' bytes are still in that file. Close "
                         "the programs reading it (" +
                         std::string(kReadersThatHoldCheckpoints) + ") and run: sqlite3 '" + path +
                         "' 'PRAGMA wal_checkpoint(TRUNCATE)'";
    return;
  }
  out.vacuumed = vacuum;
}

}  // namespace

bool prune_sessions(const std::string& path, const PruneCriteria& c, PruneResult& out,
                    std::string& error) {
  out = {};
  // A read-write open would create a missing file: pruning never should.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  OpenOptions options;
  options.mode = c.dry_run ? OpenMode::read_only : OpenMode::read_write;
  Database db;
  Status s = Database::open(path, options, db);
  if (s.ok()) s = check_for_reading(db);
  // Refuses a -wal file another user made since open() looked (check_for_reading replayed it);
  // until it has passed, closing would checkpoint their commits into the database.
  if (s.ok() && !c.dry_run) s = db.secure_sidecar_files();
  if (!s.ok()) {
    error = s.message;
    return false;
  }
  const Bounds before = bounds_of(c);
  if (!c.dry_run) s = db.exec("BEGIN IMMEDIATE");
  if (s.ok()) s = select_victims(db, c, before, out.sessions);
  if (s.ok() && !c.dry_run && !out.sessions.empty()) s = delete_victims(db, c, before);
  if (s.ok() && !c.dry_run) s = db.exec("COMMIT");
  if (!s.ok()) {
    if (db.in_transaction()) db.exec("ROLLBACK");
    out.sessions.clear();
    error = s.message;
    return false;
  }
  if (!c.dry_run && !out.sessions.empty()) {
    std::vector<std::int64_t> ids;
    for (const PrunedSession& p : out.sessions) ids.push_back(p.id);
    if (const std::size_t kept = remove_body_files(path, ids); kept != 0) {
      out.body_files_warning = std::to_string(kept) + " body file(s) in '" + body_directory(path) +
                               "' could not be removed; nothing refers to them any more";
    }
    vacuum_and_checkpoint(db, c.vacuum, c.reader_wait, out);
  }
  return true;
}

}  // namespace mailtap::storage
