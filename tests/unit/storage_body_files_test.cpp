// Large bodies are written once, to the session's body file beside the database, and read back
// through storage::Reader exactly as relayed: load, search, audit, prune.
#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/pruner.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;
using test_support::batch;
using test_support::count;
using test_support::TempDir;

using test_support::body_piece;
using test_support::pattern;
using test_support::record_body;

std::unique_ptr<Recorder> open_recorder(const std::string& path) {
  RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = Recorder::open(o, error);
  EXPECT_NE(rec, nullptr) << error;
  return rec;
}

std::vector<std::string> loaded_bodies(const std::string& path, std::int64_t id,
                                       std::string* error = nullptr) {
  std::string err;
  auto reader = Reader::open(path, err);
  EXPECT_NE(reader, nullptr) << err;
  std::optional<SessionDetail> d;
  std::vector<std::string> out;
  if (!reader->load_session(id, d, err)) {
    if (error != nullptr) *error = err;
    return out;
  }
  EXPECT_TRUE(d.has_value());
  for (const EventRow& e : d->events) {
    if (e.event.kind == smtp::EventKind::data) out.push_back(e.event.bytes);
  }
  return out;
}

TEST(StorageBodyFiles, ALargeBodyIsWrittenOnceBesideTheDatabaseAndReadsBackByteExact) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::vector<std::string> sent;
  {
    auto rec = open_recorder(path);
    sent = record_body(*rec, 1, 24, 48 * 1024);  // 1,152 KiB in 48 KiB reads
  }
  const std::string file = body_file(path, 1);
  ASSERT_TRUE(fs::exists(file));
  // The message's first 64 KiB (one piece here; the second would pass it) stay in the row.
  EXPECT_EQ(fs::file_size(file), 23u * 48 * 1024);
  EXPECT_EQ(count(path, "SELECT coalesce(sum(length(bytes)), 0) FROM events WHERE kind = 'data'"),
            48 * 1024);
  EXPECT_EQ(count(path, "SELECT count(*) FROM events WHERE file_offset IS NOT NULL"), 23);
  EXPECT_EQ(loaded_bodies(path, 1), sent);

  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(body_directory(path).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST(StorageBodyFiles, SmallMessagesStayInTheDatabase) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    std::vector<std::vector<Record>> batches;
    batches.push_back(batch(test_support::session_opened(1)));
    // Three messages of 40 KiB: together above the inline limit, each below it.
    for (std::uint64_t t = 1; t <= 3; ++t)
      batches.push_back(batch(body_piece(1, t, pattern(40 * 1024, t), t)));
    batches.push_back(batch(test_support::session_closed(1)));
    test_support::record_batches(*rec, std::move(batches));
  }
  EXPECT_FALSE(fs::exists(body_directory(path)));
  EXPECT_EQ(count(path, "SELECT count(*) FROM events WHERE file_offset IS NOT NULL"), 0);
  EXPECT_EQ(loaded_bodies(path, 1).size(), 3u);
}

TEST(StorageBodyFiles, SearchingFindsTextOnlyInTheBodyFile) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    test_support::record_batches(
        *rec, {batch(test_support::session_opened(1)), batch(body_piece(1, 1, pattern(65536, 0))),
               batch(body_piece(1, 2, "X-Needle: found-in-the-body-file\r\n")),
               batch(test_support::session_closed(1))});
  }
  ASSERT_EQ(count(path, "SELECT count(*) FROM events WHERE file_offset IS NOT NULL"), 1);
  std::string error;
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  SessionFilter f;
  f.text = "found-in-the-body-file";
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  f.text = "not-anywhere";
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  EXPECT_TRUE(rows.empty());
}

