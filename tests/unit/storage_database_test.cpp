// Database wrapper, file creation and schema migration.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/unit/temp_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "storage/database.hpp"
#include "storage/records.hpp"
#include "storage/schema.hpp"
#include "storage/timestamp.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;

using test_support::TempDir;

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0xffffffff;
  return st.st_mode & 07777;
}

// Opens and migrates like the recorder does.
Status open_for_writing(const std::string& path, Database& db, FingerprintKey& key) {
  if (Status st = Database::open(path, OpenOptions{}, db); !st.ok()) return st;
  return prepare_for_writing(db, "mailtap test", key);
}

// A plain sqlite3 connection, to set things up behind the wrappers' back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) { sqlite3_open(path.c_str(), &db_); }
  ~RawDb() { sqlite3_close_v2(db_); }
  int exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST(StorageTimestamp, FormatsUtcWithMicroseconds) {
  using namespace std::chrono;
  const Clock::time_point t = Clock::time_point(seconds(1795552867) + microseconds(123456));
  EXPECT_EQ(format_timestamp(t), "2026-11-24T20:41:07.123456Z");
  EXPECT_EQ(format_timestamp(Clock::time_point{}), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp(Clock::time_point(microseconds(-1))), "1969-12-31T23:59:59.999999Z");
}

TEST(StorageTimestamp, RoundTrips) {
  using namespace std::chrono;
  const auto now = time_point_cast<microseconds>(Clock::now());
  auto parsed = parse_timestamp(format_timestamp(now));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, now);
  EXPECT_FALSE(parse_timestamp("2026-11-24 20:41:07"));
  EXPECT_FALSE(parse_timestamp("2026-13-24T20:41:07.123456Z"));
  EXPECT_FALSE(parse_timestamp("2026-11-24T20:41:07.123456+"));
}

// A damaged or hand-edited database's text: a date no calendar has is refused, as format_timestamp
// never writes one, rather than read as another day; a date the clock cannot hold (its
// nanoseconds stop at 1677-09-21 and 2262-04-11) is its first or last instant, not a time
// wrapped round to another century (it was undefined behaviour: a signed overflow).
TEST(StorageTimestamp, ReadsOnlyRealDatesAndClampsThoseBeyondTheClock) {
  for (const char* impossible :
       {"2026-02-30T00:00:00.000000Z", "2023-02-29T00:00:00.000000Z", "2026-04-31T12:00:00.000000Z",
        "2026-11-24T23:59:60.000000Z", "2026-11-00T00:00:00.000000Z"})
    EXPECT_FALSE(parse_timestamp(impossible)) << impossible;
  EXPECT_TRUE(parse_timestamp("2024-02-29T00:00:00.000000Z"));
  for (const char* early : {"0000-01-01T00:00:00.000000Z", "1600-01-01T00:00:00.000000Z",
                            "1677-09-21T00:12:43.145224Z"})
    EXPECT_EQ(parse_timestamp(early), Clock::time_point::min()) << early;
  for (const char* late : {"9999-12-31T23:59:59.999999Z", "2263-01-01T00:00:00.000000Z",
                           "2262-04-11T23:47:16.854776Z"})
    EXPECT_EQ(parse_timestamp(late), Clock::time_point::max()) << late;
  using namespace std::chrono;
  EXPECT_EQ(parse_timestamp("1677-09-21T00:12:43.145225Z"),
            Clock::time_point(Clock::duration(-9'223'372'036'854'775'000)));
  EXPECT_EQ(parse_timestamp("2262-04-11T23:47:16.854775Z"),
            Clock::time_point(Clock::duration(9'223'372'036'854'775'000)));
}

