// Message bodies beyond their first kInlineBodyOctets are stored outside the database: one
// append-only file per session in "<database>-bodies/", which the body events refer to by
// offset and length (events.file_offset, events.file_length). In the database they would be
// written twice, once to the WAL and again by its checkpoint; here once. The writer makes them
// durable (fdatasync) before the transaction that refers to them commits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/database.hpp"

namespace mailtap::storage {

// A message's first octets stay in the database: small messages cost no file and no fsync.
inline constexpr std::size_t kInlineBodyOctets = std::size_t{64} * 1024;

// "<database>-bodies", and the file of one session in it.
std::string body_directory(const std::string& database_path);
std::string body_file(const std::string& database_path, std::int64_t session_id);

// The storage thread's side.
class BodyFileWriter {
 public:
  explicit BodyFileWriter(std::string database_path);
  ~BodyFileWriter();  // closes every file; only sync() makes their bytes durable
  BodyFileWriter(const BodyFileWriter&) = delete;
  BodyFileWriter& operator=(const BodyFileWriter&) = delete;

  // Appends `bytes` to the session's file and says where they start. The first append of this
  // process to a session's file empties it: whatever is there was never referred to by a
  // committed event (a crashed run's uncommitted session whose id was taken again).
  Status append(std::int64_t session_id, std::string_view bytes, std::int64_t& offset);
  // Makes every byte appended so far durable, and the directory entries of new files; closes
  // the files of finished sessions. Called before each COMMIT.
  Status sync();
  // The session will append nothing more: its file is closed at the next sync().
  void finish(std::int64_t session_id);
  // Closes every file without syncing (after a rollback: nothing refers to the unsynced bytes).
  void close_all() noexcept;

 private:
  struct File {
    int fd = -1;
    std::int64_t size = 0;
    bool dirty = false;
    bool finished = false;
  };
  Status open_file(std::int64_t session_id, File& file);

  std::string database_path_;
  std::string directory_;
  bool directory_ready_ = false;
  bool directory_dirty_ = false;  // a file was created since the last sync
  bool parent_dirty_ = false;     // the directory itself was created since the last sync
  std::unordered_map<std::int64_t, File> files_;
};

// The readers' side: one open file at a time (events are read session by session).
class BodyFileReader {
 public:
  explicit BodyFileReader(std::string database_path);
  ~BodyFileReader();
  BodyFileReader(const BodyFileReader&) = delete;
  BodyFileReader& operator=(const BodyFileReader&) = delete;

  // Reads exactly `length` octets at `offset` of the session's file into `out`; an error names
  // the file and what is missing.
  Status read(std::int64_t session_id, std::int64_t offset, std::int64_t length, std::string& out);

 private:
  std::string database_path_;
  std::int64_t open_session_ = 0;
  int fd_ = -1;
};

// Removes the files of sessions deleted from the database (best effort: nothing refers to a
// file left behind, and a writer that takes its session id again empties it). Returns how many
// could not be removed.
std::size_t remove_body_files(const std::string& database_path,
                              const std::vector<std::int64_t>& session_ids);

}  // namespace mailtap::storage
