// The record's files are the user's own and private to them, whatever was found at the path
// (docs/recording.md, "Whose the files are"): a database, -wal, -shm or body directory another
// user made is refused; one of the user's own that others could read or write is made private;
// body files are never written, nor read, through a link. The tests with another user's files
// need root (to chown); the others run as anyone.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/private_files.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;
using test_support::TempDir;

constexpr uid_t kNobody = 65534;

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0xffffffff;
  return st.st_mode & 07777;
}

std::string contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::binary) << text;
  ::chmod(path.c_str(), mode);
}

// The recorder over `path`, or null with the reason in `error`.
std::unique_ptr<Recorder> open_recorder(const std::string& path, std::string& error) {
  RecorderOptions o;
  o.path = path;
  return Recorder::open(o, error);
}

// A mailtap database at `path`, made and closed by a recorder as the user running the test.
void make_database(const std::string& path) {
  std::string error;
  ASSERT_NE(open_recorder(path, error), nullptr) << error;
}

// The process umask for one test: the modes must not come from it.
class Umask {
 public:
  explicit Umask(mode_t mask) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;

 private:
  mode_t old_;
};

// Appends `bytes` as the body of session `id` and finishes its file.
Status write_body(const std::string& db, std::int64_t id, const std::string& bytes) {
  BodyFileWriter writer(db, /*direct_io=*/false);
  std::int64_t offset = -1;
  if (Status st = writer.append(id, bytes, offset); !st.ok()) return st;
  writer.finish(id);
  return writer.sync();
}

#define SKIP_UNLESS_ROOT()                                                            \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to give a file to another user"; \
  static_assert(true)

// ---- the user's own files: made private ------------------------------------------------------

TEST(StorageRecordPrivacy, AnExistingDatabaseOthersCouldReadIsMadePrivate) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  make_database(db);
  ::chmod(db.c_str(), 0666);  // an old version, or sqlite3 under umask 000
  std::string error;
  auto rec = open_recorder(db, error);
  ASSERT_NE(rec, nullptr) << error;
  EXPECT_EQ(mode_of(db), 0600u);
  EXPECT_EQ(mode_of(db + "-wal"), 0600u);
  EXPECT_EQ(mode_of(db + "-shm"), 0600u);
}

TEST(StorageRecordPrivacy, ADatabaseItsOwnerMadeReadOnlyStaysReadOnly) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  make_database(db);
  ::chmod(db.c_str(), 0444);
  std::string error;
  auto rec = open_recorder(db, error);
  if (::geteuid() != 0) {
    EXPECT_EQ(rec, nullptr) << "root may write it all the same";
  }
  EXPECT_EQ(mode_of(db), 0400u) << "others lose their access; the owner keeps read-only";
}

TEST(StorageRecordPrivacy, BodyFilesAreMadePrivateWhateverTheUmaskAndTheDatabaseMode) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  const Umask open_umask(0);
  write_file(db, "", 0666);  // the body files once took the database's mode
  ASSERT_TRUE(write_body(db, 1, "large body").ok());
  EXPECT_EQ(mode_of(body_file(db, 1)), 0600u);
  EXPECT_EQ(mode_of(body_directory(db)), 0700u);
}

TEST(StorageRecordPrivacy, AnExistingBodyDirectoryOthersCouldWriteIsMadePrivateAtStart) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  make_database(db);
  fs::create_directory(body_directory(db));
  ::chmod(body_directory(db).c_str(), 0777);
  std::string error;
  auto rec = open_recorder(db, error);
  ASSERT_NE(rec, nullptr) << error;
  EXPECT_EQ(mode_of(body_directory(db)), 0700u);
}

// ---- links and other names of existing files ------------------------------------------------

TEST(StorageRecordPrivacy, ALinkInTheBodyDirectoryIsNotWrittenThrough) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  const std::string victim = dir.file("important.txt");
  write_file(victim, "victim's data\n", 0600);
  fs::create_directory(body_directory(db));
  fs::create_symlink(victim, body_file(db, 1));
  const Status st = write_body(db, 1, "mail mail mail");
  ASSERT_TRUE(st.ok()) << st.message;
  EXPECT_EQ(contents(victim), "victim's data\n");
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(body_file(db, 1))));
  EXPECT_EQ(contents(body_file(db, 1)), "mail mail mail");
}

TEST(StorageRecordPrivacy, AHardLinkInTheBodyDirectoryIsNotWrittenThrough) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  const std::string victim = dir.file("important.txt");
  write_file(victim, "victim's data\n", 0600);
  fs::create_directory(body_directory(db));
  fs::create_hard_link(victim, body_file(db, 1));
  ASSERT_TRUE(write_body(db, 1, "mail mail mail").ok());
  EXPECT_EQ(contents(victim), "victim's data\n");
  EXPECT_EQ(contents(body_file(db, 1)), "mail mail mail");
}

