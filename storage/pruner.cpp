#include "storage/pruner.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "proxy/common/duration.hpp"
#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/other_connections.hpp"
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
// ?3 = silent_before. Completed sessions match `before` by start time; an open one only if
// nothing was recorded for it since silent_before either (see Bounds). The sessions --keep
// keeps are taken out afterwards (keep_window).
std::string victims_condition(const PruneCriteria& c) {
  std::string where = "1";
  if (c.before)
    where +=
        " AND s.started_at < ?1 AND (s.ended_at IS NOT NULL OR "
        "coalesce((SELECT max(at) FROM events e WHERE e.session_id = s.id), s.started_at) < ?3)";
  else
    where += " AND s.ended_at IS NOT NULL";
  return where;
}

void bind_criteria(Statement& st, const PruneCriteria& c, const Bounds& b) {
  if (c.before) {
    st.bind_text(1, b.before);
    st.bind_text(3, b.silent_before);
  }
}

// A time column's text as a time the clock holds; nullopt for text that is no timestamp or a
// date out of its range (1026 or 9999: read as the clock's first or last instant, it would
// make a session older or newer than any other), as the readers call both unreadable.
std::optional<Clock::time_point> readable_time(const std::string& text) {
  const auto t = parse_timestamp(text);
  if (!t || out_of_clock_range(*t)) return std::nullopt;
  return t;
}

// Whether the times the selection judged a session by are readable (readable_time):
// started_at, ended_at, and for a session in progress the `at` of its last record (column 9),
// compared as text with silent_before. A damaged one (a damaged file, a hand edit) says nothing
// of its age, nor a damaged ended_at whether it finished, nor a damaged last `at` whether it
// still records.
bool judged_by_timestamps(const Statement& st) {
  if (!readable_time(st.column_text(1))) return false;
  if (!st.is_null(2)) return readable_time(st.column_text(2)).has_value();
  return st.is_null(9) || readable_time(st.column_text(9)).has_value();
}

// The ids of the `keep` newest completed sessions, sorted: newest by a start that is readable
// (readable_time). A start out of range ("9999-05-01...") sorts after every real one, and
// counted among them it pushed the real newest session out of the window, which was deleted;
// such a session is kept anyway, as unreadable (select_victims).
Status keep_window(Database& db, std::size_t keep, std::vector<std::int64_t>& kept) {
  Statement st;
  if (Status s = db.prepare("SELECT id, started_at FROM sessions WHERE ended_at IS NOT NULL "
                            "ORDER BY started_at DESC, id DESC",
                            st);
      !s.ok())
    return s;
  Statement::Step step = Statement::Step::row;
  while (kept.size() < keep && (step = st.step()) == Statement::Step::row)
    if (readable_time(st.column_text(1))) kept.push_back(st.column_int(0));
  std::sort(kept.begin(), kept.end());
  return step == Statement::Step::error ? st.last_error() : Status{};
}

