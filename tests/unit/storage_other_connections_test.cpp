// Whether another process has the database open, as the pruner asks before it pauses for one
// that may be waiting for the write lock.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "storage/database.hpp"
#include "storage/other_connections.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

using test_support::TempDir;

constexpr std::string_view kLocks =
    "1: POSIX  ADVISORY  READ 1689 fe:00:5488795 128 128\n"
    "2: POSIX  ADVISORY  READ 1689 fe:00:5488793 1073741826 1073742335\n"
    "3: POSIX  ADVISORY  READ 1484 fe:00:5488783 128 128\n"
    "4: -> POSIX  ADVISORY  WRITE 1777 fe:00:5488783 120 120\n"
    "5: OFDLCK ADVISORY  READ  -1 00:05:42 0 EOF\n"
    "6: FLOCK  ADVISORY  WRITE 27127 fe:00:10953437 0 EOF\n";

TEST(OtherConnections, ReadsWhoHoldsLocksOnAFileFromProcLocks) {
  EXPECT_EQ(other_lock_holders(kLocks, 5488795, 1689), false);         // only this process
  EXPECT_EQ(other_lock_holders(kLocks, 5488795, 1484), std::nullopt);  // not this process's
  EXPECT_EQ(other_lock_holders(kLocks, 5488783, 1777), true);          // one waits, another holds
  EXPECT_EQ(other_lock_holders(kLocks, 5488783, 1484), true);          // another process waits
  EXPECT_EQ(other_lock_holders("", 5488795, 1689), std::nullopt);
  EXPECT_EQ(other_lock_holders("garbage\n1: POSIX\n", 5488795, 1689), std::nullopt);
}

// The pruner's own connection alone: nobody else can wait for the write lock. A reader in
// another process (mailtap web, sqlite3) counts: SQLite does not tell readers from writers.
TEST(OtherConnections, AnotherProcessWithTheDatabaseOpenIsSeen) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  int go[2];
  int ready[2];
  ASSERT_EQ(pipe(go), 0);
  ASSERT_EQ(pipe(ready), 0);
  // Forked before this process opens the database: SQLite's state of its open files must not be
  // inherited (the child would take the parent's locks for its own and take none).
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c = 0;
    (void)!read(go[0], &c, 1);
    Database reader;
    std::int64_t n = 0;
    c = Database::open(path, OpenOptions{OpenMode::read_only}, reader).ok() &&
                reader.query_int("SELECT count(*) FROM t", n).ok()
            ? 'y'
            : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(go[0], &c, 1);
    _exit(0);
  }
  Database db;
  ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
  ASSERT_TRUE(db.exec("PRAGMA journal_mode=WAL; CREATE TABLE t(x)").ok());
  EXPECT_EQ(opened_by_another_process(path), false);

  char c = 'g';
  ASSERT_EQ(write(go[1], &c, 1), 1);
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_EQ(opened_by_another_process(path), true);
  ASSERT_EQ(write(go[1], &c, 1), 1);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_EQ(opened_by_another_process(path), false);
  for (int fd : {go[0], go[1], ready[0], ready[1]}) close(fd);
}

}  // namespace
}  // namespace mailtap::storage