TEST(StorageRecordPrivacy, TheReaderDoesNotFollowALinkInTheBodyDirectory) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  const std::string victim = dir.file("important.txt");
  write_file(victim, "victim's data\n", 0600);
  fs::create_directory(body_directory(db));
  fs::create_symlink(victim, body_file(db, 1));
  BodyFileReader reader(db);
  std::string got;
  EXPECT_FALSE(reader.read(1, 0, 8, got).ok());
  EXPECT_TRUE(got.empty());
}

TEST(StorageRecordPrivacy, ALinkAtTheWalPathIsRefusedAndNotWrittenThrough) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  const std::string victim = dir.file("important.txt");
  make_database(db);
  write_file(victim, "", 0600);  // empty: SQLite would take it for an empty WAL
  fs::create_symlink(victim, db + "-wal");
  std::string error;
  EXPECT_EQ(open_recorder(db, error), nullptr);
  EXPECT_NE(error.find("symbolic link"), std::string::npos) << error;
  EXPECT_EQ(contents(victim), "");
  EXPECT_EQ(mode_of(victim), 0600u);
}

TEST(StorageRecordPrivacy, TheUsersOwnLinkToTheDatabaseIsFollowed) {
  TempDir dir;
  const std::string real = dir.file("real.db");
  make_database(real);
  fs::create_symlink(real, dir.file("link.db"));
  std::string error;
  auto rec = open_recorder(dir.file("link.db"), error);
  EXPECT_NE(rec, nullptr) << error;
}

TEST(StorageRecordPrivacy, TheUsersOwnLinkToADatabaseOthersCouldReadIsFollowedAndMadePrivate) {
  TempDir dir;
  const std::string real = dir.file("real.db");
  make_database(real);
  ::chmod(real.c_str(), 0644);
  fs::create_symlink(real, dir.file("link.db"));
  std::string error;
  EXPECT_NE(open_recorder(dir.file("link.db"), error), nullptr) << error;
  EXPECT_EQ(mode_of(real), 0600u);
}

// Between the check of what is at a path and its open, whoever may write in the directory could
// rename a plain directory they made away and put a link to one of the user's in its place: the
// checks of the owner made on the descriptor would pass, and mailtap would make that directory
// its own. What was seen is what is opened, or nothing is.
TEST(StorageRecordPrivacy, ALinkPutWhereAPlainDirectoryWasSeenIsNotOpened) {
  TempDir dir;
  const std::string path = dir.file("db-bodies");
  const std::string users = dir.file("users");
  fs::create_directory(path);
  fs::create_directory(users);
  struct stat seen {};
  ASSERT_EQ(::lstat(path.c_str(), &seen), 0);
  fs::rename(path, dir.file("moved"));
  fs::create_directory_symlink(users, path);
  UniqueFd fd;
  struct stat st {};
  int open_error = -1;
  const Status s = open_as_seen(path, seen, /*follow=*/false, O_RDONLY | O_DIRECTORY,
                                "the body directory", fd, st, open_error);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message.find("was replaced"), std::string::npos) << s.message;
  EXPECT_FALSE(fd.valid());
}

TEST(StorageRecordPrivacy, AnotherDirectoryPutWhereOneWasSeenIsNotOpened) {
  TempDir dir;
  const std::string path = dir.file("db-bodies");
  fs::create_directory(path);
  struct stat seen {};
  ASSERT_EQ(::lstat(path.c_str(), &seen), 0);
  fs::rename(path, dir.file("moved"));
  fs::create_directory(path);
  UniqueFd fd;
  struct stat st {};
  int open_error = -1;
  const Status s = open_as_seen(path, seen, /*follow=*/false, O_RDONLY | O_DIRECTORY,
                                "the body directory", fd, st, open_error);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(fd.valid());
}

TEST(StorageRecordPrivacy, TheUsersOwnLinkToTheBodyDirectoryIsFollowed) {
  TempDir dir;
  const std::string path = dir.file("db-bodies");
  const std::string users = dir.file("users");
  fs::create_directory(users);
  fs::create_directory_symlink(users, path);
  UniqueFd fd;
  struct stat st {};
  int open_error = -1;
  const Status s =
      open_checked(path, O_RDONLY | O_DIRECTORY, "the body directory", fd, st, open_error);
  ASSERT_TRUE(s.ok()) << s.message;
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(open_error, 0);
  struct stat target {};
  ASSERT_EQ(::stat(users.c_str(), &target), 0);
  EXPECT_EQ(st.st_ino, target.st_ino);
  EXPECT_TRUE(write_body(dir.file("db"), 1, "body").ok());
}

