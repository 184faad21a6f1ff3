// Prune next to a recording proxy: the deletion goes in short transactions that let the proxy's
// commits in, and whatever stops it, it leaves whole sessions, each with its body file.
#include <gtest/gtest.h>

#include <signal.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "storage/body_files.hpp"
#include "storage/pruner.hpp"
#include "storage/recorder.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::count;
using test_support::TempDir;

std::unique_ptr<Recorder> open_recorder(const std::string& path) {
  RecorderOptions o;  // the proxy's busy_timeout and lock_wait
  o.path = path;
  std::string error;
  auto rec = Recorder::open(o, error);
  EXPECT_NE(rec, nullptr) << error;
  return rec;
}

// A record large enough that deleting it in one transaction takes seconds, made in a moment:
// session 1, recorded with a body file (ten 8 KiB pieces, the last two past the first 64 KiB),
// and `copies` copies of it, made in SQL, each event kept in the database `octets` long, and
// each with a copy of the body file. Returns how many sessions that is.
std::int64_t build_large_record(const std::string& path, int copies, int octets) {
  {
    auto rec = open_recorder(path);
    test_support::record_body(*rec, 1, 10, 8 * 1024);
  }
  EXPECT_TRUE(fs::exists(body_file(path, 1)));
  std::string sql =
      "BEGIN;"
      "CREATE TEMP TABLE s AS SELECT * FROM sessions WHERE id = 1;"
      "CREATE TEMP TABLE e AS SELECT * FROM events WHERE session_id = 1;"
      "UPDATE temp.e SET id = NULL;"
      "UPDATE temp.e SET bytes = randomblob(" +
      std::to_string(octets) + ") WHERE file_length IS NULL;";
  for (int i = 0; i < copies; ++i) {
    sql +=
        "UPDATE temp.s SET id = id + 1;"
        "INSERT INTO main.sessions SELECT * FROM temp.s;"
        "UPDATE temp.e SET session_id = session_id + 1;"
        "INSERT INTO main.events SELECT * FROM temp.e;";
  }
  sql += "COMMIT;";
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close_v2(db);
  for (int i = 0; i < copies; ++i) fs::copy_file(body_file(path, 1), body_file(path, i + 2));
  return copies + 1;
}

// Nothing recorded is left without its session, and no event refers to a body file that is
// not there.
void expect_whole_sessions(const std::string& path) {
  EXPECT_EQ(count(path,
                  "SELECT count(*) FROM events WHERE session_id NOT IN "
                  "(SELECT id FROM sessions)"),
            0);
  EXPECT_EQ(count(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
  Database db;
  ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_only}, db).ok());
  Statement st;
  ASSERT_TRUE(
      db.prepare("SELECT DISTINCT session_id FROM events WHERE file_length IS NOT NULL", st).ok());
  while (st.step() == Statement::Step::row) {
    const std::int64_t id = st.column_int(0);
    EXPECT_TRUE(fs::exists(body_file(path, id))) << "session " << id << " lost its body file";
  }
}