TEST(StorageBodyFiles, AMissingOrShortBodyFileIsAClearErrorNotACrash) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    record_body(*rec, 1, 4, 64 * 1024);
  }
  const std::string file = body_file(path, 1);
  ASSERT_EQ(::truncate(file.c_str(), 1000), 0);
  std::string error;
  EXPECT_TRUE(loaded_bodies(path, 1, &error).empty());
  EXPECT_NE(error.find(file), std::string::npos) << error;
  EXPECT_NE(error.find("ends before octet"), std::string::npos) << error;

  // A damaged row asking for more than any file holds is the same error, not an allocation.
  {
    Database db;
    ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
    ASSERT_TRUE(db.exec("UPDATE events SET file_length = 1 << 50 WHERE file_offset = 0").ok());
  }
  error.clear();
  EXPECT_TRUE(loaded_bodies(path, 1, &error).empty());
  EXPECT_NE(error.find("ends before octet"), std::string::npos) << error;

  fs::remove(file);
  error.clear();
  EXPECT_TRUE(loaded_bodies(path, 1, &error).empty());
  EXPECT_NE(error.find("cannot open body file"), std::string::npos) << error;

  // A search skips what it cannot read.
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  SessionFilter f;
  f.text = "mx.example.net";
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  EXPECT_EQ(rows.size(), 1u);
  // audit's whole-file read goes on, with the damage on the events it spoils.
  std::vector<std::string> unreadable;
  EXPECT_TRUE(reader->for_each_event(
      [&](std::int64_t, const EventRow& e) {
        if (!e.unreadable.empty()) {
          unreadable.push_back(e.unreadable);
          EXPECT_TRUE(e.event.bytes.empty());
        }
      },
      error))
      << error;
  ASSERT_FALSE(unreadable.empty());
  EXPECT_NE(unreadable[0].find(file), std::string::npos) << unreadable[0];
}

// The body directory renamed (or deleted) while recording: the recorder went on making files in
// the directory it holds open, under its new name, and committed events that point at
// "<database>-bodies/N", where nothing is. As for the database file, the recorder looks (at each
// commit that wrote to a body file, and at stop) and fails, naming the directory and what to do.
TEST(StorageBodyFiles, ABodyDirectoryRenamedWhileRecordingIsAFailure) {
  for (const bool across : {false, true}) {
    SCOPED_TRACE(across ? "a session writing its body file across the rename"
                        : "a new session after the rename");
    TempDir dir;
    const std::string path = dir.file("m.db");
    const std::string bodies = body_directory(path);
    std::string reason_seen;
    RecorderOptions o;
    o.path = path;
    o.on_failure = [&](const std::string& reason) { reason_seen = reason; };
    std::string error;
    auto rec = Recorder::open(o, error);
    ASSERT_NE(rec, nullptr) << error;
    record_body(*rec, 1, 3, 64 * 1024);
    if (across) {
      test_support::record_batches(
          *rec, {batch(test_support::session_opened(2)), batch(body_piece(2, 1, pattern(65536, 1))),
                 batch(body_piece(2, 2, pattern(65536, 2)))});
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // committed: the file is open
      ASSERT_TRUE(fs::exists(body_file(path, 2)));
    }
    fs::rename(bodies, dir.file("moved-bodies"));
    // Sessions whose bodies stay in the database do not depend on the directory.
    test_support::record_batches(
        *rec, {batch(test_support::session_opened(3), body_piece(3, 1, "small\r\n"),
                     test_support::session_closed(3))});
    EXPECT_FALSE(rec->failed()) << rec->failure_reason();
    if (across) {
      test_support::record_batches(*rec, {batch(body_piece(2, 3, pattern(65536, 3))),
                                          batch(test_support::session_closed(2))});
    } else {
      record_body(*rec, 2, 3, 64 * 1024);
    }
    EXPECT_TRUE(rec->failed());
    EXPECT_NE(rec->failure_reason().find("the body directory '" + bodies +
                                         "' was deleted or renamed while recording"),
              std::string::npos)
        << rec->failure_reason();
    EXPECT_NE(rec->failure_reason().find("give it its name back; then restart mailtap"),
              std::string::npos)
        << rec->failure_reason();
    rec->stop();
    EXPECT_EQ(reason_seen, rec->failure_reason());
    // No committed event points at a body the directory's name does not lead to.
    EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL"), 2);
    EXPECT_EQ(count(path,
                    "SELECT count(*) FROM events WHERE session_id = 2 AND file_offset IS "
                    "NOT NULL"),
              across ? 1 : 0);
  }
}