TEST(StorageRecordPrivacy, NothingAtTheBodyDirectoryPathIsNoError) {
  TempDir dir;
  UniqueFd fd;
  struct stat st {};
  int open_error = 0;
  const Status s = open_checked(dir.file("none"), O_RDONLY | O_DIRECTORY, "the body directory", fd,
                                st, open_error);
  EXPECT_TRUE(s.ok());
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(open_error, ENOENT);
}

// ---- another user's files: refused (root only) -----------------------------------------------

TEST(StorageRecordPrivacy, AnEmptyDatabaseAnotherUserMadeIsRefused) {
  SKIP_UNLESS_ROOT();
  TempDir dir;
  const std::string db = dir.file("m.db");
  write_file(db, "", 0666);
  ASSERT_EQ(::chown(db.c_str(), kNobody, kNobody), 0);
  std::string error;
  EXPECT_EQ(open_recorder(db, error), nullptr);
  EXPECT_NE(error.find("owned by uid 65534, not by the user running mailtap"), std::string::npos)
      << error;
  EXPECT_EQ(fs::file_size(db), 0u) << "nothing written into it";
  EXPECT_EQ(mode_of(db), 0666u) << "not ours to change";
}

// A recorder over a database with the file `suffix` beside it made by another user is refused.
void expect_recorder_refuses_foreign_file_beside(const std::string& suffix) {
  SCOPED_TRACE(suffix);
  TempDir dir;
  const std::string db = dir.file("m.db");
  make_database(db);
  write_file(db + suffix, "", 0666);
  ASSERT_EQ(::chown((db + suffix).c_str(), kNobody, kNobody), 0);
  std::string error;
  EXPECT_EQ(open_recorder(db, error), nullptr);
  EXPECT_NE(error.find("owned by uid 65534"), std::string::npos) << error;
  EXPECT_NE(error.find(db + suffix), std::string::npos) << error;
}

TEST(StorageRecordPrivacy, AWalOrShmAnotherUserMadeIsRefused) {
  SKIP_UNLESS_ROOT();
  expect_recorder_refuses_foreign_file_beside("-wal");
  expect_recorder_refuses_foreign_file_beside("-shm");
}

TEST(StorageRecordPrivacy, ABodyDirectoryAnotherUserMadeIsRefusedAtStart) {
  SKIP_UNLESS_ROOT();
  TempDir dir;
  const std::string db = dir.file("m.db");
  fs::create_directory(body_directory(db));
  ::chmod(body_directory(db).c_str(), 0777);
  ASSERT_EQ(::chown(body_directory(db).c_str(), kNobody, kNobody), 0);
  std::string error;
  EXPECT_EQ(open_recorder(db, error), nullptr);
  EXPECT_NE(error.find("the body directory '" + body_directory(db) + "' is owned by uid 65534"),
            std::string::npos)
      << error;
  // and the writer alone, for a directory made after the start
  const Status st = write_body(db, 1, "mail");
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(fs::exists(body_file(db, 1)));
}

// A recorder over `db` with a symbolic link another user made at `link` (to `target`) is
// refused, the error naming the link as `what`.
void expect_recorder_refuses_foreign_link(const std::string& db, const std::string& link,
                                          const std::string& target, const std::string& what) {
  fs::create_symlink(target, link);
  ASSERT_EQ(::lchown(link.c_str(), kNobody, kNobody), 0);
  std::string error;
  EXPECT_EQ(open_recorder(db, error), nullptr);
  EXPECT_NE(error.find(what + " '" + link + "' is a symbolic link made by uid 65534"),
            std::string::npos)
      << error;
}

TEST(StorageRecordPrivacy, ALinkAnotherUserMadeAtTheDatabasePathIsRefused) {
  SKIP_UNLESS_ROOT();
  TempDir dir;
  const std::string real = dir.file("real.db");
  make_database(real);
  const std::string db = dir.file("m.db");
  expect_recorder_refuses_foreign_link(db, db, real, "the database path");
}

TEST(StorageRecordPrivacy, ALinkAnotherUserMadeAtTheBodyDirectoryPathIsRefused) {
  SKIP_UNLESS_ROOT();
  TempDir dir;
  const std::string db = dir.file("m.db");
  fs::create_directory(dir.file("elsewhere"));
  expect_recorder_refuses_foreign_link(db, body_directory(db), dir.file("elsewhere"),
                                       "the body directory");
  EXPECT_FALSE(write_body(db, 1, "mail").ok());
  EXPECT_TRUE(fs::is_empty(dir.file("elsewhere")));
}

