// Body files written past the page cache (O_DIRECT) hold exactly the octets appended, at the
// offsets the writer gave for them, after every sync and however the appends fall on block
// and buffer boundaries; what a reader sees between syncs and after a session ends.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "storage/body_files.hpp"
#include "storage/direct_appender.hpp"
#include "storage/write_behind.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tests/unit/threads_for_tests.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;
using test_support::TempDir;

std::string contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Octets that differ at every position of a block, so a misplaced block shows.
std::string octets(std::size_t n, std::size_t salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>((i * 7 + salt * 131 + i / 4093) % 251);
  return s;
}

// A descriptor for the appender: O_DIRECT where the file system takes it, otherwise plain
// (the appender's block arithmetic is the same either way).
class AppendTarget {
 public:
  explicit AppendTarget(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
    if (fd_ < 0) fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  ~AppendTarget() {
    if (fd_ >= 0) ::close(fd_);
  }
  AppendTarget(const AppendTarget&) = delete;
  AppendTarget& operator=(const AppendTarget&) = delete;
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Each appender test runs with full buffers written at once and handed to a WriteBehind.
// Each test appends to one file, `path`.
class StorageDirectAppender : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { ASSERT_GE(file.fd(), 0); }
  WriteBehind* write_behind() { return GetParam() ? &write_behind_ : nullptr; }

  TempDir dir;
  const std::string path = dir.file("body");
  AppendTarget file{path};

 private:
  WriteBehind write_behind_;
};

TEST_P(StorageDirectAppender, EveryFlushLeavesTheOctetsSoFarThenZerosToTheBlockEnd) {
  // Small: appends cross buffer ends.
  DirectAppender appender(3 * DirectAppender::kBlock, write_behind());
  std::string sent;
  // Sizes that start and end inside blocks, fill the buffer exactly, and span it twice.
  const std::vector<std::size_t> sizes{1, 10, 4085, 4096, 3 * 4096, 5000, 2 * 3 * 4096 + 17, 0, 7};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::string piece = octets(sizes[i], i);
    ASSERT_EQ(appender.append(file.fd(), piece), 0);
    sent += piece;
    EXPECT_EQ(appender.size(), static_cast<std::int64_t>(sent.size()));
    ASSERT_EQ(appender.flush(file.fd()), 0);
    const std::string on_disk = contents(path);
    const std::size_t blocks = (sent.size() + DirectAppender::kBlock - 1) / DirectAppender::kBlock;
    ASSERT_EQ(on_disk.size(), blocks * DirectAppender::kBlock) << "after piece " << i;
    EXPECT_TRUE(on_disk.compare(0, sent.size(), sent) == 0) << "after piece " << i;
    EXPECT_EQ(on_disk.find_first_not_of('\0', sent.size()), std::string::npos);
  }
}

TEST_P(StorageDirectAppender, AParkedFileKeepsItsLastBlockAndGoesOnWhereItStopped) {
  DirectAppender appender(4 * DirectAppender::kBlock, write_behind());
  std::string sent = octets(2 * 4096 + 100, 1);
  ASSERT_EQ(appender.append(file.fd(), sent), 0);
  ASSERT_EQ(appender.flush(file.fd()), 0);
  appender.park();
  appender.park();                          // twice is harmless
  ASSERT_EQ(appender.flush(file.fd()), 0);  // nothing new while parked
  const std::string more = octets(9000, 2);
  ASSERT_EQ(appender.append(file.fd(), more), 0);
  sent += more;
  ASSERT_EQ(appender.flush(file.fd()), 0);
  EXPECT_TRUE(contents(path).compare(0, sent.size(), sent) == 0);
  EXPECT_EQ(appender.size(), static_cast<std::int64_t>(sent.size()));
}

// Many buffers in a row, each handed over while the next fills: every one lands at its offset.
TEST_P(StorageDirectAppender, ManyFullBuffersInARowLandInOrder) {
  DirectAppender appender(2 * DirectAppender::kBlock, write_behind());
  std::string sent;
  for (std::size_t i = 0; i < 64; ++i) {
    const std::string piece = octets(3000 + i * 97, i);
    ASSERT_EQ(appender.append(file.fd(), piece), 0);
    sent += piece;
  }
  ASSERT_EQ(appender.flush(file.fd()), 0);
  EXPECT_TRUE(contents(path).compare(0, sent.size(), sent) == 0);
}

// A write that fails where the storage thread no longer waits for it still fails the append
// or flush that follows: a commit never counts octets that did not reach the file.
TEST_P(StorageDirectAppender, AFailedWriteIsReportedByTheNextAppendOrFlush) {
  const int read_only = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(read_only, 0);
  DirectAppender appender(DirectAppender::kBlock, write_behind());
  const int appended = appender.append(read_only, octets(DirectAppender::kBlock + 10, 3));
  const int flushed = appender.flush(read_only);
  EXPECT_EQ(appended != 0 ? appended : flushed, EBADF);
  EXPECT_NE(flushed, 0);  // and again at every flush after it
  ::close(read_only);
}

// Destroyed with a full buffer still being written (a session's file closed after a failure):
// the appender waits for the write before its buffer goes.
TEST_P(StorageDirectAppender, DestroyedWithAWriteUnderWayItWaitsForIt) {
  const std::string sent = octets(4 * DirectAppender::kBlock, 4);
  {
    DirectAppender appender(4 * DirectAppender::kBlock, write_behind());
    ASSERT_EQ(appender.append(file.fd(), sent), 0);
  }
  EXPECT_TRUE(contents(path) == sent);
}

