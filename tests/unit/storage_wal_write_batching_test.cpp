// The recorder's connection writes each commit's WAL frames in one write. What a commit makes
// durable must be in the WAL file when COMMIT returns, whatever the transaction did: another
// connection sees it at once, and a copy of the files taken right then (what kill -9 leaves
// behind) recovers it, also after SQLite spilled pages mid-transaction, overwrote them in
// place and rewrote the frames' checksums.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "storage/database.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;
using test_support::TempDir;

Database open_batched(const std::string& path) {
  Database db;
  OpenOptions options;
  options.batch_wal_writes = true;
  const Status st = Database::open(path, options, db);
  EXPECT_TRUE(st.ok()) << st.message;
  EXPECT_TRUE(db.enable_wal().ok());
  return db;
}

std::int64_t query(Database& db, const std::string& sql) {
  std::int64_t n = -1;
  const Status st = db.query_int(sql, n);
  EXPECT_TRUE(st.ok()) << st.message;
  return n;
}

// The database and its WAL as they are on disk now, copied beside them: what a process
// killed at this moment leaves. Opening the copy recovers it from the WAL.
std::int64_t query_crash_copy(const TempDir& dir, const std::string& path, const std::string& sql) {
  const std::string copy = dir.file("crashed.db");
  fs::remove(copy);
  fs::remove(copy + "-wal");
  fs::remove(copy + "-shm");
  fs::copy_file(path, copy);
  fs::copy_file(path + "-wal", copy + "-wal");
  Database db;
  const Status st = Database::open(copy, OpenOptions{}, db);
  EXPECT_TRUE(st.ok()) << st.message;
  std::string integrity;
  EXPECT_TRUE(db.query_text("PRAGMA integrity_check", integrity).ok());
  EXPECT_EQ(integrity, "ok");
  return query(db, sql);
}

TEST(StorageWalWriteBatching, EveryCommitIsInTheWalFileWhenCommitReturns) {
  TempDir dir;
  const std::string path = dir.file("batched.db");
  Database writer = open_batched(path);
  ASSERT_TRUE(writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)").ok());
  Database reader;
  OpenOptions read_only;
  read_only.mode = OpenMode::read_only;
  ASSERT_TRUE(Database::open(path, read_only, reader).ok());
  for (int commit = 1; commit <= 40; ++commit) {
    ASSERT_TRUE(writer
                    .exec("BEGIN; INSERT INTO t(body) VALUES (printf('%.*c', 3000, 'x'));"
                          "INSERT INTO t(body) VALUES ('short'); COMMIT;")
                    .ok());
    EXPECT_EQ(query(reader, "SELECT count(*) FROM t"), 2 * commit);
    if (commit % 10 == 0) {
      EXPECT_EQ(query_crash_copy(dir, path, "SELECT count(*) FROM t"), 2 * commit);
    }
  }
}

TEST(StorageWalWriteBatching, ATransactionThatSpillsAndRewritesPagesSurvivesACrashCopy) {
  TempDir dir;
  const std::string path = dir.file("batched.db");
  Database writer = open_batched(path);
  ASSERT_TRUE(writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, pad TEXT)").ok());
  // A page cache of a few pages: the transaction spills frames to the WAL before it commits,
  // then changes those pages again, which SQLite writes over their frames in place and then
  // rewrites the checksums of every frame from there on.
  ASSERT_TRUE(writer.exec("PRAGMA cache_size=4").ok());
  const Status st = writer.exec(
      "BEGIN;"
      "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 400)"
      " INSERT INTO t(n, pad) SELECT i, printf('%.*c', 700, 'p') FROM k;"
      "UPDATE t SET n = n * 2;"
      "COMMIT;");
  ASSERT_TRUE(st.ok()) << st.message;
  // The copy first: reading through the writer's connection would write out anything held.
  EXPECT_EQ(query_crash_copy(dir, path, "SELECT sum(n) FROM t"), 400 * 401);
  EXPECT_EQ(query(writer, "SELECT sum(n) FROM t"), 400 * 401);
  // And the next transaction, appended after the rewritten frames.
  ASSERT_TRUE(writer.exec("UPDATE t SET n = 1 WHERE id = 1").ok());
  EXPECT_EQ(query_crash_copy(dir, path, "SELECT sum(n) FROM t"), 400 * 401 - 1);
}

}  // namespace
}  // namespace mailtap::storage