// The sessions selected, but those in `kept` (sorted); one whose times are not timestamps
// (judged_by_timestamps) is kept, by id in `unreadable`.
Status read_victims(Database& db, const PruneCriteria& c, const Bounds& before,
                    const std::vector<std::int64_t>& kept, std::vector<PrunedSession>& out,
                    std::vector<std::int64_t>& unreadable) {
  Statement st;
  if (Status s =
          db.prepare("SELECT s.id, s.started_at, s.ended_at, s.client_address, s.upstream_host, "
                     "s.upstream_port, s.outcome, "
                     "(SELECT count(*) FROM events e WHERE e.session_id = s.id), "
                     "(SELECT count(*) FROM messages m WHERE m.session_id = s.id), "
                     "(SELECT max(at) FROM events e WHERE e.session_id = s.id) "
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
    if (std::binary_search(kept.begin(), kept.end(), p.id)) continue;
    if (!judged_by_timestamps(st)) {
      unreadable.push_back(p.id);
      continue;
    }
    p.started = *readable_time(st.column_text(1));
    if (!st.is_null(2)) p.ended = readable_time(st.column_text(2));
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

// The sessions without an end that `before` would have chosen by their start but that were
// kept for what was recorded for them lately (victims_condition): PruneResult::unended_kept.
Status read_unended_kept(Database& db, const Bounds& before,
                         std::vector<PruneResult::UnendedKept>& out) {
  constexpr std::string_view kLast =
      "coalesce((SELECT max(at) FROM events e WHERE e.session_id = s.id), s.started_at)";
  Statement st;
  if (Status s = db.prepare("SELECT s.id, " + std::string(kLast) +
                                " FROM sessions s WHERE s.ended_at IS NULL AND s.started_at < ?1 "
                                "AND NOT " +
                                std::string(kLast) + " < ?3 ORDER BY s.started_at, s.id",
                            st);
      !s.ok())
    return s;
  st.bind_text(1, before.before);
  st.bind_text(3, before.silent_before);
  Statement::Step step;
  while ((step = st.step()) == Statement::Step::row)
    out.push_back({st.column_int(0), readable_time(st.column_text(1))});
  return step == Statement::Step::error ? st.last_error() : Status{};
}

// The sessions to delete, in `out`; those selected whose times are not timestamps, by id in
// `unreadable` (`mailtap audit` reports a damaged started_at or ended_at); with `before`, the
// sessions without an end it kept in `unended`. The keep window and
// the selection are read in one transaction: one snapshot.
Status select_victims(Database& db, const PruneCriteria& c, const Bounds& before,
                      std::vector<PrunedSession>& out, std::vector<std::int64_t>& unreadable,
                      std::vector<PruneResult::UnendedKept>& unended) {
  if (Status s = db.exec("BEGIN"); !s.ok()) return s;
  std::vector<std::int64_t> kept;
  Status s = c.keep ? keep_window(db, *c.keep, kept) : Status{};
  if (s.ok()) s = read_victims(db, c, before, kept, out, unreadable);
  if (s.ok() && c.before) s = read_unended_kept(db, before, unended);
  const Status ended = db.exec(s.ok() ? "COMMIT" : "ROLLBACK");
  return s.ok() ? ended : s;
}

// The deletion goes in turns: short write transactions, with pauses between them in which a
// proxy recording into the file commits. One transaction for the whole deletion held the write
// lock for as long as it took (secure_delete zeroes every freed page: seconds for a few hundred
// megabytes), and a proxy's commits, its clients' replies with them, waited all that time: past
// its lock_wait (a minute) on a large first prune, and its recording failed. A turn deletes
// whole sessions, one after the other, until PruneCriteria::turn has passed: a session is deleted
// with everything recorded with it or not at all, whatever stops prune. The pause is longer than
// the 100 ms between the tries of SQLite's busy handler, so a waiting proxy's next try lands in it;
// none is made while no other process has the database open (after_commit).
constexpr std::chrono::milliseconds kDeletePause{150};

constexpr std::string_view kUnseenCertificateCopies =
    "FROM certificate_ders WHERE sha256 NOT IN (SELECT sha256 FROM certificates)";

// The body files of the sessions prune deletes, and those an earlier run left behind, are
// taken only inside one of prune's write transactions, and only if no session row has their id
// then. A writer (storage/recorder.cpp) makes a session's body file inside a write transaction
// that has written the session's row, or after that row committed, and the row commits with
// that transaction or not at all. While prune holds the write lock, no writer is between making
// a file and committing its row: a file whose id no row has then belongs to no session,
// recorded or being recorded (its session was deleted, or a writer's transaction was rolled
// back), and no writer makes a file by that name before prune's transaction ends. Taken after
// prune's commit instead, the file could already be a new session's: one that took the id
// again (a proxy started since numbers its sessions after the highest id left).
//
// Taken is moved aside (set_aside_body_files, a rename); the files moved aside are removed
// once the lock is released, since an unlink can take milliseconds (body_files.hpp).
class BodyFileRemoval {
 public:
  BodyFileRemoval(Database& db, const std::vector<PrunedSession>& victims) : db_(db) {
    for (const PrunedSession& v : victims) victim_ids_.push_back(v.id);
    std::sort(victim_ids_.begin(), victim_ids_.end());
  }
  Status prepare() { return db_.prepare("SELECT 1 FROM sessions WHERE id = ?1", exists_); }

  // Drops from `ids` those a session in the database has.
  Status drop_referenced(std::vector<std::int64_t>& ids) {
    std::vector<std::int64_t> unreferenced;
    for (const std::int64_t id : ids) {
      bool referenced = false;
      if (Status s = has_session(id, referenced); !s.ok()) return s;
      if (!referenced) unreferenced.push_back(id);
    }
    ids = std::move(unreferenced);
    return {};
  }

  // Their files are taken at the next set_aside_pending().
  void add_pending(const std::vector<std::int64_t>& ids) {
    pending_.insert(pending_.end(), ids.begin(), ids.end());
    std::sort(pending_.begin(), pending_.end());
    pending_.erase(std::unique(pending_.begin(), pending_.end()), pending_.end());
  }
  bool has_pending() const { return !pending_.empty(); }
  // With the write lock held: moves aside the pending files that no session has now, the first
  // whatever the time, the others until `until`; the rest stay pending.
  Status set_aside_pending(std::chrono::steady_clock::time_point until) {
    std::size_t done = 0;
    for (; done < pending_.size(); ++done) {
      if (done > 0 && std::chrono::steady_clock::now() >= until) break;
      const std::int64_t id = pending_[done];
      bool referenced = false;
      if (Status s = has_session(id, referenced); !s.ok()) return s;
      if (!referenced) kept_ += set_aside_body_files(db_.path(), {id}, set_aside_);
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
    return {};
  }
  // Files an earlier run moved aside and did not remove.
  void add_set_aside(const std::vector<std::int64_t>& ids) {
    set_aside_.insert(set_aside_.end(), ids.begin(), ids.end());
  }
  // Needs no lock: removes the files moved aside.
  void remove_set_aside() {
    for (const std::int64_t id : set_aside_) {
      const bool failed = remove_set_aside_body_files(db_.path(), {id}) != 0;
      kept_ += failed ? 1 : 0;
      if (!failed && !std::binary_search(victim_ids_.begin(), victim_ids_.end(), id)) ++strays_;
    }
    set_aside_.clear();
  }

  std::size_t kept() const { return kept_; }      // could not be removed
  std::size_t strays() const { return strays_; }  // removed, of no session this run deleted
  // Why the body directory could not be listed for the leftovers ("" if it was).
  std::string unlisted;

 private:
  Status has_session(std::int64_t id, bool& has) {
    exists_.bind_int(1, id);
    const Statement::Step step = exists_.step();
    Status error = step == Statement::Step::error ? exists_.last_error() : Status{};
    exists_.reset();
    has = step == Statement::Step::row;
    return error;
  }

  Database& db_;
  Statement exists_;
  std::vector<std::int64_t> victim_ids_;  // sorted
  std::vector<std::int64_t> pending_;     // sorted
  std::vector<std::int64_t> set_aside_;
  std::size_t kept_ = 0;
  std::size_t strays_ = 0;
};

// After a turn's commit, the lock released: removes the files the turn moved aside, and if
// another turn follows, pauses (kDeletePause) for a writer that may be waiting for the lock,
// the removal counting as pause. Only if another process has the database open: else none can
// be waiting, and the pauses made prune take two and a half times as long as its work. A
// process that opens it meanwhile, to write, is seen at the next turn's end (it holds its lock
// on the -shm file from its first try for the write lock on), so it waits a turn at most.
void after_commit(const Database& db, BodyFileRemoval& files, bool another_turn_follows) {
  const auto unlocked = std::chrono::steady_clock::now();
  files.remove_set_aside();
  if (another_turn_follows && opened_by_another_process(db.path()).value_or(true))
    std::this_thread::sleep_until(unlocked + kDeletePause);
}

// One turn: moves aside the body files of the sessions the turns before deleted, then deletes
// victims[next], victims[next + 1], ... until `turn` has passed, and commits; `next` then
// points past them. A turn takes a file or deletes a session at least. On an error the turn is
// rolled back.
Status delete_one_turn(Database& db, Statement& del, const std::vector<PrunedSession>& victims,
                       std::size_t& next, BodyFileRemoval& files, std::chrono::milliseconds turn) {
  if (Status s = db.exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  const auto turn_end = std::chrono::steady_clock::now() + turn;
  std::size_t n = next;
  const bool takes_files = files.has_pending();
  Status s = files.set_aside_pending(turn_end);
  while (s.ok() && n < victims.size() &&
         ((n == next && !takes_files) || std::chrono::steady_clock::now() < turn_end)) {
    del.bind_int(1, victims[n].id);
    s = del.run();
    n += s.ok() ? 1 : 0;
  }
  if (s.ok()) s = db.exec("COMMIT");
  if (!s.ok()) {
    if (db.in_transaction()) db.exec("ROLLBACK");
    return s;
  }
  std::vector<std::int64_t> ids;
  for (std::size_t i = next; i < n; ++i) ids.push_back(victims[i].id);
  files.add_pending(ids);
  next = n;
  return {};
}

// Deletes the sessions chosen by select_victims(), in turns; their body files go in the turn
// after (the rows first, so no committed row ever refers to a missing file), the last turn's
// with the leftovers. `deleted` says how many are gone (the first ones of `victims`), also on an
// error: the turns before it stay committed, and the database is whole, every session in it
// with all its records.
Status delete_victims(Database& db, const std::vector<PrunedSession>& victims,
                      const PruneCriteria& c, std::size_t& deleted, BodyFileRemoval& files) {
  Statement del;
  if (Status s = db.prepare("DELETE FROM sessions WHERE id = ?1", del); !s.ok()) return s;
  deleted = 0;
  while (deleted < victims.size()) {
    if (Status s = delete_one_turn(db, del, victims, deleted, files, c.turn); !s.ok()) return s;
    if (c.after_turn) c.after_turn(deleted);
    after_commit(db, files, deleted < victims.size());
  }
  return {};
}

// One turn of remove_leftovers(), the first deleting the certificate copies too.
Status remove_leftovers_turn(Database& db, BodyFileRemoval& files, std::chrono::milliseconds turn,
                             bool first, bool& deleted_rows) {
  if (Status s = db.exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  const auto turn_end = std::chrono::steady_clock::now() + turn;
  Status s;
  if (first) {
    s = db.exec("DELETE " + std::string(kUnseenCertificateCopies));
    deleted_rows = s.ok() && db.changes() > 0;
  }
  if (s.ok()) s = files.set_aside_pending(turn_end);  // the decision, under the lock
  if (s.ok()) s = db.exec("COMMIT");
  if (!s.ok()) {
    if (db.in_transaction()) db.exec("ROLLBACK");
    if (first) deleted_rows = false;
  }
  return s;
}

// After the deletion, and whether or not there was one: removes the body files no session has
// (the last turn's, and those an earlier run left: one killed after a turn's commit, or a writer
// whose transaction was rolled back), and the stored certificates no session saw (the deleted
// sessions', and those a run killed before this step left). In turns, as the deletion, taken
// only if the snapshot shows something to remove. `deleted_rows`: certificate copies were
// deleted.
Status remove_leftovers(Database& db, BodyFileRemoval& files, std::chrono::milliseconds turn,
                        bool& deleted_rows) {
  BodyDirectoryListing listing;
  if (Status s = list_body_files(db.path(), listing); !s.ok()) files.unlisted = s.message;
  if (Status s = files.drop_referenced(listing.files); !s.ok()) return s;  // a first choice
  std::int64_t unseen = 0;
  if (Status s = db.query_int("SELECT count(*) " + std::string(kUnseenCertificateCopies), unseen);
      !s.ok()) {
    return s;
  }
  files.add_set_aside(listing.set_aside);
  files.remove_set_aside();  // no session has those any more: no lock needed
  files.add_pending(listing.files);
  if (!files.has_pending() && unseen == 0) return {};
  for (bool first = true; first || files.has_pending(); first = false) {
    if (Status s = remove_leftovers_turn(db, files, turn, first, deleted_rows); !s.ok()) return s;
    after_commit(db, files, files.has_pending());
  }
  return {};
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

// Why prune stopped at `s`, having deleted `deleted` of the `selected` sessions.
std::string stopped_because(const Status& s, std::size_t deleted, std::size_t selected) {
  constexpr std::string_view kLeftovers =
      "the stored certificates and body files no session refers to any more";
  if (deleted < selected) {
    return s.message + " (" + std::to_string(deleted) + " of the " + std::to_string(selected) +
           " sessions to delete were deleted before it; run prune again for the others)";
  }
  if (selected == 0) return s.message + " (removing " + std::string(kLeftovers) + ")";
  return s.message + " (the " + std::to_string(selected) + " sessions were deleted before it, " +
         "but not " + std::string(kLeftovers) + "; run prune again to remove them)";
}

// prune_sessions() past the selection: deletes out.sessions, then the leftovers of this run
// and of earlier ones (remove_leftovers). `deleted_rows`: something was deleted from the
// database (VACUUM and the checkpoint are due). On an error out.sessions is cut to the sessions
// deleted before it; false (with `error`) if that is none, else out.stopped says why and how
// many are left.
bool delete_and_clean(Database& db, const PruneCriteria& c, PruneResult& out, bool& deleted_rows,
                      std::string& error) {
  BodyFileRemoval files(db, out.sessions);
  std::size_t deleted = 0;
  bool copies_deleted = false;
  Status s = files.prepare();
  if (s.ok()) s = delete_victims(db, out.sessions, c, deleted, files);
  // After an error the lock was not to be had: the next run removes the leftovers.
  if (s.ok()) s = remove_leftovers(db, files, c.turn, copies_deleted);
  files.remove_set_aside();  // after an error too: they need no lock
  deleted_rows = deleted > 0 || copies_deleted;
  out.stray_body_files = files.strays();
  if (files.kept() != 0) {
    out.body_files_warning = std::to_string(files.kept()) + " body file(s) in '" +
                             body_directory(db.path()) +
                             "' could not be removed; nothing refers to them any more";
  } else if (!files.unlisted.empty()) {
    out.body_files_warning = files.unlisted +
                             "; body files no session refers to any more, if "
                             "there are any, are still there";
  }
  if (s.ok()) return true;
  if (out.sessions.empty()) {
    // Nothing was selected, so only the sweep of what earlier runs left failed: prune did what
    // was asked (status 0, as before there was a sweep), and the next run sweeps.
    if (!out.body_files_warning.empty()) out.body_files_warning += "; ";
    out.body_files_warning += stopped_because(s, 0, 0) + "; the next prune removes them";
    return true;
  }
  const std::string why = stopped_because(s, deleted, out.sessions.size());
  out.not_deleted = out.sessions.size() - deleted;
  out.sessions.resize(deleted);
  if (deleted == 0) {
    error = why;
    return false;
  }
  out.stopped = why;
  return true;
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
  options.allow_immutable = c.dry_run;  // a one-shot read, as the other tools' (an archive)
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
  // One snapshot (select_victims): the sessions to delete are chosen once, so a session that
  // starts while the deletion goes on is not among them. Those chosen are deleted by id: one
  // chosen in progress (silent for longer than kLongestDuration, its writer dead) goes even if
  // it records something meanwhile.
  s = select_victims(db, c, bounds_of(c), out.sessions, out.unreadable_kept, out.unended_kept);
  if (!s.ok()) {
    out.sessions.clear();
    error = s.message;
    return false;
  }
  if (c.dry_run) return true;
  // Also with no session to delete: an earlier run may have been stopped before its leftovers.
  bool deleted_rows = false;
  if (!delete_and_clean(db, c, out, deleted_rows, error)) return false;
  if (!deleted_rows) return true;
  // After an error the turns before it are committed, their deleted bytes in the -wal file:
  // the checkpoint still runs (its first step takes no lock). VACUUM does not: it wants the
  // write lock the deletion could not get, and would hold a recording proxy up for the whole
  // rewrite of a file that still holds sessions to delete; the next prune runs it.
  vacuum_and_checkpoint(db, c.vacuum && out.stopped.empty(), c.reader_wait, out);
  return true;
}

}  // namespace mailtap::storage