// The files in the body directory.
std::size_t body_files_in(const std::string& path) {
  const fs::path dir = body_directory(path);
  if (!fs::exists(dir)) return 0;
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// A proxy's steady client: a session every 20 ms, each waiting for its commit as a client's
// QUIT does for its 221, on its own thread until stop().
class SteadyClient {
 public:
  explicit SteadyClient(Recorder& rec) : thread_([this, &rec] { run(rec); }) {}
  ~SteadyClient() { stop(); }
  SteadyClient(const SteadyClient&) = delete;
  SteadyClient& operator=(const SteadyClient&) = delete;

  void wait_for_first() const {
    while (recorded_ == 0) std::this_thread::sleep_for(1ms);
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::int64_t recorded() const { return recorded_; }

 private:
  void run(Recorder& rec) {
    while (!stopping_) {
      const SessionKey k = rec.new_session_key();
      test_support::record_batches(rec, {test_support::batch(test_support::session_opened(k),
                                                             test_support::session_closed(k))});
      ++recorded_;
      std::this_thread::sleep_for(20ms);
    }
  }

  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> recorded_{0};
  std::thread thread_;
};

// The steady client in a process of its own, as a proxy is: prune pauses for a writer only while
// another process has the database open (a thread of prune's own process would not show).
// Forked before this process opens the database (SQLite's state of its open files must not be
// inherited: the child would take the parent's locks for its own); it opens its recorder at
// start().
class SteadyClientProcess {
 public:
  struct Result {
    std::int64_t recorded = 0;
    bool failed = true;  // the recorder failed
  };

  explicit SteadyClientProcess(const std::string& path) {
    EXPECT_EQ(pipe(to_child_), 0);
    EXPECT_EQ(pipe(from_child_), 0);
    pid_ = fork();
    EXPECT_GE(pid_, 0);
    if (pid_ == 0) run(path);
  }
  ~SteadyClientProcess() {
    if (pid_ > 0) stop();
    for (int fd : {to_child_[0], to_child_[1], from_child_[0], from_child_[1]}) close(fd);
  }
  SteadyClientProcess(const SteadyClientProcess&) = delete;
  SteadyClientProcess& operator=(const SteadyClientProcess&) = delete;

  // Returns once the client's first session is committed; false if its recorder did not open.
  bool start() {
    char c = 'g';
    return write(to_child_[1], &c, 1) == 1 && read(from_child_[0], &c, 1) == 1 && c == 'r';
  }
  Result stop() {
    Result r;
    char c = 's';
    if (write(to_child_[1], &c, 1) == 1 &&
        read(from_child_[0], &r, sizeof r) != static_cast<ssize_t>(sizeof r))
      r = Result{};
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return r;
  }

 private:
  [[noreturn]] void run(const std::string& path) {
    char c = 0;
    (void)!read(to_child_[0], &c, 1);
    RecorderOptions o;  // the proxy's busy_timeout and lock_wait
    o.path = path;
    std::string error;
    auto rec = Recorder::open(o, error);
    c = rec != nullptr ? 'r' : 'f';
    Result r;
    if (rec != nullptr) {
      SteadyClient client(*rec);
      client.wait_for_first();
      (void)!write(from_child_[1], &c, 1);
      (void)!read(to_child_[0], &c, 1);
      client.stop();
      r.recorded = client.recorded();
      rec->stop();
      r.failed = rec->failed();
    } else {
      (void)!write(from_child_[1], &c, 1);
      (void)!read(to_child_[0], &c, 1);
    }
    (void)!write(from_child_[1], &r, sizeof r);
    _exit(0);
  }

  pid_t pid_ = -1;
  int to_child_[2] = {-1, -1};
  int from_child_[2] = {-1, -1};
};

// prune deleted what it selected in one write transaction: a proxy recording into the file
// waited for all of it (seconds for a few hundred megabytes, past its minute on a multi-GB
// record, and then its recording failed), --no-vacuum or not. Now its commits get in between
// short transactions. Sessions recorded meanwhile are not deleted: the selection is made once.
TEST(StoragePruner, ARecordingProxyCommitsWhilePruneDeletesALargeRecord) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  SteadyClientProcess client(path);
  // 300 sessions of 480 KB in the database: 150 MB, one to a few seconds to delete at once
  // (secure_delete writes every freed page).
  const std::int64_t old_sessions = build_large_record(path, 300, 60000);
  ASSERT_TRUE(client.start());

  PruneCriteria all_completed;
  all_completed.keep = 0;
  all_completed.vacuum = false;  // VACUUM rewrites the file in one go: prune.md says so
  // The proxy's sessions committed by the end of prune's first turn, and of its last: more at
  // the last, the proxy's commits went on while prune deleted (they did not wait it out).
  const std::string proxy_sessions =
      "SELECT count(*) FROM sessions WHERE id > " + std::to_string(old_sessions);
  std::int64_t at_first_turn = -1;
  std::int64_t at_last_turn = -1;
  all_completed.after_turn = [&](std::size_t) {
    at_last_turn = count(path, proxy_sessions);
    if (at_first_turn < 0) at_first_turn = at_last_turn;
  };
  PruneResult pruned;
  std::string error;
  const bool ok = prune_sessions(path, all_completed, pruned, error);
  const SteadyClientProcess::Result client_saw = client.stop();
  const std::int64_t recorded = client_saw.recorded;
  ASSERT_TRUE(ok) << error;
  EXPECT_FALSE(client_saw.failed);

  EXPECT_GT(at_last_turn, at_first_turn) << "the proxy's commits waited for prune's deletion";
  ASSERT_GE(pruned.sessions.size(), static_cast<std::size_t>(old_sessions));
  for (std::int64_t id = 1; id <= old_sessions; ++id)
    EXPECT_EQ(pruned.sessions[static_cast<std::size_t>(id - 1)].id, id);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions") +
                static_cast<std::int64_t>(pruned.sessions.size()),
            old_sessions + recorded)
      << "a session reported deleted is there, or one not reported is gone";
  EXPECT_GT(count(path, "SELECT count(*) FROM sessions"), 0) << "the proxy's sessions are kept";
  expect_whole_sessions(path);
  EXPECT_FALSE(fs::exists(body_file(path, 1)));
  EXPECT_FALSE(fs::exists(body_file(path, old_sessions)));
}

