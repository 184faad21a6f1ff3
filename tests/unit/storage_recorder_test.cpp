// The storage thread: batching, backpressure, durability, failure handling.
#include <gtest/gtest.h>

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tests/unit/permission_checks_for_tests.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tests/unit/threads_for_tests.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "storage/database.hpp"
#include "storage/pruner.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "storage/schema.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test_support::TempDir;

using test_support::count;

// Holds the database's write lock from another connection, like a second writer would.
class WriteLockHolder {
 public:
  explicit WriteLockHolder(const std::string& path) {
    sqlite3_open(path.c_str(), &db_);
    sqlite3_busy_timeout(db_, 5000);
    locked_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~WriteLockHolder() {
    release();
    sqlite3_close_v2(db_);
  }
  bool locked() const { return locked_; }
  void release() {
    if (locked_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    locked_ = false;
  }

 private:
  sqlite3* db_ = nullptr;
  bool locked_ = false;
};

SessionOpened opened(SessionKey key) {
  return test_support::session_opened(key);
}

SessionEvent event(SessionKey key, std::uint64_t seq) {
  SessionEvent r{key, seq, test_support::recorded()};
  test_support::edit(r.event).direction = smtp::Direction::client_to_upstream;
  test_support::edit(r.event).kind = smtp::EventKind::command;
  test_support::edit(r.event).verb = "NOOP";
  test_support::edit(r.event).bytes = "NOOP\r\n";
  test_support::edit(r.event).wire_size = 6;
  test_support::edit(r.event).time = Clock::now();
  return r;
}

SessionTls tls(SessionKey key) {
  SessionTls r;
  r.key = key;
  r.resolved_address = "192.0.2.1:587";
  r.tls_version = "TLSv1.3";
  r.cipher = "TLS_AES_128_GCM_SHA256";
  r.sni = "mx.example.net";
  r.verified_name = "mx.example.net";
  r.verify_status = VerifyStatus::ok;
  for (int i = 0; i < 2; ++i) {
    Certificate c;
    c.der = std::string("\x30\x82\x00\x00", 4) + std::to_string(i);
    c.subject = "CN=cert" + std::to_string(i);
    c.issuer = "CN=issuer";
    c.not_before = "2026-01-01T00:00:00Z";
    c.not_after = "2027-01-01T00:00:00Z";
    r.chain.push_back(c);
  }
  return r;
}

SessionMessage message(SessionKey key, std::uint64_t seq) {
  SessionMessage r;
  r.key = key;
  r.seq = seq;
  r.message.mail_from = "MAIL FROM:<a@example.org>";
  r.message.recipients = {{"RCPT TO:<b@example.net>", 250, "250 2.1.5 Ok"},
                          {"RCPT TO:<c@example.net>", 550, "550 5.1.1 No such user", 1}};
  r.message.body = "Subject: hi\r\n\r\nhello\r\n";
  r.message.size = r.message.body.size();
  r.message.sha256_hex = std::string(64, 'a');
  r.message.final_code = 250;
  r.message.final_reply = "250 2.0.0 Ok: queued";
  r.message.started = r.message.finished = Clock::now();
  return r;
}

SessionClosed closed(SessionKey key, Outcome outcome = Outcome::quit) {
  return test_support::session_closed(key, Clock::now(), outcome);
}

using test_support::batch;

// A whole session (opened, one command, closed) on a new key; returns once it has been taken.
void record_one_session(Recorder& rec) {
  const SessionKey k = rec.new_session_key();
  test_support::record_batches(rec, {batch(opened(k), event(k, 1), closed(k))});
}

RecorderOptions at(const std::string& path) {
  RecorderOptions o;
  o.path = path;
  return o;
}

void run_threads(asio::io_context& io, int threads) {
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  for (auto& t : pool) t.join();
}

TEST(StorageRecorder, OpenFailsWithAClearError) {
  TempDir dir;
  std::ofstream(dir.file("plain")) << "x";
  std::string error;
  EXPECT_EQ(Recorder::open(at(dir.file("plain/m.db")), error), nullptr);
  EXPECT_NE(error.find("not a directory"), std::string::npos) << error;

  EXPECT_EQ(Recorder::open(at(""), error), nullptr);
  EXPECT_FALSE(error.empty());

  const std::string path = dir.file("m.db");
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
  }
  {
    sqlite3* raw = nullptr;
    sqlite3_open(path.c_str(), &raw);
    sqlite3_exec(raw, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
    sqlite3_close(raw);
  }
  EXPECT_EQ(Recorder::open(at(path), error), nullptr);
  EXPECT_NE(error.find("newer than this mailtap"), std::string::npos) << error;
}

TEST(StorageRecorder, CreatesThePrivateFileAndExposesTheKey) {
  TempDir dir;
  std::string error;
  const std::string path = dir.file("sub/m.db");
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(rec->path(), path);
  const auto key = rec->fingerprint_key();
  EXPECT_NE(key, (std::array<std::uint8_t, 32>{}));
  rec.reset();
  auto again = Recorder::open(at(path), error);
  ASSERT_NE(again, nullptr) << error;
  EXPECT_EQ(again->fingerprint_key(), key);
}

// Named for `top -H` and perf; one thread per recorder, gone when it stops.
TEST(StorageRecorder, TheStorageThreadIsNamedAndEndsWithTheRecorder) {
  TempDir dir;
  std::string error;
  const auto before = test_support::threads_named("mailtap-record");
  auto rec = Recorder::open(at(dir.file("m.db")), error);
  ASSERT_NE(rec, nullptr) << error;
  EXPECT_EQ(test_support::threads_named_since("mailtap-record", before).size(), 1u);
  rec.reset();
  EXPECT_EQ(test_support::threads_named("mailtap-record").size(), before.size());
}

TEST(StorageRecorder, SessionKeysAreUniqueAcrossThreads) {
  TempDir dir;
  std::string error;
  auto rec = Recorder::open(at(dir.file("m.db")), error);
  ASSERT_NE(rec, nullptr) << error;
  std::mutex m;
  std::set<SessionKey> keys;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<SessionKey> mine;
      for (int i = 0; i < 1000; ++i) mine.push_back(rec->new_session_key());
      std::lock_guard lk(m);
      keys.insert(mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(keys.size(), 4000u);
  EXPECT_EQ(keys.count(0), 0u);
}

TEST(StorageRecorder, WritesCompleteSessionsInGroupedTransactions) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;

  asio::io_context io;
  constexpr int kSessions = 20;
  for (int i = 0; i < kSessions; ++i) {
    asio::co_spawn(
        io,
        [&rec]() -> asio::awaitable<void> {
          const SessionKey k = rec->new_session_key();
          {
            auto records = batch(opened(k), tls(k), event(k, 1), event(k, 2), event(k, 3));
            co_await rec->submit(std::move(records));
          }
          {
            auto records = batch(event(k, 4), message(k, 1), event(k, 5));
            co_await rec->submit(std::move(records));
          }
          {
            auto records = batch(closed(k));
            co_await rec->submit(std::move(records));
          }
        },
        asio::detached);
  }
  io.run();

  // Every submit of a SessionClosed has returned, so all of it is committed and visible.
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), kSessions);
  EXPECT_EQ(count(path, "SELECT count(*) FROM events"), kSessions * 5);
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificates"), kSessions * 2);
  EXPECT_EQ(count(path, "SELECT count(*) FROM messages"), kSessions);
  EXPECT_EQ(count(path, "SELECT count(*) FROM recipients"), kSessions * 2);
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificates WHERE length(sha256) = 64"),
            kSessions * 2);  // computed from the DER when the session left it empty
  EXPECT_EQ(count(path,
                  "SELECT count(*) FROM sessions WHERE outcome = 'quit' AND "
                  "tls_version = 'TLSv1.3' AND bytes_upstream_to_client = 200"),
            kSessions);

  rec->stop();
  const RecorderStats s = rec->stats();
  EXPECT_EQ(s.batches, 3u * kSessions);
  EXPECT_EQ(s.records, 9u * kSessions);
  EXPECT_EQ(s.rejected + s.discarded + s.late, 0u);
  EXPECT_GE(s.commits, 1u);
  EXPECT_LT(s.commits, s.batches);  // grouped, not one transaction per batch
  EXPECT_FALSE(rec->failed());
}

