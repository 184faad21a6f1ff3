// Message bodies beyond their first kInlineBodyOctets are stored outside the database: one
// append-only file per session in "<database>-bodies/", which the body events refer to by
// offset and length (events.file_offset, events.file_length). In the database they would be
// written twice, once to the WAL and again by its checkpoint; here once, and where the file
// system allows it with O_DIRECT (DirectAppender), past the page cache. The writer makes them
// durable (fdatasync) before the transaction that refers to them commits.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/common/descriptor_reserve.hpp"
#include "storage/database.hpp"
#include "storage/direct_appender.hpp"
#include "storage/private_files.hpp"
#include "storage/write_behind.hpp"

namespace mailtap::storage {

// A message's first octets stay in the database: small messages cost no file and no fsync.
inline constexpr std::size_t kInlineBodyOctets = std::size_t{64} * 1024;

// "<database>-bodies", and the file of one session in it.
std::string body_directory(const std::string& database_path);
std::string body_file(const std::string& database_path, std::int64_t session_id);

// The storage thread's side.
class BodyFileWriter {
 public:
  // `direct_io`: write with O_DIRECT where the file system takes it (otherwise, and with
  // false, through the page cache).
  explicit BodyFileWriter(std::string database_path, bool direct_io = true);
  ~BodyFileWriter();  // closes every file; only sync() makes their bytes durable
  BodyFileWriter(const BodyFileWriter&) = delete;
  BodyFileWriter& operator=(const BodyFileWriter&) = delete;

  // Checks the body directory if there is one already, as the first append() checks the one it
  // finds or makes (the user's, private: private_files.hpp), so that one another user made
  // stops the recorder at its start rather than at the first large message.
  Status check_directory() { return open_directory(/*create=*/false); }

  // Appends `bytes` to the session's file and says where they start. The first append of this
  // process to a session's file empties it: whatever is there was never referred to by a
  // committed event (a crashed run's uncommitted session whose id was taken again). Only inside
  // a write transaction that has written the session's row, or after that row committed: prune
  // removes a file whose session no row has while it holds the write lock (pruner.cpp).
  Status append(std::int64_t session_id, std::string_view bytes, std::int64_t& offset);
  // Makes every byte appended so far durable, and the directory entries of new files; closes
  // the files of finished sessions. Called before each COMMIT. Between calls a file written
  // directly may end in zeros past its last octet (its last block is written whole); a
  // finished session's file is cut to its length.
  Status sync();
  // The session will append nothing more: its file is closed at the next sync().
  void finish(std::int64_t session_id);
  // Closes every file without syncing (after a rollback: nothing refers to the unsynced bytes).
  void close_all() noexcept;
  // Whether "<database>-bodies" still names the directory the files are made in (one stat), as
  // Database::check_path() asks of the database file: renamed or deleted, the files made in it
  // since are nowhere the events that refer to them say. `same` while there is none yet.
  Database::PathCheck check_directory_path() const;
  const std::string& directory() const noexcept { return directory_; }

 private:
  struct File {
    // Declared before `direct`, so closed after it: a DirectAppender destroyed waits for the
    // write it has under way on this descriptor.
    UniqueFd fd;
    std::int64_t size = 0;    // octets appended
    std::int64_t synced = 0;  // octets durable: all that committed rows may refer to
    bool finished = false;
    // Made by this writer: opened again (never emptied) after it was closed in the reserve's
    // place, see open_file().
    bool made = false;
    bool in_reserve = false;  // open in file_reserve_'s place: synced and closed after its write
    std::unique_ptr<DirectAppender> direct;  // null: written through the page cache
  };
  Status open_directory(bool create);
  Status sync_parent_directory();
  Status close_in_reserve(std::int64_t session_id, File& file);
  Status open_file(std::int64_t session_id, File& file);
  bool start_direct_writes(int fd);
  bool direct_writes_work(int fd);
  static int sync_file(File& file);
  void close_file(File& file, std::int64_t length) noexcept;