// Runs prune in a child process, which is killed (SIGKILL) at the end of the first turn for which
// `kill_after(deleted)` is true: right after that turn's commit, before prune does anything else.
// Whether it was killed there (false: prune was through without meeting such a turn).
bool prune_killed_after_turn(const std::string& path, PruneCriteria criteria,
                             const std::function<bool(std::size_t deleted)>& kill_after) {
  criteria.after_turn = [&kill_after](std::size_t deleted) {
    if (kill_after(deleted)) ::kill(::getpid(), SIGKILL);
  };
  const pid_t child = fork();
  EXPECT_GE(child, 0);
  if (child == 0) {
    PruneResult pruned;
    std::string error;
    prune_sessions(path, criteria, pruned, error);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// The prune after a killed one: it deletes the `left` sessions the killed one did not, and
// removes the body files of every deleted session, those the killed one left on disk included
// (nothing refers to them, and they would hold their disk space for good).
void expect_next_prune_reclaims(const std::string& path, const PruneCriteria& criteria,
                                std::int64_t total, std::int64_t left) {
  PruneResult pruned;
  std::string error;
  ASSERT_TRUE(prune_sessions(path, criteria, pruned, error)) << error;
  EXPECT_EQ(static_cast<std::int64_t>(pruned.sessions.size()), left);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 0);
  EXPECT_EQ(count(path, "SELECT count(*) FROM events"), 0);
  EXPECT_EQ(body_files_in(path), 0u) << "body files of deleted sessions are left on disk";
  EXPECT_EQ(pruned.stray_body_files, static_cast<std::size_t>(total - left));
}

// A prune killed while it deletes leaves whole sessions, none of them without the body file
// its events refer to, and the next prune deletes the rest. Killed at the end of its first
// turn, every time: the kill raced the prune before, and the test skipped when prune won.
TEST(StoragePruner, AKilledPruneLeavesWholeSessionsAndTheNextOneFinishes) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::int64_t total = build_large_record(path, 5, 1000);
  PruneCriteria all_completed;
  all_completed.keep = 0;
  all_completed.vacuum = false;
  all_completed.turn = 0ms;  // a session a turn: never through in one

  ASSERT_TRUE(prune_killed_after_turn(path, all_completed, [](std::size_t) { return true; }));
  const std::int64_t left = count(path, "SELECT count(*) FROM sessions");
  EXPECT_EQ(left, total - 1) << "the first turn was committed before the kill";
  expect_whole_sessions(path);
  // Killed before it removed them: the body files of the sessions the first turn deleted.
  EXPECT_EQ(body_files_in(path), static_cast<std::size_t>(total));

  expect_next_prune_reclaims(path, all_completed, total, left);
}