// Two recorders on one file (two proxies given the same --db) both number from its highest id.
// A session whose id the other took gets the next free row, is told which, and this recorder's
// next keys start after it so that they match their ids again.
TEST(StorageRecorder, ASessionWhoseIdAnotherWriterTookIsToldItsRow) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto a = Recorder::open(at(path), error);
  ASSERT_NE(a, nullptr) << error;
  auto b = Recorder::open(at(path), error);
  ASSERT_NE(b, nullptr) << error;
  const SessionKey ka = a->new_session_key();
  const SessionKey kb = b->new_session_key();
  ASSERT_EQ(ka, kb);

  SessionOpened ob = opened(kb);
  ob.recorded_id = std::make_shared<std::atomic<std::int64_t>>(0);
  test_support::record_batches(*b, {batch(ob, closed(kb))});
  EXPECT_EQ(ob.recorded_id->load(), static_cast<std::int64_t>(kb));

  SessionOpened oa = opened(ka);
  oa.recorded_id = std::make_shared<std::atomic<std::int64_t>>(0);
  test_support::record_batches(*a, {batch(oa, event(ka, 1), closed(ka))});
  const std::int64_t taken = oa.recorded_id->load();
  EXPECT_EQ(taken, static_cast<std::int64_t>(kb) + 1);
  EXPECT_EQ(a->new_session_key(), static_cast<SessionKey>(taken) + 1);
  // Each session's records went to its own row.
  EXPECT_EQ(count(path, "SELECT count(*) FROM events WHERE session_id = " + std::to_string(taken)),
            1);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 2);
  a->stop();
  b->stop();
  EXPECT_FALSE(a->failed() || b->failed());
}

// AUTH succeeded: the running session shows its user at the next commit, not only once it ends.
TEST(StorageRecorder, AnAuthenticatedSessionShowsItsUserWhileItRuns) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  const SessionKey k = rec->new_session_key();
  SessionAuthenticated auth;
  auth.key = k;
  auth.auth_user = "alice";
  auth.auth_mechanism = "PLAIN";
  test_support::record_batches(*rec, {batch(opened(k), event(k, 1), auth)});
  // Not a batch anyone waits for: committed within the interval.
  std::int64_t shown = 0;
  for (int i = 0; i < 100 && shown == 0; ++i) {
    std::this_thread::sleep_for(10ms);
    shown = count(path,
                  "SELECT count(*) FROM sessions WHERE auth_user = 'alice' AND auth_mechanism = "
                  "'PLAIN' AND auth_by = 'client' AND ended_at IS NULL");
  }
  EXPECT_EQ(shown, 1);
  test_support::record_batches(*rec, {batch(closed(k))});
  rec->stop();
  EXPECT_EQ(rec->stats().rejected, 0u);
}

// What became known after a session's close (its last reply goes only then): a note after its
// events, by the row's id, and a `quit` the client did not take the 221 of made client_closed;
// any other outcome stays.
TEST(StorageRecorder, NotesAfterTheEndFollowTheCloseAndCorrectOnlyAQuit) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  const auto after_end = [](std::int64_t id, std::optional<Outcome> outcome) {
    SessionAfterEnd r{id, 2, test_support::recorded(), outcome, "client closed the connection"};
    test_support::edit(r.note).direction = smtp::Direction::mailtap_note;
    test_support::edit(r.note).kind = smtp::EventKind::note;
    test_support::edit(r.note).note = "not delivered: 221 2.0.0 Bye";
    return r;
  };
  std::vector<std::int64_t> ids;
  for (Outcome outcome : {Outcome::quit, Outcome::timeout}) {
    const SessionKey k = rec->new_session_key();
    SessionOpened o = opened(k);
    o.recorded_id = std::make_shared<std::atomic<std::int64_t>>(0);
    test_support::record_batches(*rec, {batch(o, event(k, 1), closed(k, outcome))});
    ids.push_back(o.recorded_id->load());
    test_support::record_batches(*rec, {batch(after_end(ids.back(), Outcome::client_closed))});
  }
  rec->stop();
  EXPECT_EQ(rec->stats().rejected, 0u);
  for (std::int64_t id : ids)
    EXPECT_EQ(count(path,
                    "SELECT count(*) FROM events WHERE seq = 2 AND note = 'not delivered: "
                    "221 2.0.0 Bye' AND session_id = " +
                        std::to_string(id)),
              1);
  EXPECT_EQ(count(path,
                  "SELECT count(*) FROM sessions WHERE outcome = 'client_closed' AND "
                  "outcome_reason = 'client closed the connection' AND id = " +
                      std::to_string(ids[0])),
            1);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE outcome = 'timeout' AND id = " +
                            std::to_string(ids[1])),
            1);
}

