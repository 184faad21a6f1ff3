// Retention: deletes whole sessions (their events, certificates, messages and recipients go
// with them through ON DELETE CASCADE), in short write transactions so that a proxy recording
// into the file commits between them, then VACUUMs so the space and the deleted bytes leave the
// file. `mailtap prune` is this plus argument parsing and printing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/records.hpp"

namespace mailtap::storage {

struct PruneCriteria {
  // Sessions that started before this time. A session still in progress (no ended_at) only
  // if nothing was recorded for it since then, nor for longer than a live session can stay
  // silent (kLongestDuration, proxy/common/duration.hpp): its writer died.
  std::optional<Clock::time_point> before;
  // Never the N newest completed sessions. Without `before`: every other completed session.
  std::optional<std::size_t> keep;
  bool dry_run = false;  // select only; opens the file read-only
  // VACUUM after deleting, so the file shrinks. It rewrites the whole file, holding the write
  // lock all the while (a recording proxy's commits wait for it): `prune --no-vacuum` leaves
  // the freed pages in the file for later records instead. secure_delete has zeroed them and
  // the WAL checkpoint runs either way, so the deleted bytes leave the file all the same.
  bool vacuum = true;
  // How long the WAL checkpoint after the deletion waits, in all, for readers that hold an
  // older snapshot of the file (docs/tools/prune.md).
  std::chrono::milliseconds reader_wait{5000};
  // How long each of the deletion's write transactions (its turns) may hold the write lock: a
  // session or a body file at least, then more until this has passed (pruner.cpp). 0: one at a
  // time, for a test that stops prune between sessions.
  std::chrono::milliseconds turn{100};
  // Called after each turn of the deletion has committed, before anything else is done, with
  // how many of the selected sessions are deleted so far: where a test stops prune (a kill
  // there must leave nothing behind that the next run does not clean up). Empty otherwise.
  std::function<void(std::size_t deleted)> after_turn;
};

struct PrunedSession {
  std::int64_t id = 0;
  Clock::time_point started{};
  std::optional<Clock::time_point> ended;
  std::string client_address;
  std::string upstream_host;
  std::uint16_t upstream_port = 0;
  std::optional<Outcome> outcome;  // nullopt: in progress
  std::int64_t events = 0;
  std::int64_t messages = 0;
};

struct PruneResult {
  std::vector<PrunedSession> sessions;  // oldest first
  // VACUUM ran and its WAL checkpoint finished: the deleted bytes have left the file.
  bool vacuumed = false;
  // Set if the sessions were deleted but VACUUM failed or the WAL checkpoint could not finish
  // (a reader held the file): the deleted sessions' bytes may still be in the file.
  std::string vacuum_warning;
  // Set if some of the deleted sessions' body files could not be removed.
  std::string body_files_warning;
  // Body files removed that belonged to no session this run deleted: left by an earlier run
  // stopped between a commit and the removal of its files, or by a writer whose transaction
  // was rolled back.
  std::size_t stray_body_files = 0;
  // Sessions the criteria selected but prune kept, by id: their started_at or ended_at is not a
  // timestamp or a date out of the clock's range (a damaged file, a hand edit), so neither their
  // age nor whether they finished is known.
  std::vector<std::int64_t> unreadable_kept;
  // Sessions without an end that started before PruneCriteria::before but were kept because
  // something was recorded for them within the last kLongestDuration (or since `before`): still
  // recorded, or cut (their proxy died) too recently to tell. Each with the time of its last
  // record (its start if it has none), oldest first; nullopt where that is no readable time.
  struct UnendedKept {
    std::int64_t id = 0;
    std::optional<Clock::time_point> last_record;
  };
  std::vector<UnendedKept> unended_kept;
  // Set if the deletion stopped at a database error after some sessions were deleted: why, and
  // how many. `sessions` lists those deleted; `not_deleted` more are still in the file, whole.
  // The WAL checkpoint still ran; VACUUM did not (vacuumed is false).
  std::string stopped;
  std::size_t not_deleted = 0;
};

// Selects the sessions once, in one snapshot: a session that starts meanwhile is not deleted
// (one selected is deleted by id: an in-progress one whose writer was taken for dead goes even
// if it records something meanwhile). Then deletes them, oldest first, a few at a time: each
// transaction holds the write lock for about `turn` (100 ms), and is followed by a pause in which
// a recording proxy commits, if another process has the database open (see delete_one_turn and
// after_commit in pruner.cpp). A session goes whole or not at
// all, its body file only once its rows are gone. Then, whatever was deleted (even nothing),
// the body files no session has and the stored certificates no session saw go: a prune stopped
// after a commit leaves them (see BodyFileRemoval in pruner.cpp for why no live or committed
// session's file is ever taken). False with `error` set if the file is
// missing, not a current mailtap database, or on a database error before any session was
// deleted. A database error after some were deleted is true with out.stopped set: out.sessions
// lists the sessions deleted before it; the database holds the others whole, and a later run
// deletes them.
bool prune_sessions(const std::string& path, const PruneCriteria& criteria, PruneResult& out,
                    std::string& error);

}  // namespace mailtap::storage