// Killed at the end of its second turn, prune has moved the files of the sessions its first
// turn deleted aside (to be removed once the lock is released), not yet removed them: the next
// prune removes those too.
TEST(StoragePruner, FilesAKilledPruneMovedAsideAreRemovedByTheNext) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::int64_t total = build_large_record(path, 5, 1000);
  PruneCriteria all_completed;
  all_completed.keep = 0;
  all_completed.vacuum = false;
  all_completed.turn = 0ms;  // the first turn deletes a session, the second takes its file

  std::size_t turns = 0;
  ASSERT_TRUE(
      prune_killed_after_turn(path, all_completed, [&turns](std::size_t) { return ++turns == 2; }));
  const std::int64_t left = count(path, "SELECT count(*) FROM sessions");
  expect_whole_sessions(path);
  std::size_t set_aside = 0;
  for (const auto& entry : fs::directory_iterator(body_directory(path)))
    set_aside += entry.path().filename().string().starts_with(".pruned-") ? 1 : 0;
  EXPECT_EQ(set_aside, 1u);
  EXPECT_EQ(body_files_in(path), static_cast<std::size_t>(total));

  expect_next_prune_reclaims(path, all_completed, total, left);
}

// Killed after its last turn, before the clean-up that follows: a prune that selects nothing
// still removes what that one left, the body files and the stored certificates of sessions
// that are gone.
TEST(StoragePruner, APruneKilledAfterItsLastTurnIsCleanedUpByTheNext) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::int64_t total = build_large_record(path, 3, 1000);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "INSERT INTO certificate_ders(sha256, der) VALUES ('00', x'3082');"
                         "INSERT INTO certificates(session_id, position, der, sha256, subject, "
                         "issuer, not_before, not_after) VALUES (1, 0, x'', '00', 'CN=mx', "
                         "'CN=ca', '2026-01-01', '2027-01-01')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close_v2(db);
  PruneCriteria all_completed;
  all_completed.keep = 0;

  ASSERT_TRUE(prune_killed_after_turn(path, all_completed, [total](std::size_t deleted) {
    return deleted == static_cast<std::size_t>(total);
  }));
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 0);
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificate_ders"), 1);
  EXPECT_EQ(body_files_in(path), static_cast<std::size_t>(total));

  PruneResult pruned;
  std::string error;
  ASSERT_TRUE(prune_sessions(path, all_completed, pruned, error)) << error;
  EXPECT_TRUE(pruned.sessions.empty());
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificate_ders"), 0)
      << "a stored certificate no session saw is left in the file";
  EXPECT_EQ(body_files_in(path), 0u) << "body files of deleted sessions are left on disk";
  EXPECT_TRUE(pruned.vacuumed) << "the killed prune's VACUUM is done";
}