// The recorder's connection runs without triggers (they cost an event row a third of its time
// in SQLite); the vocabulary triggers stay in the schema and still refuse other writers.
TEST(StorageRecorder, VocabularyTriggersStillGuardOtherWritersWhileRecording) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  record_one_session(*rec);
  EXPECT_EQ(count(path, "SELECT count(*) FROM events WHERE kind = 'command'"), 1);

  Database other;
  ASSERT_TRUE(Database::open(path, OpenOptions{}, other).ok());
  const auto insert_event = [&](std::string_view kind) {
    return other
        .exec(
            "INSERT INTO events(session_id, seq, direction, phase, kind, bytes, wire_size, "
            "redacted) SELECT id, 2, 'mailtap_note', 'plain', '" +
            std::string(kind) + "', x'', 0, 0 FROM sessions")
        .ok();
  };
  EXPECT_FALSE(insert_event("gossip"));
  EXPECT_TRUE(insert_event("note"));
  rec->stop();
  EXPECT_EQ(rec->stats().rejected, 0u);
}

// Every session to one server sees the same chain: its DER is stored once, and each session
// still reads its whole chain back; prune drops a copy with the last session that saw it.
TEST(StorageRecorder, ACertificateChainIsStoredOnceHoweverManySessionsSawIt) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    std::string error;
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    for (SessionKey k = 1; k <= 3; ++k)
      test_support::record_batches(*rec, {batch(opened(k), tls(k), closed(k))});
  }
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificates"), 6);
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificate_ders"), 2);
  EXPECT_EQ(count(path, "SELECT coalesce(sum(length(der)), 0) FROM certificates"), 0);
  // A row recorded before schema v7 keeps its DER in place; it is read from there.
  {
    Database db;
    ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
    ASSERT_TRUE(db.exec("UPDATE certificates SET der = x'3082' WHERE session_id = 3 AND "
                        "position = 1")
                    .ok());
  }

  const SessionTls sent = tls(1);
  std::string error;
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  for (std::int64_t id = 1; id <= 3; ++id) {
    std::optional<SessionDetail> d;
    ASSERT_TRUE(reader->load_session(id, d, error)) << error;
    ASSERT_EQ(d->certificates.size(), 2u) << id;
    EXPECT_EQ(d->certificates[0].certificate.der, sent.chain[0].der) << id;
    EXPECT_EQ(d->certificates[1].certificate.der, id == 3 ? "\x30\x82" : sent.chain[1].der) << id;
  }
  reader.reset();

  PruneCriteria keep_one;
  keep_one.keep = 1;
  PruneResult pruned;
  ASSERT_TRUE(prune_sessions(path, keep_one, pruned, error)) << error;
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificate_ders"), 2);
  PruneCriteria all;
  all.before = Clock::now() + std::chrono::hours(1);
  ASSERT_TRUE(prune_sessions(path, all, pruned, error)) << error;
  EXPECT_EQ(count(path, "SELECT count(*) FROM certificate_ders"), 0);
}

// A slow disk holds at most queue_bytes of relayed bytes in memory, however large the
// messages: producers wait for room (one batch past the budget is admitted when the queue is
// empty), and nothing is dropped.
// Prune's WAL checkpoint waits for a reader holding an older snapshot in short turns with
// pauses between them: neither a pause nor a turn's own wait may carry it past its time.
// Schema v9: a version-8 file migrates (its rows name no client certificate), and a session
// recorded since names the one mailtap presented upstream; one that presented none stores NULL.
// A file as yesterday's release (schema 8) left it, holding session 1.
void make_version_eight_file(const std::string& path) {
  std::string error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    test_support::record_batches(*rec, {batch(opened(1), tls(1), closed(1))});
  }
  Database db;
  ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
  ASSERT_TRUE(db.exec("ALTER TABLE sessions DROP COLUMN duration_us; "
                      "ALTER TABLE messages DROP COLUMN recipients_left_out; "
                      "ALTER TABLE messages DROP COLUMN accepted_recipients_left_out; "
                      "ALTER TABLE sessions DROP COLUMN client_cert_sha256; "
                      "ALTER TABLE sessions DROP COLUMN client_cert_subject; "
                      "PRAGMA user_version = 8;")
                  .ok());
}

TEST(StorageRecorder, AVersionEightFileMigratesAndSessionsNameTheClientCertificatePresented) {
  TempDir dir;
  const std::string path = dir.file("v8.db");
  std::string error;
  ASSERT_NO_FATAL_FAILURE(make_version_eight_file(path));
  EXPECT_EQ(Reader::open(path, error), nullptr) << "the tools wait for the proxy to migrate";
  EXPECT_NE(error.find("has schema version 8"), std::string::npos) << error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    SessionTls presented = tls(2);
    presented.client_cert_sha256 = std::string(64, 'c');
    presented.client_cert_subject = "CN=relay client,O=Example";
    test_support::record_batches(*rec, {batch(opened(2), std::move(presented), closed(2)),
                                        batch(opened(3), tls(3), closed(3))});
  }
  EXPECT_EQ(count(path, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count(path,
                  "SELECT count(*) FROM sessions WHERE client_cert_sha256 IS NULL AND "
                  "client_cert_subject IS NULL"),
            2);
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  for (const std::int64_t id : {1, 2, 3}) {
    std::optional<SessionDetail> d;
    ASSERT_TRUE(reader->load_session(id, d, error)) << error;
    ASSERT_TRUE(d);
    EXPECT_EQ(d->session.client_cert_sha256, id == 2 ? std::string(64, 'c') : "") << id;
    EXPECT_EQ(d->session.client_cert_subject, id == 2 ? "CN=relay client,O=Example" : "") << id;
  }
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 3u);
  for (const SessionRow& r : rows)
    EXPECT_EQ(r.client_cert_subject, r.id == 2 ? "CN=relay client,O=Example" : "") << r.id;
}