TEST(StorageRecords, EnumTextRoundTrips) {
  Outcome o{};
  ASSERT_TRUE(parse("upstream_closed", o));
  EXPECT_EQ(o, Outcome::upstream_closed);
  EXPECT_FALSE(parse("nope", o));
  smtp::EventKind k{};
  ASSERT_TRUE(parse(smtp::to_string(smtp::EventKind::bdat_chunk), k));
  EXPECT_EQ(k, smtp::EventKind::bdat_chunk);
  smtp::Direction d{};
  ASSERT_TRUE(parse("upstream_to_mailtap", d));
  EXPECT_EQ(d, smtp::Direction::upstream_to_mailtap);
  // Every direction the dialogue writes reads back as itself (a client line mailtap answered
  // once read back as a note, and `show` lost it).
  for (auto each : {smtp::Direction::client_to_upstream, smtp::Direction::upstream_to_client,
                    smtp::Direction::client_to_mailtap, smtp::Direction::mailtap_to_upstream,
                    smtp::Direction::upstream_to_mailtap, smtp::Direction::mailtap_to_client,
                    smtp::Direction::mailtap_note}) {
    ASSERT_TRUE(parse(smtp::to_string(each), d)) << smtp::to_string(each);
    EXPECT_EQ(d, each);
  }
}

// This SQLite (Debian's) is built without lookaside memory, so recording a message allocates
// about 50 times; with memory statistics on, each allocation and free took SQLite's global
// mutex to be counted, about 5 % of the storage thread's instructions per recorded message
// (docs/benchmarks.md). Nothing reads the statistics: the first open turns them off.
TEST(StorageDatabase, SqliteDoesNotCountItsAllocations) {
  // A fresh process, in which SQLite has not been used yet: the setting is taken only then.
  const std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  const std::string path = dir.file("m.db");
  EXPECT_EXIT(
      {
        Database db;
        FingerprintKey key{};
        const bool opened = open_for_writing(path, db, key).ok();
        const bool wrote = opened && db.exec("INSERT INTO meta(key, value) VALUES ('t', 1)").ok();
        std::exit(!wrote ? 2 : sqlite3_memory_used() == 0 ? 0 : 3);
      },
      testing::ExitedWithCode(0), "");
  GTEST_FLAG_SET(death_test_style, style);
}

TEST(StorageDatabase, FreshFileIsMigratedToCurrentSchema) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  Database db;
  FingerprintKey key{};
  ASSERT_TRUE(open_for_writing(path, db, key).ok());

  std::int64_t v = 0;
  ASSERT_TRUE(db.query_int("PRAGMA user_version", v).ok());
  EXPECT_EQ(v, kSchemaVersion);
  ASSERT_TRUE(db.query_int("PRAGMA application_id", v).ok());
  EXPECT_EQ(v, kApplicationId);
  ASSERT_TRUE(db.query_int("PRAGMA page_size", v).ok());
  EXPECT_EQ(v, 4096);
  ASSERT_TRUE(db.query_int("PRAGMA foreign_keys", v).ok());
  EXPECT_EQ(v, 1);
  ASSERT_TRUE(db.query_int("PRAGMA synchronous", v).ok());
  EXPECT_EQ(v, 1);  // NORMAL
  std::string mode;
  ASSERT_TRUE(db.query_text("PRAGMA journal_mode", mode).ok());
  EXPECT_EQ(mode, "wal");
  for (const char* table : {"sessions", "certificates", "certificate_ders", "events", "messages",
                            "recipients", "meta"}) {
    ASSERT_TRUE(db.query_int(std::string("SELECT count(*) FROM sqlite_schema WHERE type='table' "
                                         "AND name='") +
                                 table + "'",
                             v)
                    .ok());
    EXPECT_EQ(v, 1) << table;
  }
  std::string created_by;
  ASSERT_TRUE(db.query_text("SELECT value FROM meta WHERE key='created_by'", created_by).ok());
  EXPECT_EQ(created_by, "mailtap test");
  EXPECT_NE(key, FingerprintKey{});
  std::string integrity;
  ASSERT_TRUE(db.query_text("PRAGMA integrity_check", integrity).ok());
  EXPECT_EQ(integrity, "ok");
}