// A proxy started while prune runs numbers its sessions after the highest id left: once prune
// has deleted the newest session, the next one takes that id again, and its body file the name
// of the one deleted. prune removed the deleted session's files after its commit, the new
// session's with them when it came in between; now it removes them only under the write lock,
// and only if no session has the id then.
TEST(StoragePruner, ANewSessionThatTakesADeletedIdKeepsItsBodyFile) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::int64_t total = build_large_record(path, 2, 1000);  // sessions 1 to 3
  PruneCriteria all_completed;
  all_completed.keep = 0;
  all_completed.after_turn = [&](std::size_t) {
    // Once prune has committed: a new proxy records session 3 again, with a large message.
    auto rec = open_recorder(path);
    ASSERT_NE(rec, nullptr);
    test_support::record_body(*rec, static_cast<SessionKey>(total), 10, 8 * 1024);
  };
  PruneResult pruned;
  std::string error;
  ASSERT_TRUE(prune_sessions(path, all_completed, pruned, error)) << error;
  ASSERT_EQ(pruned.sessions.size(), static_cast<std::size_t>(total));
  ASSERT_EQ(count(path, "SELECT count(*) FROM sessions"), 1);
  ASSERT_EQ(count(path, "SELECT id FROM sessions"), total) << "the new session took the id again";
  EXPECT_TRUE(fs::exists(body_file(path, total))) << "prune removed the new session's file";
  expect_whole_sessions(path);
  EXPECT_EQ(body_files_in(path), 1u);
}

// A proxy's transaction that has made a new session's first body file, but not yet committed
// the session's row, while prune looks for body files no session has: the file stays. prune
// decides only while it holds the write lock, when no writer is between making a file and
// committing its row. (Decided on what the database held before that commit, the file was
// removed, and the committed event referred to a missing file.)
TEST(StoragePruner, ABodyFileOfASessionNotYetCommittedSurvivesAConcurrentPrune) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  build_large_record(path, 2, 1000);  // sessions 1 to 3, each with a body file
  // What the recorder's storage thread does in one transaction, session 100's row and events
  // as a copy of session 1's.
  Database writer;
  ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, writer).ok());
  ASSERT_TRUE(writer
                  .exec("BEGIN IMMEDIATE;"
                        "CREATE TEMP TABLE s AS SELECT * FROM sessions WHERE id = 1;"
                        "UPDATE temp.s SET id = 100;"
                        "INSERT INTO main.sessions SELECT * FROM temp.s;"
                        "CREATE TEMP TABLE e AS SELECT * FROM events WHERE session_id = 1;"
                        "UPDATE temp.e SET id = NULL, session_id = 100;"
                        "INSERT INTO main.events SELECT * FROM temp.e;")
                  .ok());
  std::string body;
  ASSERT_TRUE(fs::exists(body_file(path, 1)));
  BodyFileReader(path).read(1, 0, static_cast<std::int64_t>(fs::file_size(body_file(path, 1))),
                            body);
  BodyFileWriter bodies(path);
  std::int64_t offset = -1;
  ASSERT_TRUE(bodies.append(100, body, offset).ok());
  ASSERT_TRUE(bodies.sync().ok());

  PruneCriteria keep_all;
  keep_all.keep = 10;
  PruneResult pruned;
  std::string error;
  bool ok = false;
  std::thread prune([&] { ok = prune_sessions(path, keep_all, pruned, error); });
  // Time for prune to list the body directory while the transaction is open (the file must stay
  // whatever the order).
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(writer.exec("COMMIT").ok());
  prune.join();
  ASSERT_TRUE(ok) << error;
  EXPECT_TRUE(pruned.sessions.empty());
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE id = 100"), 1);
  EXPECT_TRUE(fs::exists(body_file(path, 100))) << "prune removed a recording session's file";
  expect_whole_sessions(path);
}

// A prune that selects nothing, whose sweep of what earlier runs left cannot have the write
// lock (another program holds it past prune's busy timeout), has done what was asked: it
// succeeds, with the sweep's error as the body files' warning. (It failed, exit status 1, where
// it had been a no-op before there was a sweep.)
TEST(StoragePruner, ASweepThatCannotHaveTheLockLeavesAPruneOfNothingAWarning) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::int64_t total = build_large_record(path, 3, 1000);
  {  // a session deleted behind prune's back: its body file is a stray for the sweep
    Database db;
    ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
    ASSERT_TRUE(db.exec("DELETE FROM sessions WHERE id = 1").ok());
  }
  const std::size_t files = body_files_in(path);
  PruneCriteria none;
  none.keep = 1000;
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  PruneResult pruned;
  std::string error;
  const bool ok = prune_sessions(path, none, pruned, error);
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close_v2(holder);

  ASSERT_TRUE(ok) << "a prune that selected nothing failed on its sweep: " << error;
  EXPECT_TRUE(pruned.sessions.empty());
  EXPECT_NE(pruned.body_files_warning.find("removing the stored certificates and body files"),
            std::string::npos)
      << pruned.body_files_warning;
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), total - 1);
  // The next run, with the lock free, sweeps the stray.
  ASSERT_TRUE(prune_sessions(path, none, pruned, error)) << error;
  EXPECT_EQ(pruned.stray_body_files, 1u);
  EXPECT_EQ(body_files_in(path), files - 1);
}