// The tools' advice for an older file is a command to paste: it must run as printed.
TEST(StorageRecorder, TheAdviceForAnOlderFileQuotesItsPathForTheShell) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("o'brien"));
  const std::string path = dir.file("o'brien/mailtap.db");
  ASSERT_NO_FATAL_FAILURE(make_version_eight_file(path));
  std::string error;
  EXPECT_EQ(Reader::open(path, error), nullptr);
  EXPECT_NE(error.find("`mailtap proxy --db '" + dir.file("o'\\''brien/mailtap.db") + "'`"),
            std::string::npos)
      << error;
}

TEST(StorageRecorder, PrunesCheckpointWaitsForAReaderNoLongerThanItsTime) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    std::string error;
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    for (SessionKey k = 1; k <= 3; ++k)
      test_support::record_batches(*rec, {batch(opened(k), event(k, 1), closed(k))});
  }
  sqlite3* reading = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &reading, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(reading, "BEGIN; SELECT count(*) FROM sessions;", nullptr, nullptr, nullptr),
      SQLITE_OK);  // its snapshot is held until the end

  PruneCriteria all;
  all.before = Clock::now() + std::chrono::hours(1);
  all.vacuum = false;
  // Just past a turn's 100 ms: the 250 ms pause after it used to come whole, and a turn after
  // that (some 450 ms in all).
  all.reader_wait = 120ms;
  PruneResult pruned;
  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(prune_sessions(path, all, pruned, error)) << error;
  const auto took = std::chrono::steady_clock::now() - t0;
  sqlite3_close_v2(reading);
  EXPECT_EQ(pruned.sessions.size(), 3u);
  EXPECT_NE(pruned.vacuum_warning.find("holds a read on the database"), std::string::npos)
      << pruned.vacuum_warning;
  EXPECT_GE(took, all.reader_wait);
  EXPECT_LT(took, all.reader_wait + 250ms) << "the checkpoint overran its time";
}

TEST(StorageRecorder, QueuedOctetsAreBoundedWhateverTheBatchCount) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.queue_bytes = std::size_t{64} << 10;
  o.commit_records = 1;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  auto holder = std::make_unique<WriteLockHolder>(path);
  ASSERT_TRUE(holder->locked());
  std::thread releaser([&] {
    std::this_thread::sleep_for(200ms);
    holder->release();
  });

  constexpr int kProducers = 4;
  constexpr int kEvents = 40;
  constexpr std::size_t kEventBytes = std::size_t{16} << 10;
  asio::io_context io;
  for (int p = 0; p < kProducers; ++p) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const SessionKey k = rec->new_session_key();
          {
            auto records = batch(opened(k));
            co_await rec->submit(std::move(records));
          }
          for (int i = 1; i <= kEvents; ++i) {
            SessionEvent e = event(k, static_cast<std::uint64_t>(i));
            test_support::edit(e.event).bytes.assign(kEventBytes, 'x');
            test_support::edit(e.event).wire_size = kEventBytes;
            auto records = batch(std::move(e));
            co_await rec->submit(std::move(records));
          }
          {
            auto records = batch(closed(k));
            co_await rec->submit(std::move(records));
          }
        },
        asio::detached);
  }
  run_threads(io, 2);
  releaser.join();
  rec->stop();

  const RecorderStats s = rec->stats();
  EXPECT_LE(s.peak_queued_bytes, o.queue_bytes + kEventBytes + 1024);
  EXPECT_GE(s.peak_queued_bytes, o.queue_bytes / 2) << "the budget was never reached";
  EXPECT_EQ(count(path, "SELECT count(*) FROM events"), kProducers * kEvents);
  EXPECT_EQ(s.rejected + s.discarded + s.late, 0u);
}

TEST(StorageRecorder, BackpressureSuspendsProducersAndDropsNothing) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.queue_capacity = 1;
  o.commit_records = 1;  // a commit per batch: a slow writer
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;

  // Stall the writer behind another connection's lock for a while.
  auto holder = std::make_unique<WriteLockHolder>(path);
  ASSERT_TRUE(holder->locked());
  std::thread releaser([&] {
    std::this_thread::sleep_for(300ms);
    holder->release();
  });

  constexpr int kProducers = 32;
  constexpr int kEvents = 25;
  std::atomic<std::int64_t> longest_wait_ms{0};
  asio::io_context io;
  for (int p = 0; p < kProducers; ++p) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const SessionKey k = rec->new_session_key();
          {
            auto records = batch(opened(k));
            co_await rec->submit(std::move(records));
          }
          for (int i = 1; i <= kEvents; ++i) {
            const auto t0 = std::chrono::steady_clock::now();
            {
              auto records = batch(event(k, static_cast<std::uint64_t>(i)));
              co_await rec->submit(std::move(records));
            }
            const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - t0)
                                    .count();
            std::int64_t prev = longest_wait_ms.load();
            while (waited > prev && !longest_wait_ms.compare_exchange_weak(prev, waited)) {
            }
          }
          {
            auto records = batch(closed(k));
            co_await rec->submit(std::move(records));
          }
        },
        asio::detached);
  }
  run_threads(io, 4);
  releaser.join();
  rec->stop();

  EXPECT_GE(longest_wait_ms.load(), 100) << "producers were never held back";
  EXPECT_EQ(count(path, "SELECT count(*) FROM events"), kProducers * kEvents);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), kProducers);
  // Per-session order survived the contention.
  EXPECT_EQ(count(path,
                  "SELECT count(*) FROM (SELECT session_id FROM events GROUP BY session_id "
                  "HAVING min(seq) = 1 AND max(seq) = 25 AND count(*) = 25)"),
            kProducers);
  const RecorderStats s = rec->stats();
  EXPECT_EQ(s.rejected + s.discarded + s.late, 0u);
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
}