// Schema v3 turned the free-text verify_result into a status and a reason; rows recorded by
// older versions (both spellings of an --insecure session) keep reading right.
TEST(StorageDatabase, VersionTwoVerifyResultsAreMigratedToStatusAndReason) {
  TempDir dir;
  const std::string path = dir.file("v2.db");
  FingerprintKey key{};
  {
    Database db;
    ASSERT_TRUE(open_for_writing(path, db, key).ok());
  }
  {
    // Back to the version-2 shape of the tables, with rows as v2 wrote them.
    RawDb raw(path);
    ASSERT_EQ(raw.exec("ALTER TABLE sessions DROP COLUMN duration_us; "
                       "ALTER TABLE messages DROP COLUMN recipients_left_out; "
                       "ALTER TABLE messages DROP COLUMN accepted_recipients_left_out; "
                       "ALTER TABLE sessions DROP COLUMN client_cert_sha256; "
                       "ALTER TABLE sessions DROP COLUMN client_cert_subject; "
                       "ALTER TABLE sessions DROP COLUMN writer; "
                       "DROP TABLE certificate_ders; "
                       "ALTER TABLE events DROP COLUMN file_offset; "
                       "ALTER TABLE events DROP COLUMN file_length; "
                       "ALTER TABLE sessions DROP COLUMN client_tls_version; "
                       "ALTER TABLE events DROP COLUMN mail_transaction; "
                       "ALTER TABLE messages DROP COLUMN mail_transaction; "
                       "ALTER TABLE sessions DROP COLUMN verify_status; "
                       "ALTER TABLE sessions DROP COLUMN verify_reason; "
                       "ALTER TABLE sessions ADD COLUMN verify_result TEXT; "
                       "PRAGMA user_version = 2;"),
              SQLITE_OK);
    const char* results[] = {"ok", "not verified (--insecure)", "skipped (--insecure)",
                             "certificate for mx is self-signed; use --ca-file or --insecure"};
    for (const char* r : results) {
      ASSERT_EQ(raw.exec("INSERT INTO sessions(started_at, client_address, listen_address, "
                         "upstream_host, upstream_port, tls_mode, ehlo_name, verify_result) "
                         "VALUES ('2026-01-01T00:00:00.000000Z','c','l','u',25,'starttls','e','" +
                         std::string(r) + "')"),
                SQLITE_OK);
    }
    ASSERT_EQ(raw.exec("INSERT INTO sessions(started_at, client_address, listen_address, "
                       "upstream_host, upstream_port, tls_mode, ehlo_name) VALUES "
                       "('2026-01-01T00:00:00.000000Z','c','l','u',25,'none','e')"),
              SQLITE_OK);
  }
  Database db;
  ASSERT_TRUE(open_for_writing(path, db, key).ok());
  std::int64_t version = 0;
  ASSERT_TRUE(db.query_int("PRAGMA user_version", version).ok());
  EXPECT_EQ(version, kSchemaVersion);
  RawDb raw(path);
  const auto row = [&](int id) {
    return raw.text(
        "SELECT coalesce(verify_status, 'NULL') || '|' || coalesce(verify_reason, "
        "'NULL') FROM sessions WHERE id = " +
        std::to_string(id));
  };
  EXPECT_EQ(row(1), "ok|NULL");
  EXPECT_EQ(row(2), "not_verified_insecure|NULL");
  EXPECT_EQ(row(3), "not_verified_insecure|NULL");
  EXPECT_EQ(row(4), "failed|certificate for mx is self-signed; use --ca-file or --insecure");
  EXPECT_EQ(row(5), "NULL|NULL");
  EXPECT_EQ(raw.text("SELECT count(*) FROM pragma_table_info('sessions') "
                     "WHERE name = 'verify_result'"),
            "0");
}