// Renamed while idle: no commit wrote to it, so stopping notices and fails the run.
TEST(StorageBodyFiles, ABodyDirectoryRenamedWhileIdleFailsTheRunAtStop) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  auto rec = open_recorder(path);
  record_body(*rec, 1, 3, 64 * 1024);
  fs::rename(body_directory(path), dir.file("moved-bodies"));
  EXPECT_FALSE(rec->failed());
  rec->stop();
  EXPECT_TRUE(rec->failed());
  EXPECT_NE(rec->failure_reason().find("the body directory"), std::string::npos)
      << rec->failure_reason();
}

TEST(StorageBodyFiles, ASessionIdTakenAgainStartsAnEmptyFile) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  { auto rec = open_recorder(path); }
  // Left by a crashed run whose session 1 never committed.
  fs::create_directory(body_directory(path));
  std::ofstream(body_file(path, 1)) << std::string(100000, 'Z');
  std::vector<std::string> sent;
  {
    auto rec = open_recorder(path);
    sent = record_body(*rec, 1, 3, 64 * 1024);
  }
  EXPECT_EQ(fs::file_size(body_file(path, 1)), 2u * 64 * 1024);
  EXPECT_EQ(loaded_bodies(path, 1), sent);
}

TEST(StorageBodyFiles, AReaderThatStaysOpenReadsTheFileThatIsThereNow) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    record_body(*rec, 1, 2, 64 * 1024);
  }
  BodyFileReader reader(path);
  std::string got;
  ASSERT_TRUE(reader.read(1, 0, 4, got).ok());
  EXPECT_EQ(got, pattern(64 * 1024, 1).substr(0, 4));
  // Pruned, and the id taken again by a new session whose file holds other bytes.
  fs::remove(body_file(path, 1));
  std::ofstream(body_file(path, 1)) << "new session";
  ASSERT_TRUE(reader.read(1, 0, 3, got).ok());
  EXPECT_EQ(got, "new");
}

TEST(StorageBodyFiles, PruningRemovesTheBodyFilesOfDeletedSessions) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    record_body(*rec, 1, 3, 64 * 1024);
    record_body(*rec, 2, 3, 64 * 1024);
  }
  ASSERT_TRUE(fs::exists(body_file(path, 1)));
  PruneCriteria c;
  c.keep = 1;
  PruneResult result;
  std::string error;
  ASSERT_TRUE(prune_sessions(path, c, result, error)) << error;
  ASSERT_EQ(result.sessions.size(), 1u);
  EXPECT_TRUE(result.body_files_warning.empty());
  EXPECT_FALSE(fs::exists(body_file(path, result.sessions[0].id)));
  const std::int64_t kept = result.sessions[0].id == 1 ? 2 : 1;
  EXPECT_TRUE(fs::exists(body_file(path, kept)));
  EXPECT_EQ(loaded_bodies(path, kept).size(), 3u);
}

// Only regular files are body files: a directory or a symbolic link named like one is not
// mailtap's, and prune must neither list nor remove it (nor the file a link points to). Only
// directories were left out, and only where readdir gave their type.
TEST(StorageBodyFiles, ADirectoryOrASymlinkNamedLikeABodyFileIsNotOne) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  {
    auto rec = open_recorder(path);
    record_body(*rec, 1, 3, 64 * 1024);
  }
  ASSERT_TRUE(fs::exists(body_file(path, 1)));
  fs::create_directory(body_file(path, 7));
  fs::create_symlink(body_file(path, 1), body_file(path, 8));

  BodyDirectoryListing listing;
  ASSERT_TRUE(list_body_files(path, listing).ok());
  EXPECT_EQ(listing.files, std::vector<std::int64_t>{1});

  // Where the file system leaves readdir's type unknown, the entry itself is asked.
  const int fd = ::open(body_directory(path).c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  const auto name = [&](std::int64_t id) { return fs::path(body_file(path, id)).filename(); };
  EXPECT_TRUE(is_regular_file_entry(fd, name(1).c_str(), DT_UNKNOWN));
  EXPECT_FALSE(is_regular_file_entry(fd, name(7).c_str(), DT_UNKNOWN)) << "a directory";
  EXPECT_FALSE(is_regular_file_entry(fd, name(8).c_str(), DT_UNKNOWN)) << "a symbolic link";
  EXPECT_FALSE(is_regular_file_entry(fd, name(9).c_str(), DT_UNKNOWN)) << "gone meanwhile";
  ::close(fd);
}

}  // namespace
}  // namespace mailtap::storage