// Another process holding the write lock for longer than a busy timeout (prune's VACUUM, a
// transaction left open in sqlite3) is waited for: the message's acknowledgement comes only
// once the lock is released and the message committed, and recording goes on. One busy
// timeout used to end recording for the run.
TEST(StorageRecorder, ALockHeldPastTheBusyTimeoutDelaysTheAcknowledgementNotTheRecord) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.busy_timeout = 100ms;  // one try; the lock below outlasts ten of them
  o.lock_wait = 60s;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  auto holder = std::make_unique<WriteLockHolder>(path);
  ASSERT_TRUE(holder->locked());
  // Set before the release: an acknowledgement that sees it false came before the commit.
  std::atomic<bool> releasing{false};
  std::thread releaser([&] {
    std::this_thread::sleep_for(1s);
    releasing = true;
    holder->release();
  });

  bool acknowledged_after_release = false;
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const SessionKey k = rec->new_session_key();
        {
          auto records = batch(opened(k), event(k, 1), message(k, 1));
          co_await rec->submit(std::move(records));
        }
        acknowledged_after_release = releasing.load();
        {
          auto records = batch(event(k, 2), closed(k));
          co_await rec->submit(std::move(records));
        }
      },
      asio::detached);
  io.run();
  releaser.join();

  EXPECT_TRUE(acknowledged_after_release);
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  EXPECT_EQ(count(path, "SELECT count(*) FROM messages"), 1);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 1);
  // And the next session is recorded as usual.
  const SessionKey next = rec->new_session_key();
  test_support::record_batches(*rec, {batch(opened(next), event(next, 1), closed(next))});
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 2);
  rec->stop();
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  EXPECT_EQ(rec->stats().discarded, 0u);
}

// A stop while another process holds the write lock waits for it: the records accepted before
// the stop are still to be written, and only the lock lets them be. The log says that the stop
// waits, and why, rather than leave a shutdown hanging without a word.
TEST(StorageRecorder, AStopDuringALockWaitSaysItWaitsAndStillWritesWhatWasAccepted) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.busy_timeout = 100ms;
  o.lock_wait = 60s;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  auto holder = std::make_unique<WriteLockHolder>(path);
  ASSERT_TRUE(holder->locked());
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const SessionKey k = rec->new_session_key();
        auto records = batch(opened(k), event(k, 1));  // nobody waits for its commit
        co_await rec->submit(std::move(records));
      },
      asio::detached);
  io.run();
  std::this_thread::sleep_for(300ms);  // the storage thread waits for the lock by now

  testing::internal::CaptureStderr();
  std::thread releaser([&] {
    std::this_thread::sleep_for(500ms);
    holder->release();
  });
  rec->stop();
  releaser.join();
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("stopping waits: another process holds the write lock on '" + path + "'"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("records accepted before the stop are still to be committed"),
            std::string::npos)
      << said;
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 1);
  EXPECT_EQ(rec->stats().discarded, 0u);
}

TEST(StorageRecorder, ReadersSeeOnlyCommittedDataAndClosedMeansComplete) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.commit_interval = 1500ms;  // far longer than the checks below take
  o.commit_records = 1'000'000;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  const SessionKey a = rec->new_session_key();
  const SessionKey b = rec->new_session_key();

  std::promise<void> first_done, checked, close_done;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        {
          auto records = batch(opened(a), event(a, 1), event(a, 2));
          co_await rec->submit(std::move(records));
        }
        {
          auto records = batch(opened(b), event(b, 1));
          co_await rec->submit(std::move(records));
        }
        first_done.set_value();
        // A close is committed at once: it would commit the batches above with it.
        checked.get_future().wait();
        {
          auto records = batch(event(a, 3), closed(a));
          co_await rec->submit(std::move(records));
        }
        close_done.set_value();
      },
      asio::detached);

  first_done.get_future().wait();
  // Queued or in the open transaction, but not committed: invisible to readers.
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 0);
  EXPECT_EQ(count(path, "SELECT count(*) FROM events"), 0);
  checked.set_value();

  close_done.get_future().wait();
  // The close has been acknowledged: session a is complete, b is visibly in progress.
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 1);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NULL"), 1);
  EXPECT_EQ(count(path,
                  "SELECT count(*) FROM events e JOIN sessions s ON s.id = e.session_id "
                  "WHERE s.ended_at IS NOT NULL"),
            3);

  guard.reset();
  runner.join();
  rec->stop();
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NULL"), 1);
}

TEST(StorageRecorder, AFinishedMessageIsCommittedAtOnceNotAtTheInterval) {
  // The relay holds the reply to an end of data until its message is committed: that commit
  // must not wait for commit_interval.
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.commit_interval = 60s;
  o.commit_records = 1'000'000;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  asio::io_context io;
  const SessionKey k = rec->new_session_key();
  std::promise<void> done;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto records = batch(opened(k), event(k, 1), message(k, 1));
        co_await rec->submit(std::move(records));
        done.set_value();
      },
      asio::detached);
  std::thread runner([&] { io.run(); });
  ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(count(path, "SELECT count(*) FROM messages"), 1);
  runner.join();
  rec->stop();
}

TEST(StorageRecorder, StopDrainsSuspendedProducersAndRefusesLateOnes) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.queue_capacity = 2;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;

  auto holder = std::make_unique<WriteLockHolder>(path);
  ASSERT_TRUE(holder->locked());

  constexpr int kProducers = 16;
  std::atomic<int> submitted{0};
  asio::io_context io;
  for (int p = 0; p < kProducers; ++p) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const SessionKey k = rec->new_session_key();
          {
            auto records = batch(opened(k), event(k, 1));
            co_await rec->submit(std::move(records));
          }
          ++submitted;
        },
        asio::detached);
  }
  std::thread producers([&] { io.run(); });
  std::this_thread::sleep_for(100ms);
  EXPECT_LT(submitted.load(), kProducers);  // the queue is full: most are suspended

  std::thread stopper([&] { rec->stop(); });
  std::this_thread::sleep_for(100ms);
  holder->release();
  stopper.join();
  producers.join();
  EXPECT_EQ(submitted.load(), kProducers);
  EXPECT_EQ(count(path, "SELECT count(*) FROM events"), kProducers);

  // After stop: dropped and counted, never blocking.
  asio::io_context late;
  asio::co_spawn(
      late,
      [&]() -> asio::awaitable<void> {
        auto records = batch(event(99, 1));
        co_await rec->submit(std::move(records));
      },
      asio::detached);
  late.run();
  EXPECT_EQ(rec->stats().late, 1u);
  rec->stop();  // idempotent
}

TEST(StorageRecorder, CancellingTheProducerDoesNotLoseItsBatch) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  o.queue_capacity = 1;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  auto holder = std::make_unique<WriteLockHolder>(path);

  asio::io_context io;
  asio::cancellation_signal signals[4];
  std::atomic<int> finished{0};
  for (auto& sig : signals) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const SessionKey k = rec->new_session_key();
          {
            auto records = batch(opened(k), event(k, 1), closed(k));
            co_await rec->submit(std::move(records));
          }
          ++finished;
        },
        asio::bind_cancellation_slot(sig.slot(), asio::detached));
  }
  asio::steady_timer t(io, 50ms);
  t.async_wait([&](asio::error_code) {
    for (auto& sig : signals) sig.emit(asio::cancellation_type::terminal);
    holder->release();
  });
  io.run();
  EXPECT_EQ(finished.load(), 4);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 4);
}