  std::string database_path_;
  std::string directory_;
  bool direct_io_;              // O_DIRECT still worth trying
  bool direct_probed_ = false;  // a first direct write has shown whether the file system takes it
  std::size_t direct_files_ = 0;
  UniqueFd directory_fd_;         // the checked directory the files are made in, once there is one
  struct stat directory_st_ {};   // its fstat(2), for check_directory_path()
  bool directory_dirty_ = false;  // a file was created since the last sync
  bool parent_dirty_ = false;     // the directory itself was created since the last sync
  WriteBehind write_behind_;      // before files_: their appenders hand it buffers until destroyed
  std::unordered_map<std::int64_t, File> files_;
  // Out of descriptors (a burst of clients holding every one), a body file, or the parent
  // directory for its sync, is opened in the place of this one, and closed again after its
  // write (files_ may hold others still open): a shortage of descriptors never fails the
  // recording of sessions already admitted.
  DescriptorReserve file_reserve_;
  // Kept for the directory until it is open (given up once open without it).
  DescriptorReserve directory_reserve_;
};

// The readers' side: one open file at a time (events are read session by session).
class BodyFileReader {
 public:
  // Pinned: the first file opened is the only one this reader ever reads. It is never opened
  // again by its path, even once prune has removed it and a new session with the same id has
  // put another file there: the octets stay those of the file first opened (its inode lives on
  // while held), and a read of another session, or after the first open failed, fails. For a
  // reader whose reads must agree with each other (a length, then the octets it announced).
  // Unpinned (the default): a long-lived reader follows the path to whatever file is there now.
  explicit BodyFileReader(std::string database_path, bool pinned = false);
  ~BodyFileReader();
  BodyFileReader(const BodyFileReader&) = delete;
  BodyFileReader& operator=(const BodyFileReader&) = delete;

  // Reads exactly `length` octets at `offset` of the session's file into `out`; an error names
  // the file and what is missing.
  Status read(std::int64_t session_id, std::int64_t offset, std::int64_t length, std::string& out);

  // Pinned, before any read: opens the session's file now (nothing there is no error here; a
  // read then says it is missing). For a reader that opens the file before it reads the rows
  // that refer to it, then asks still_at_path().
  void open_now(std::int64_t session_id);
  // Whether the file open_now() opened is still the one at its path, or, if it found none,
  // there is still none: then no other file was put there in between.
  bool still_at_path() const;
  // Why open_now() could not open a file that is there (too many open files, no permission):
  // another try would fail as well. "" if it opened one, or found none.
  std::string open_failure() const;

 private:
  std::string database_path_;
  std::int64_t open_session_ = 0;
  UniqueFd fd_;
  bool pinned_ = false;
  bool opened_once_ = false;  // an open was tried (pinned: no second one)
  int open_error_ = 0;        // its errno, if it failed
};

// Removing the files of sessions deleted from the database goes in two steps. The first moves
// a file out of the way, under a name no writer or reader uses (".pruned-<session id>"): a
// rename, microseconds, which prune does while it holds the write lock (it decides there which
// files may go: pruner.cpp). The second removes the files so moved, whenever: unlink can take
// milliseconds a file (a file system mounted with `discard` trims its blocks), which would be
// spent holding the lock. Both are best effort: nothing refers to a file left behind, and the
// next prune finds it (list_body_files).

// Moves the files of `session_ids` aside. Those moved are added to `moved`; a missing file is
// none. Returns how many could not be moved.
std::size_t set_aside_body_files(const std::string& database_path,
                                 const std::vector<std::int64_t>& session_ids,
                                 std::vector<std::int64_t>& moved);
// Removes the files moved aside for `session_ids`; returns how many could not be removed.
std::size_t remove_set_aside_body_files(const std::string& database_path,
                                        const std::vector<std::int64_t>& session_ids);

// What the body directory holds (nothing if there is none): the session ids its body files are
// named by, and those of the files moved aside, in no order. Other entries (names that are
// neither, anything but a regular file) are not mailtap's and are left out.
struct BodyDirectoryListing {
  std::vector<std::int64_t> files;
  std::vector<std::int64_t> set_aside;
};
Status list_body_files(const std::string& database_path, BodyDirectoryListing& out);
// Whether the entry `name` of the directory open as `directory_fd`, of readdir's `d_type`, is a
// regular file: mailtap makes only those, and prune must not remove (or follow) a directory or
// a symbolic link named like one. A file system that does not fill d_type (DT_UNKNOWN) is
// asked with fstatat, not following a link.
bool is_regular_file_entry(int directory_fd, const char* name, unsigned char d_type);

}  // namespace mailtap::storage