// A prune that a database error stops after its first turns (another program held the write
// lock past prune's busy timeout) reports the sessions it deleted, as a full run does, and how
// many it left; it failed before with nothing listed, as if nothing had been deleted.
TEST(StoragePruner, APruneStoppedByAnErrorListsWhatItDeleted) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::int64_t total = build_large_record(path, 5, 1000);
  PruneCriteria all_completed;
  all_completed.keep = 0;
  all_completed.reader_wait = 200ms;
  all_completed.turn = 0ms;  // a session a turn: never through in one

  // Once the first turn is committed, another connection takes the write lock, and holds it
  // until prune has given up. (Taken at the end of the turn: prune makes no pause in which it
  // could be taken while no other process has the database open.)
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &holder), SQLITE_OK);
  bool locked = false;
  all_completed.after_turn = [&](std::size_t) {
    if (!locked) locked = sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == 0;
  };
  PruneResult pruned;
  std::string error;
  const bool ok = prune_sessions(path, all_completed, pruned, error);
  if (locked) sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close_v2(holder);
  ASSERT_TRUE(locked);
  all_completed.after_turn = nullptr;

  const std::int64_t left = count(path, "SELECT count(*) FROM sessions");
  EXPECT_EQ(left, total - 1) << "the first turn deleted one session, the lock stopped the second";
  ASSERT_TRUE(ok) << "a prune that deleted sessions failed as if it had deleted none: " << error;
  EXPECT_NE(pruned.stopped.find("were deleted before it"), std::string::npos) << pruned.stopped;
  EXPECT_EQ(static_cast<std::int64_t>(pruned.sessions.size()), total - left);
  EXPECT_EQ(static_cast<std::int64_t>(pruned.not_deleted), left);
  EXPECT_FALSE(pruned.vacuumed);
  for (std::size_t i = 0; i < pruned.sessions.size(); ++i)
    EXPECT_EQ(pruned.sessions[i].id, static_cast<std::int64_t>(i) + 1);
  expect_whole_sessions(path);
  // The body files of the last turn go only under the write lock, which another program held:
  // the next run, which the error asks for, removes them with the rest.
  ASSERT_TRUE(prune_sessions(path, all_completed, pruned, error)) << error;
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 0);
  EXPECT_EQ(body_files_in(path), 0u);
}