// queue() is submit()'s first half: a session's upstream reader reads on while the commit that
// the reply it read waits for is pending (another process holding the write lock).
TEST(StorageRecorder, QueueReturnsOnceQueuedAndCommittedOnceOnDisk) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  auto holder = std::make_unique<WriteLockHolder>(path);

  asio::io_context io;
  bool queued = false;
  bool committed = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const SessionKey k = rec->new_session_key();
        Recorder::Queued q = co_await rec->queue(batch(opened(k), event(k, 1), closed(k)));
        queued = true;
        co_await q.committed();
        committed = true;
      },
      asio::detached);
  bool looked = false;
  asio::steady_timer t(io, 100ms);
  t.async_wait([&](asio::error_code) {
    looked = true;
    EXPECT_TRUE(queued);
    EXPECT_FALSE(committed) << "committed while another process held the write lock";
    holder->release();
  });
  io.run();
  EXPECT_TRUE(looked);
  EXPECT_TRUE(committed);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 1);
}

TEST(StorageRecorder, UnknownSessionKeysAreRejectedNotFatal) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const SessionKey k = rec->new_session_key();
        {
          auto records = batch(event(12345, 1), opened(k), event(k, 1), event(k, 1));
          co_await rec->submit(std::move(records));
        }
        {
          auto records = batch(closed(k), event(k, 2));
          co_await rec->submit(std::move(records));  // after close: unknown key
        }
      },
      asio::detached);
  io.run();
  rec->stop();
  const RecorderStats s = rec->stats();
  EXPECT_EQ(s.rejected, 3u);  // unknown key, duplicate seq, event after close
  EXPECT_EQ(s.records, 3u);
  EXPECT_FALSE(rec->failed());
  EXPECT_EQ(count(path, "SELECT count(*) FROM events"), 1);
}

TEST(StorageRecorder, WriteFailureIsStickyAndNeverBlocksProducers) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  std::atomic<int> callbacks{0};
  std::string reason_seen;
  RecorderOptions o;
  o.path = path;
  o.queue_capacity = 2;
  o.busy_timeout = 50ms;
  o.lock_wait = 300ms;  // a lock held past it is a failure after all
  o.on_failure = [&](const std::string& reason) {
    reason_seen = reason;
    ++callbacks;
  };
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  WriteLockHolder holder(path);  // held for the whole test: every write times out
  ASSERT_TRUE(holder.locked());

  asio::io_context io;
  constexpr int kBatches = 40;
  for (int i = 0; i < kBatches; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const SessionKey k = rec->new_session_key();
          {
            auto records = batch(opened(k), closed(k));
            co_await rec->submit(std::move(records));
          }
        },
        asio::detached);
  }
  const auto t0 = std::chrono::steady_clock::now();
  io.run();  // returns: no producer is stuck
  EXPECT_GE(std::chrono::steady_clock::now() - t0, o.lock_wait) << "gave up before lock_wait";

  EXPECT_TRUE(rec->failed());
  EXPECT_NE(rec->failure_reason().find("locked"), std::string::npos) << rec->failure_reason();
  EXPECT_NE(rec->failure_reason().find("waited"), std::string::npos) << rec->failure_reason();
  EXPECT_NE(rec->failure_reason().find(path), std::string::npos) << rec->failure_reason();
  rec->stop();
  EXPECT_EQ(callbacks.load(), 1);
  EXPECT_EQ(reason_seen, rec->failure_reason());
  EXPECT_EQ(rec->stats().discarded, 2u * kBatches);
  holder.release();
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 0);
}

// SQLite goes on committing into a database file deleted or renamed under it, without an error:
// into an inode that goes with the process, or under a name nobody reads. The recorder looks at
// each commit and fails, with the reason the proxy prints, rather than record into the void.
TEST(StorageRecorder, ADatabaseFileDeletedOrRenamedWhileRecordingIsAFailure) {
  for (const bool renamed : {false, true}) {
    SCOPED_TRACE(renamed ? "renamed" : "deleted");
    TempDir dir;
    const std::string path = dir.file("m.db");
    std::string error;
    std::string reason_seen;
    RecorderOptions o = at(path);
    o.on_failure = [&](const std::string& reason) { reason_seen = reason; };
    auto rec = Recorder::open(o, error);
    ASSERT_NE(rec, nullptr) << error;
    record_one_session(*rec);
    ASSERT_FALSE(rec->failed()) << rec->failure_reason();

    if (renamed)
      fs::rename(path, path + ".moved");
    else
      fs::remove(path);
    record_one_session(*rec);
    EXPECT_TRUE(rec->failed());
    EXPECT_NE(rec->failure_reason().find("'" + path + "' was deleted or renamed while recording"),
              std::string::npos)
        << rec->failure_reason();
    EXPECT_NE(rec->failure_reason().find("restart mailtap"), std::string::npos);
    rec->stop();
    EXPECT_EQ(reason_seen, rec->failure_reason());
    EXPECT_FALSE(fs::exists(path));
    // Nothing is left for a new database at that path to take for its own WAL,
    EXPECT_TRUE(!fs::exists(path + "-wal") || fs::file_size(path + "-wal") == 0);
    // and what was committed before went with the file.
    if (renamed) {
      EXPECT_EQ(count(path + ".moved", "SELECT count(*) FROM sessions"), 1);
    }
  }
}