TEST(StorageRecordPrivacy, TheReadersStillReadADatabaseAnotherUserOwns) {
  SKIP_UNLESS_ROOT();
  TempDir dir;
  const std::string db = dir.file("m.db");
  make_database(db);
  ASSERT_EQ(::chown(db.c_str(), kNobody, kNobody), 0);
  std::string error;
  EXPECT_NE(Reader::open(db, error), nullptr) << error;
}

// Runs `sql` on the file at `path` with SQLite itself, not mailtap; with `keep_wal` its last
// close does not checkpoint, so the -wal file and the commits in it stay.
void run_sqlite(const std::string& path, const char* sql, bool keep_wal) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, keep_wal ? 1 : 0, nullptr);
  EXPECT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
  sqlite3_close(raw);
}

// Runs the test as `uid` until destroyed (root's own is given back then).
class EffectiveUser {
 public:
  explicit EffectiveUser(uid_t uid) : ok_(::seteuid(uid) == 0) {}
  ~EffectiveUser() {
    if (ok_) (void)::seteuid(0);
  }
  EffectiveUser(const EffectiveUser&) = delete;
  EffectiveUser& operator=(const EffectiveUser&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_;
};

// A -wal file another user puts beside the database after open() looked for one is replayed
// when SQLite next reads; the check after it refuses it, and closing then must not checkpoint
// their commit into the database. mailtap runs as root, or as another user than the one who
// plants the file: SQLite running as root gives the -wal file it opens to the database's owner,
// so its owner must be known before that.
class StorageRecordPrivacyPlantedWal : public ::testing::TestWithParam<uid_t> {
 protected:
  // A database of the user running mailtap, in a directory the other user may write.
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root, to give a file to another user";
    const std::string home = dir_.file("home");
    ASSERT_EQ(::chmod(dir_.file("").c_str(), 0711), 0);
    ASSERT_TRUE(fs::create_directory(home));
    ASSERT_EQ(::chmod(home.c_str(), 0777), 0) << "the other user may write in it";
    db_ = home + "/m.db";
    const EffectiveUser user(GetParam());
    ASSERT_TRUE(user.ok());
    run_sqlite(db_, "CREATE TABLE mine(x); INSERT INTO mine VALUES ('ours');", false);
  }

  // The other user's -wal file for the database, with a commit of theirs (made on a copy).
  std::string foreign_wal() const {
    const std::string copy = dir_.file("copy.db");
    fs::copy_file(db_, copy);
    run_sqlite(copy,
               "PRAGMA journal_mode=WAL; CREATE TABLE planted(x); INSERT INTO planted VALUES "
               "('theirs');",
               /*keep_wal=*/true);
    return contents(copy + "-wal");
  }

  // Puts `wal` beside the database as the other user's file (as root, whoever runs the test
  // now; it runs as the user running mailtap again afterwards).
  void plant_wal(const std::string& wal) const {
    {
      const EffectiveUser root(0);
      write_file(db_ + "-wal", wal, 0666);
      ASSERT_EQ(::chown((db_ + "-wal").c_str(), kNobody, kNobody), 0);
    }
    ASSERT_EQ(::seteuid(GetParam()), 0);
  }

  TempDir dir_;
  std::string db_;
};

constexpr uid_t kUser = 54321;

TEST_P(StorageRecordPrivacyPlantedWal, AfterOpenItIsRefusedAndNotCheckpointedIntoTheDatabase) {
  const std::string wal = foreign_wal();
  ASSERT_FALSE(wal.empty());
  std::string before;
  {
    const EffectiveUser user(GetParam());
    ASSERT_TRUE(user.ok());
    Database database;
    ASSERT_TRUE(Database::open(db_, OpenOptions{}, database).ok());
    before = contents(db_);
    ASSERT_FALSE(fs::exists(db_ + "-wal"));
    plant_wal(wal);
    const Status st = database.enable_wal();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message.find("owned by uid 65534"), std::string::npos) << st.message;
  }
  EXPECT_TRUE(contents(db_) == before) << "the other user's commit was written into the database";
  struct stat planted {};
  ASSERT_EQ(::stat((db_ + "-wal").c_str(), &planted), 0);
  EXPECT_EQ(planted.st_uid, kNobody) << "the other user's file was given to the database's owner";
}

INSTANTIATE_TEST_SUITE_P(StorageRecordPrivacy, StorageRecordPrivacyPlantedWal,
                         ::testing::Values(uid_t{0}, kUser),
                         [](const ::testing::TestParamInfo<uid_t>& info) {
                           return info.param == 0 ? std::string("AsRoot")
                                                  : std::string("AsAnotherUser");
                         });

}  // namespace
}  // namespace mailtap::storage