// Sessions 1, 2, ... recorded ended, one a second long, started at `starts`; then `damage`
// (SQL) done to the file.
void record_ended_sessions(const std::string& path, const std::vector<Clock::time_point>& starts,
                           const std::string& damage) {
  {
    auto rec = open_recorder(path);
    std::vector<std::vector<Record>> sessions;
    for (const Clock::time_point start : starts) {
      const SessionKey k = rec->new_session_key();
      sessions.push_back(
          {test_support::session_opened(k, start), test_support::session_closed(k, start + 1s)});
    }
    test_support::record_batches(*rec, sessions);
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, damage.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
}

// Four ended sessions started at kT0, `damage` (SQL) done to sessions 2 and 3: prune, by age
// (--before, dry run) and then by count (--keep 0), deletes 1 and 4 and keeps and names 2 and 3.
void expect_damaged_two_and_three_kept(const std::string& damage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  record_ended_sessions(path, std::vector<Clock::time_point>(4, test_support::kT0), damage);

  for (const bool by_age : {true, false}) {
    SCOPED_TRACE(by_age ? "--before" : "--keep 0");
    PruneCriteria c;
    if (by_age)
      c.before = test_support::kT0 + 1h;
    else
      c.keep = 0;
    c.dry_run = by_age;
    PruneResult pruned;
    std::string error;
    ASSERT_TRUE(prune_sessions(path, c, pruned, error)) << error;
    std::vector<std::int64_t> removed;
    for (const auto& p : pruned.sessions) removed.push_back(p.id);
    EXPECT_EQ(removed, (std::vector<std::int64_t>{1, 4}));
    EXPECT_EQ(pruned.unreadable_kept, (std::vector<std::int64_t>{2, 3}));
  }
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 2);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE id IN (2, 3)"), 2);
}

// A session whose started_at or ended_at holds no timestamp (a damaged file) has no known age:
// prune keeps it, says so, and deletes the others as it would have.
TEST(StoragePruner, ASessionWhoseTimesAreUnreadableIsKeptAndNamed) {
  // Text that sorts before any date (as "1999-..." does) looks older than every --before.
  expect_damaged_two_and_three_kept(
      "UPDATE sessions SET started_at = '1999-xx' WHERE id = 2;"
      "UPDATE sessions SET ended_at = '' WHERE id = 3");
}

// A well-formed date the clock cannot hold (before 1677 or after 2262: a year typed 1026 or
// 9999) is as unreadable as no timestamp, as the readers say ("out of range"): not its clamped
// first or last instant, which made a start in 1026 older than every --before.
TEST(StoragePruner, ASessionWhoseTimesAreOutOfRangeIsKeptAndNamed) {
  expect_damaged_two_and_three_kept(
      "UPDATE sessions SET started_at = '1026-05-01T10:00:00.000000Z' WHERE id = 2;"
      "UPDATE sessions SET ended_at = '9999-05-01T10:00:00.000000Z' WHERE id = 3");
}