// The path can stop leading to the file without a deleted or renamed file: a directory on it
// replaced by a file (ENOTDIR), by a symlink to itself (ELOOP) or to a name no file system takes
// (ENAMETOOLONG). Nobody finds the file by that path any more, whoever asks: a failure, as ENOENT.
TEST(StorageRecorder, ADatabasePathThatLeadsNowhereIsAFailure) {
  const std::vector<std::pair<const char*, std::function<void(const fs::path&)>>> ways = {
      {"a file in place of the directory (ENOTDIR)",
       [](const fs::path& sub) { std::ofstream(sub) << "a file"; }},
      {"a symlink loop in place of the directory (ELOOP)",
       [](const fs::path& sub) { fs::create_directory_symlink(sub, sub); }},
      {"a symlink to a name too long (ENAMETOOLONG)",
       [](const fs::path& sub) { fs::create_directory_symlink(std::string(300, 'x'), sub); }},
  };
  for (const auto& [what, replace_directory] : ways) {
    SCOPED_TRACE(what);
    TempDir dir;
    const fs::path sub = fs::path(dir.file("sub"));
    fs::create_directory(sub);
    const std::string path = (sub / "m.db").string();
    std::string error;
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    record_one_session(*rec);
    ASSERT_FALSE(rec->failed()) << rec->failure_reason();

    const fs::path aside = fs::path(dir.file("aside"));
    fs::rename(sub, aside);
    replace_directory(sub);
    record_one_session(*rec);
    EXPECT_TRUE(rec->failed());
    EXPECT_NE(rec->failure_reason().find("'" + path + "' was deleted or renamed while recording"),
              std::string::npos)
        << rec->failure_reason();
    rec->stop();
    // What was committed before is in the file, wherever it went.
    EXPECT_EQ(count((aside / "m.db").string(), "SELECT count(*) FROM sessions"), 1);
  }
}

// SQLite says "moved" when its stat of the path fails for any reason; a stat that fails because
// this user may not look (EACCES: a directory on the path made unsearchable) cannot tell, as a
// transient error cannot: the file may well be there for its readers. Recording goes on.
TEST(StorageRecorder, APathThatCannotBeCheckedDoesNotFailRecording) {
  TempDir dir;
  const fs::path sub = fs::path(dir.file("sub"));
  fs::create_directory(sub);
  const std::string path = (sub / "m.db").string();
  std::string error;
  std::unique_ptr<Recorder> rec;
  {
    const test_support::PermissionChecksForRoot as_anyone;  // for the storage thread's life
    if (!as_anyone.active()) GTEST_SKIP() << "cannot set this thread's capabilities";
    rec = Recorder::open(at(path), error);
  }
  ASSERT_NE(rec, nullptr) << error;
  record_one_session(*rec);
  ASSERT_FALSE(rec->failed()) << rec->failure_reason();

  fs::permissions(sub, fs::perms::none);  // stat(path): EACCES
  record_one_session(*rec);
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();

  fs::permissions(sub, fs::perms::owner_all);
  record_one_session(*rec);
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  rec->stop();
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 3);
}

// The path naming another file than the one open (replaced) is a move.
TEST(StorageRecorder, ADatabaseFileReplacedWhileRecordingIsAFailure) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  record_one_session(*rec);
  fs::rename(path, path + ".old");
  std::ofstream(path) << "another file";
  record_one_session(*rec);
  EXPECT_TRUE(rec->failed());
  EXPECT_NE(rec->failure_reason().find("was deleted or renamed"), std::string::npos)
      << rec->failure_reason();
  rec->stop();
}

// Deleted while nothing was being recorded: no commit notices, so stopping does.
TEST(StorageRecorder, ADatabaseFileDeletedWhileIdleFailsTheRunAtStop) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  const SessionKey k = rec->new_session_key();
  test_support::record_batches(*rec, {batch(opened(k), closed(k))});
  fs::remove(path);
  EXPECT_FALSE(rec->failed());
  rec->stop();
  EXPECT_TRUE(rec->failed());
  EXPECT_NE(rec->failure_reason().find("was deleted or renamed"), std::string::npos)
      << rec->failure_reason();
}

// A -wal file deleted under the recorder takes SQLite's later commits into an inode nobody else
// can read, and a kill -9 then lost every session since the last checkpoint, those committed
// before the deletion too. The recorder looks at each commit, as at the database file, copies
// what was committed into the database file and fails; a kill -9 after that loses nothing
// committed before. In a child process, for the kill -9.
TEST(StorageRecorder, AWalFileDeletedWhileRecordingIsAFailureThatKeepsWhatWasCommitted) {
  const std::vector<std::pair<const char*, std::function<void(const std::string&)>>> ways = {
      {"deleted", [](const std::string& wal) { fs::remove(wal); }},
      {"renamed", [](const std::string& wal) { fs::rename(wal, wal + ".old"); }},
      // A reader opening the database since makes a new, empty -wal file at the path.
      {"deleted, then a reader opened the database",
       [](const std::string& wal) {
         fs::remove(wal);
         const std::string db = wal.substr(0, wal.size() - 4);
         sqlite3* reader = nullptr;
         sqlite3_open_v2(db.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr);
         sqlite3_exec(reader, "SELECT count(*) FROM sessions", nullptr, nullptr, nullptr);
         sqlite3_close_v2(reader);
       }},
  };
  for (const auto& [what, take_the_wal_away] : ways) {
    SCOPED_TRACE(what);
    TempDir dir;
    const std::string path = dir.file("m.db");
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::string err;
      auto rec = Recorder::open(at(path), err);
      if (!rec) ::_exit(2);
      for (int i = 0; i < 3; ++i) record_one_session(*rec);
      take_the_wal_away(path + "-wal");
      record_one_session(*rec);
      const std::string reason = rec->failed() ? rec->failure_reason() : "not failed";
      (void)!::write(fds[1], reason.data(), reason.size());
      ::close(fds[1]);
      ::kill(::getpid(), SIGKILL);  // no stop(), no close: a crash
      ::_exit(3);
    }
    ::close(fds[1]);
    std::string reason;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) reason.append(buf, n);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << status;
    EXPECT_NE(reason.find("the WAL file '" + path + "-wal' was deleted or renamed while recording"),
              std::string::npos)
        << reason;
    EXPECT_NE(reason.find("those committed before were copied into '" + path + "'"),
              std::string::npos)
        << reason;
    EXPECT_NE(reason.find("restart mailtap"), std::string::npos) << reason;
    // Everything committed before the deletion survived the kill; the session after it did not.
    EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 3);
    EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 3);
  }
}

// Deleted while nothing was being recorded: stopping notices, copies and fails the run.
TEST(StorageRecorder, AWalFileDeletedWhileIdleFailsTheRunAtStop) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  record_one_session(*rec);
  fs::remove(path + "-wal");
  rec->stop();
  EXPECT_TRUE(rec->failed());
  EXPECT_NE(rec->failure_reason().find("the WAL file '" + path + "-wal' was deleted"),
            std::string::npos)
      << rec->failure_reason();
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 1);
}