TEST(StorageDatabase, ReopenIsIdempotentAndKeepsTheKey) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  FingerprintKey first{}, second{};
  {
    Database db;
    ASSERT_TRUE(open_for_writing(path, db, first).ok());
    ASSERT_TRUE(db.exec("INSERT INTO sessions(started_at, client_address, listen_address, "
                        "upstream_host, upstream_port, tls_mode, ehlo_name) VALUES "
                        "('2026-01-01T00:00:00.000000Z','c','l','u',25,'none','e')")
                    .ok());
  }
  Database db;
  ASSERT_TRUE(open_for_writing(path, db, second).ok());
  EXPECT_EQ(first, second);
  std::int64_t n = 0;
  ASSERT_TRUE(db.query_int("SELECT count(*) FROM sessions", n).ok());
  EXPECT_EQ(n, 1);
  ASSERT_TRUE(db.query_int("SELECT count(*) FROM meta", n).ok());
  EXPECT_EQ(n, 3);
  ASSERT_TRUE(db.query_int("PRAGMA user_version", n).ok());
  EXPECT_EQ(n, kSchemaVersion);
}

TEST(StorageDatabase, CreatesFilesPrivatelyWhateverTheUmask) {
  TempDir dir;
  const std::string path = dir.file("a/b/m.db");
  const mode_t old = ::umask(0);  // the most permissive umask a user could have
  Database db;
  FingerprintKey key{};
  const Status st = open_for_writing(path, db, key);
  ::umask(old);
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(path + "-wal"), 0600u);
  EXPECT_EQ(mode_of(path + "-shm"), 0600u);
  EXPECT_EQ(mode_of(dir.file("a")), 0700u);
  EXPECT_EQ(mode_of(dir.file("a/b")), 0700u);
}

TEST(StorageDatabase, UnwritablePathGivesAClearError) {
  TempDir dir;
  std::ofstream(dir.file("plain")) << "x";
  Database db;
  const Status st = Database::open(dir.file("plain/sub/m.db"), OpenOptions{}, db);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message.find("not a directory"), std::string::npos) << st.message;
  EXPECT_NE(st.message.find("plain"), std::string::npos) << st.message;

  const Status st2 = Database::open(dir.file(""), OpenOptions{}, db);
  EXPECT_FALSE(st2.ok());
}

TEST(StorageDatabase, NewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    Database db;
    FingerprintKey key{};
    ASSERT_TRUE(open_for_writing(path, db, key).ok());
    ASSERT_TRUE(db.exec("PRAGMA user_version=" + std::to_string(kSchemaVersion + 1)).ok());
  }
  Database db;
  FingerprintKey key{};
  const Status st = open_for_writing(path, db, key);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message.find("newer"), std::string::npos) << st.message;

  Database ro;
  ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_only}, ro).ok());
  const Status st2 = check_for_reading(ro);
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.message.find("newer"), std::string::npos) << st2.message;
}

TEST(StorageDatabase, ForeignSqliteDatabaseIsRefusedAndLeftUntouched) {
  TempDir dir;
  const std::string path = dir.file("other.db");
  {
    RawDb raw(path);
    ASSERT_EQ(raw.exec("CREATE TABLE t(x); INSERT INTO t VALUES (1);"), SQLITE_OK);
  }
  Database db;
  FingerprintKey key{};
  const Status st = open_for_writing(path, db, key);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message.find("not a mailtap database"), std::string::npos) << st.message;
  db.close();
  RawDb raw(path);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "delete");  // not switched to WAL
  EXPECT_EQ(raw.text("PRAGMA user_version"), "0");

  // A different application id is refused as well.
  ASSERT_EQ(raw.exec("PRAGMA application_id=1234"), SQLITE_OK);
  const Status st2 = open_for_writing(path, db, key);
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.message.find("application_id"), std::string::npos) << st2.message;
}