// Named for `top -H` and perf.
TEST(StorageWriteBehind, ItsThreadStartsWithTheFirstWriteAndIsNamed) {
  TempDir dir;
  AppendTarget file{dir.file("body")};
  ASSERT_GE(file.fd(), 0);
  const auto before = test_support::threads_named("mailtap-bodies");
  {
    WriteBehind write_behind;
    EXPECT_EQ(test_support::threads_named("mailtap-bodies").size(), before.size());
    DirectAppender appender(DirectAppender::kBlock, &write_behind);
    ASSERT_EQ(appender.append(file.fd(), octets(2 * DirectAppender::kBlock, 5)), 0);
    EXPECT_EQ(test_support::threads_named_since("mailtap-bodies", before).size(), 1u);
  }
  EXPECT_EQ(test_support::threads_named("mailtap-bodies").size(), before.size());
}

INSTANTIATE_TEST_SUITE_P(WrittenAtOnceAndBehind, StorageDirectAppender, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("WriteBehind") : std::string("AtOnce");
                         });

class StorageBodyFileWriterModes : public ::testing::TestWithParam<bool> {};

// Reads back every piece at the offset the writer gave for it.
void expect_pieces(const std::string& db, std::int64_t session,
                   const std::vector<std::pair<std::int64_t, std::string>>& pieces) {
  BodyFileReader reader(db);
  for (const auto& [offset, bytes] : pieces) {
    std::string got;
    const Status st = reader.read(session, offset, static_cast<std::int64_t>(bytes.size()), got);
    ASSERT_TRUE(st.ok()) << st.message;
    EXPECT_TRUE(got == bytes) << "at offset " << offset;
  }
}

TEST_P(StorageBodyFileWriterModes, PiecesReadBackAtTheirOffsetsAfterEachSyncAndTheEndCutsTheFile) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  std::ofstream(db).put('\0');
  BodyFileWriter writer(db, /*direct_io=*/GetParam());
  std::vector<std::pair<std::int64_t, std::string>> pieces;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < 40; ++i) {
    // Reads of a socket: mostly 64 KiB, some short, one larger than the write buffer.
    const std::size_t n = i == 7 ? 600 * 1024 : (i % 3 == 0 ? 1000 + i : 64 * 1024);
    std::string bytes = octets(n, i);
    std::int64_t offset = -1;
    ASSERT_TRUE(writer.append(9, bytes, offset).ok());
    EXPECT_EQ(offset, total);
    total += static_cast<std::int64_t>(n);
    pieces.emplace_back(offset, std::move(bytes));
    if (i % 5 == 4) {
      ASSERT_TRUE(writer.sync().ok());
      expect_pieces(db, 9, pieces);  // a reader between commits sees every synced piece
      EXPECT_GE(static_cast<std::int64_t>(fs::file_size(body_file(db, 9))), total);
    }
  }
  writer.finish(9);
  ASSERT_TRUE(writer.sync().ok());
  EXPECT_EQ(static_cast<std::int64_t>(fs::file_size(body_file(db, 9))), total);
  expect_pieces(db, 9, pieces);
}

TEST_P(StorageBodyFileWriterModes, ClosingWithoutFinishKeepsExactlyTheSyncedOctets) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  std::ofstream(db).put('\0');
  const std::string synced = octets(70000, 3);
  {
    BodyFileWriter writer(db, GetParam());
    std::int64_t offset = -1;
    ASSERT_TRUE(writer.append(4, synced, offset).ok());
    ASSERT_TRUE(writer.sync().ok());
    // Appended after the last sync: no committed row can refer to it (a rollback, a stop).
    ASSERT_TRUE(writer.append(4, octets(5000, 4), offset).ok());
    writer.close_all();
  }
  const std::string left = contents(body_file(db, 4));
  EXPECT_EQ(left.size(), synced.size());
  EXPECT_TRUE(left == synced);
}

TEST_P(StorageBodyFileWriterModes, SessionsInterleavedKeepTheirOwnFiles) {
  TempDir dir;
  const std::string db = dir.file("m.db");
  std::ofstream(db).put('\0');
  BodyFileWriter writer(db, GetParam());
  std::vector<std::pair<std::int64_t, std::string>> a;
  std::vector<std::pair<std::int64_t, std::string>> b;
  const auto append = [&](std::int64_t session, std::size_t i, auto& pieces) {
    std::string bytes = octets(30000 + i * 100 + static_cast<std::size_t>(session), i);
    std::int64_t offset = -1;
    ASSERT_TRUE(writer.append(session, bytes, offset).ok());
    pieces.emplace_back(offset, std::move(bytes));
  };
  for (std::size_t i = 0; i < 12; ++i) {
    append(1, i, a);
    append(2, i, b);
    if (i % 4 == 0) {
      ASSERT_TRUE(writer.sync().ok());
    }
  }
  writer.finish(1);
  writer.finish(2);
  ASSERT_TRUE(writer.sync().ok());
  expect_pieces(db, 1, a);
  expect_pieces(db, 2, b);
}

INSTANTIATE_TEST_SUITE_P(DirectAndBuffered, StorageBodyFileWriterModes, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Direct" : "ThroughThePageCache";
                         });

}  // namespace
}  // namespace mailtap::storage