// --keep N keeps the N newest sessions by a start that is readable: one whose start is out of
// range (a year typed 9999) sorts after every real date, and counted among the N it pushed the
// real newest session out of the window and got it deleted. It is kept as unreadable instead.
TEST(StoragePruner, KeepCountsOnlySessionsWhoseStartIsReadable) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  record_ended_sessions(
      path, {test_support::kT0, test_support::kT0 + 1s, test_support::kT0 + 2s},
      "UPDATE sessions SET started_at = '9999-05-01T10:00:00.000000Z' WHERE id = 2");
  PruneCriteria c;
  c.keep = 1;
  PruneResult pruned;
  std::string error;
  ASSERT_TRUE(prune_sessions(path, c, pruned, error)) << error;
  std::vector<std::int64_t> removed;
  for (const auto& p : pruned.sessions) removed.push_back(p.id);
  EXPECT_EQ(removed, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(pruned.unreadable_kept, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE id = 3"), 1) << "the newest";
}

// A session still in progress is judged silent by the time of its last record: one whose last
// `at` is no timestamp (a damaged file) has no known silence, so prune keeps it and says so.
TEST(StoragePruner, AnOpenSessionWhoseLastRecordTimeIsUnreadableIsKept) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    std::vector<std::vector<Record>> sessions;
    for (int i = 0; i < 2; ++i) {
      const SessionKey k = rec->new_session_key();
      sessions.push_back({test_support::session_opened(k, test_support::kT0),
                          test_support::session_closed(k, test_support::kT0 + 1s)});
    }
    test_support::record_batches(*rec, sessions);
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  // Both still recording, or cut; session 1 silent since kT0, session 2's records all at 0.
  const std::string event_columns =
      "(session_id, seq, at, direction, phase, kind, bytes, wire_size, redacted) ";
  const std::string damage =
      "UPDATE sessions SET ended_at = NULL, outcome = NULL;"
      "INSERT INTO events" +
      event_columns + "VALUES (1, 1000, '" + format_timestamp(test_support::kT0) +
      "', 'client_to_upstream', 'plain', 'command', 'NOOP', 4, 0);"
      "INSERT INTO events" +
      event_columns +
      "VALUES (2, 1000, 0, 'client_to_upstream', 'plain', 'command', 'NOOP', 4, 0);"
      "UPDATE events SET at = 0 WHERE session_id = 2;";
  char* message = nullptr;
  ASSERT_EQ(sqlite3_exec(raw, damage.c_str(), nullptr, nullptr, &message), SQLITE_OK)
      << (message != nullptr ? message : "");
  sqlite3_free(message);
  sqlite3_close(raw);

  PruneCriteria c;
  c.before = test_support::kT0 + 1h;
  PruneResult pruned;
  std::string error;
  ASSERT_TRUE(prune_sessions(path, c, pruned, error)) << error;
  std::vector<std::int64_t> removed;
  for (const auto& p : pruned.sessions) removed.push_back(p.id);
  EXPECT_EQ(removed, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(pruned.unreadable_kept, (std::vector<std::int64_t>{2}));
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE id = 2"), 1);
}

// recreader 13: a session without an end that started before --before but recorded something
// within the last week (still recorded, or cut too recently to tell) was kept without a word;
// it is named, with the time of its last record, beside the one silent for longer, deleted.
TEST(StoragePruner, AnOpenSessionKeptForItsRecentRecordsIsNamed) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    std::vector<std::vector<Record>> sessions;
    for (int i = 0; i < 3; ++i) {
      const SessionKey k = rec->new_session_key();
      sessions.push_back({test_support::session_opened(k, test_support::kT0),
                          test_support::session_closed(k, test_support::kT0 + 1s)});
    }
    test_support::record_batches(*rec, sessions);
  }
  const auto recent = Clock::now() - 1h;
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  // Sessions 1 and 2 have no end: 1 silent since kT0 (its proxy long dead), 2 recorded an hour
  // ago. Session 3 ended.
  const std::string sql =
      "UPDATE sessions SET ended_at = NULL, outcome = NULL WHERE id IN (1, 2);"
      "INSERT INTO events (session_id, seq, at, direction, phase, kind, bytes, wire_size, "
      "redacted) VALUES (2, 1000, '" +
      format_timestamp(recent) + "', 'client_to_upstream', 'plain', 'command', 'NOOP', 4, 0);";
  char* message = nullptr;
  ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK)
      << (message != nullptr ? message : "");
  sqlite3_free(message);
  sqlite3_close(raw);

  PruneCriteria c;
  c.before = Clock::now() - 1min;
  c.dry_run = true;
  PruneResult pruned;
  std::string error;
  ASSERT_TRUE(prune_sessions(path, c, pruned, error)) << error;
  std::vector<std::int64_t> removed;
  for (const auto& p : pruned.sessions) removed.push_back(p.id);
  EXPECT_EQ(removed, (std::vector<std::int64_t>{1, 3}));
  ASSERT_EQ(pruned.unended_kept.size(), 1u);
  EXPECT_EQ(pruned.unended_kept[0].id, 2);
  ASSERT_TRUE(pruned.unended_kept[0].last_record);
  EXPECT_EQ(format_timestamp(*pruned.unended_kept[0].last_record), format_timestamp(recent));
  // --keep alone never deletes a session without an end, and has no time to judge it by.
  PruneCriteria keep;
  keep.keep = 0;
  keep.dry_run = true;
  ASSERT_TRUE(prune_sessions(path, keep, pruned = {}, error)) << error;
  EXPECT_TRUE(pruned.unended_kept.empty());
}

}  // namespace
}  // namespace mailtap::storage