TEST(StorageDatabase, NonSqliteFileIsRefused) {
  TempDir dir;
  const std::string path = dir.file("notes.txt");
  std::ofstream(path) << std::string(8192, 'x');
  Database db;
  FingerprintKey key{};
  const Status st = open_for_writing(path, db, key);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message.find("not an SQLite database"), std::string::npos) << st.message;
}

TEST(StorageDatabase, LockedDatabaseGivesAClearError) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    Database db;
    FingerprintKey key{};
    ASSERT_TRUE(open_for_writing(path, db, key).ok());
    // Back to a rollback journal so an exclusive lock shuts out readers too.
    ASSERT_TRUE(db.exec("PRAGMA journal_mode=DELETE").ok());
  }
  RawDb holder(path);
  ASSERT_EQ(holder.exec("BEGIN EXCLUSIVE; INSERT INTO meta VALUES ('x', 1);"), SQLITE_OK);
  Database db;
  OpenOptions oo;
  oo.busy_timeout = std::chrono::milliseconds(50);
  FingerprintKey key{};
  Status st = Database::open(path, oo, db);
  if (st.ok()) st = prepare_for_writing(db, "t", key);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(primary_code(st.code), kSqliteBusy);
  EXPECT_NE(st.message.find("locked"), std::string::npos) << st.message;
  holder.exec("ROLLBACK");
}

TEST(StorageDatabase, ReadOnlyOpenOfMissingFileFailsClearly) {
  TempDir dir;
  Database db;
  const Status st = Database::open(dir.file("none.db"), OpenOptions{OpenMode::read_only}, db);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message.find("no database at"), std::string::npos) << st.message;
  EXPECT_FALSE(fs::exists(dir.file("none.db")));
}

TEST(StorageDatabase, ReadOnlyConnectionCannotWrite) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    Database db;
    FingerprintKey key{};
    ASSERT_TRUE(open_for_writing(path, db, key).ok());
  }
  Database ro;
  ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_only}, ro).ok());
  ASSERT_TRUE(check_for_reading(ro).ok());
  EXPECT_FALSE(ro.exec("INSERT INTO meta VALUES ('y', 2)").ok());
  FingerprintKey key{};
  EXPECT_TRUE(read_fingerprint_key(ro, key).ok());
}

TEST(StorageStatement, BindsEmptyValuesAsEmptyNotNull) {
  TempDir dir;
  Database db;
  ASSERT_TRUE(Database::open(dir.file("s.db"), OpenOptions{}, db).ok());
  ASSERT_TRUE(db.exec("CREATE TABLE t(a, b, c)").ok());
  Statement st;
  ASSERT_TRUE(db.prepare("INSERT INTO t VALUES (?1, ?2, ?3)", st).ok());
  const std::string with_nul("a\0b", 3);
  ASSERT_TRUE(st.bind_text(1, "").bind_blob(2, "").bind_blob(3, with_nul).run().ok());
  ASSERT_TRUE(st.bind_text_or_null(1, "").bind_optional(2, std::nullopt).bind_int(3, 7).run().ok());
  std::int64_t n = 0;
  ASSERT_TRUE(db.query_int("SELECT count(*) FROM t WHERE a = '' AND typeof(b) = 'blob' "
                           "AND length(c) = 3",
                           n)
                  .ok());
  EXPECT_EQ(n, 1);
  ASSERT_TRUE(db.query_int("SELECT count(*) FROM t WHERE a IS NULL AND b IS NULL", n).ok());
  EXPECT_EQ(n, 1);

  Statement bad;
  ASSERT_TRUE(db.prepare("INSERT INTO t VALUES (?1, ?2, ?3)", bad).ok());
  bad.bind_int(9, 1);  // out of range: reported by run()
  const Status s = bad.run();
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(db.prepare("SELEC nonsense", bad).ok());
}

}  // namespace
}  // namespace mailtap::storage