// A reader whose transaction stays open (sqlite3 after BEGIN, a notebook) keeps every checkpoint
// from copying what was committed after it began: the WAL grows with every session, without
// bound. Said when what is held back reaches the size from which checkpoints run (4000 pages,
// about 16 MiB), again at each doubling, not at each commit; and once it goes through again.
// The first line is also what a long read that ends by itself (audit's scan) may bring, and
// says so; the doublings warn of the full disk.
TEST(StorageRecorder, AReaderHoldingBackTheCheckpointIsSaidOnceAtEachDoubling) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  auto rec = Recorder::open(at(path), error);
  ASSERT_NE(rec, nullptr) << error;
  // Sessions of 2 MiB in events of 60 KiB: all in the database, none in a body file.
  const auto record_mebibytes = [&](int mebibytes) {
    for (int m = 0; m < mebibytes / 2; ++m) {
      const SessionKey k = rec->new_session_key();
      std::vector<Record> records = batch(opened(k));
      for (std::uint64_t seq = 1; seq <= 35; ++seq) {
        SessionEvent e = event(k, seq);
        test_support::edit(e.event).bytes =
            std::string(60 * 1024, static_cast<char>('a' + seq % 26));
        records.emplace_back(std::move(e));
      }
      records.emplace_back(closed(k));
      test_support::record_batches(*rec, {std::move(records)});
    }
  };
  const auto said = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
      ++n;
    return n;
  };
  const std::string grows =
      "recording's WAL grows while a reader holds its snapshot: another connection holds a read "
      "on the database '" +
      path + "'";
  const std::string still_grows =
      "recording's WAL still grows: another connection holds a read on the database '" + path + "'";

  testing::internal::CaptureStderr();
  record_mebibytes(40);  // no reader: checkpoints go through, nothing to say
  std::string stderr_text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said(stderr_text, "WAL"), 0u) << stderr_text;

  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM events", nullptr, nullptr, nullptr),
            SQLITE_OK);
  testing::internal::CaptureStderr();
  record_mebibytes(12);
  stderr_text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said(stderr_text, "WAL"), 0u) << "under 16 MiB held back: " << stderr_text;

  testing::internal::CaptureStderr();
  record_mebibytes(12);  // past 16 MiB, not yet 32
  stderr_text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said(stderr_text, grows), 1u) << stderr_text;
  EXPECT_NE(stderr_text.find("so the checkpoint cannot copy the last "), std::string::npos);
  EXPECT_NE(stderr_text.find("'" + path + "-wal' ("), std::string::npos) << stderr_text;
  EXPECT_NE(stderr_text.find("grows with every session until that read ends. A long read "
                             "(mailtap audit of a large record, a search in mailtap web) ends "
                             "by itself"),
            std::string::npos)
      << stderr_text;
  EXPECT_NE(stderr_text.find("close the programs reading it (mailtap web, a running export or "
                             "audit, sqlite3 with a transaction open)"),
            std::string::npos)
      << stderr_text;

  testing::internal::CaptureStderr();
  record_mebibytes(10);  // past 32 MiB
  stderr_text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said(stderr_text, grows), 0u) << stderr_text;
  EXPECT_EQ(said(stderr_text, still_grows), 1u) << stderr_text;
  EXPECT_NE(stderr_text.find("a read that never ends grows it until the disk is full: close the "
                             "programs reading it ("),
            std::string::npos)
      << stderr_text;

  sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close_v2(reader);
  testing::internal::CaptureStderr();
  record_mebibytes(4);
  stderr_text = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said(stderr_text, grows) + said(stderr_text, still_grows), 0u) << stderr_text;
  EXPECT_EQ(said(stderr_text, "recording's WAL checkpoint went through again: '" + path +
                                  "-wal' is copied into '" + path + "'"),
            1u)
      << stderr_text;
  rec->stop();
  EXPECT_FALSE(rec->failed()) << rec->failure_reason();
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions"), 39);
}

TEST(StorageRecorder, KillNineLeavesEveryEndedSessionComplete) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  constexpr int kEnded = 20;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string err;
    auto rec = Recorder::open(at(path), err);
    if (!rec) ::_exit(2);
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < kEnded; ++i) {
            const SessionKey k = rec->new_session_key();
            {
              auto records = batch(opened(k), event(k, 1), event(k, 2));
              co_await rec->submit(std::move(records));
            }
            {
              auto records = batch(message(k, 1), event(k, 3));
              co_await rec->submit(std::move(records));
            }
            {
              auto records = batch(closed(k));
              co_await rec->submit(std::move(records));
            }
          }
          (void)!::write(fds[1], "k", 1);
          // A session still running when the process dies.
          const SessionKey k = rec->new_session_key();
          {
            auto records = batch(opened(k));
            co_await rec->submit(std::move(records));
          }
          for (std::uint64_t seq = 1;; ++seq) {
            auto records = batch(event(k, seq));
            co_await rec->submit(std::move(records));
          }
        },
        asio::detached);
    io.run();
    ::_exit(3);
  }
  ::close(fds[1]);
  char c = 0;
  ASSERT_EQ(::read(fds[0], &c, 1), 1);
  ::close(fds[0]);
  std::this_thread::sleep_for(30ms);  // let the unfinished session write a few transactions
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  Database db;
  FingerprintKey key{};
  ASSERT_TRUE(Database::open(path, OpenOptions{}, db).ok());
  ASSERT_TRUE(prepare_for_writing(db, "t", key).ok());
  std::string integrity;
  ASSERT_TRUE(db.query_text("PRAGMA integrity_check", integrity).ok());
  EXPECT_EQ(integrity, "ok");
  std::int64_t n = 0;
  ASSERT_TRUE(db.query_int("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL", n).ok());
  EXPECT_EQ(n, kEnded);
  ASSERT_TRUE(db.query_int("SELECT count(*) FROM sessions s WHERE ended_at IS NOT NULL AND "
                           "(SELECT count(*) FROM events WHERE session_id = s.id) = 3 AND "
                           "(SELECT count(*) FROM messages WHERE session_id = s.id) = 1",
                           n)
                  .ok());
  EXPECT_EQ(n, kEnded);
  ASSERT_TRUE(db.query_int("SELECT count(*) FROM sessions WHERE ended_at IS NULL", n).ok());
  EXPECT_LE(n, 1);
  ASSERT_TRUE(db.query_int("PRAGMA foreign_key_check", n).ok() || true);
}

}  // namespace
}  // namespace mailtap::storage
