// Appending to a file opened with O_DIRECT: octets collect in a block-aligned buffer and reach
// the disk in whole blocks, bypassing the page cache. Through the page cache a large body cost
// the storage thread a copy into freshly allocated cache pages, the file system's per-page work
// and later the writeback, together more CPU than the relay's own TLS (docs/benchmarks.md);
// written directly it costs one copy into this buffer. Given a WriteBehind, a full buffer goes
// to its thread and appends go on into a second one, so the device and the storage thread work
// at the same time; without one, each write blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "storage/write_behind.hpp"

namespace mailtap::storage {

class DirectAppender {
 public:
  // The strictest alignment O_DIRECT asks of common devices (logical blocks of 512 or 4096).
  static constexpr std::size_t kBlock = 4096;

  // Appends to an empty file, `capacity` octets (rounded up to whole blocks) at a time, through
  // `write_behind` if given (which must outlive the appender).
  explicit DirectAppender(std::size_t capacity, WriteBehind* write_behind = nullptr);
  ~DirectAppender();  // waits for a write still under way: it reads the buffer
  DirectAppender(const DirectAppender&) = delete;
  DirectAppender& operator=(const DirectAppender&) = delete;

  // Appends at the end; a full buffer is written, or handed to the WriteBehind. Returns 0 or an
  // errno (also of an earlier buffer's write that failed under way).
  int append(int fd, std::string_view bytes);
  // Writes everything appended and not yet written, the last partial block padded with zeros,
  // and waits for any write under way. That block stays buffered and is written again, longer,
  // by the next flush: until then the file is longer than size(). Returns 0 or an errno.
  int flush(int fd);
  // Waits for a write under way, whatever its outcome: before the file is cut or closed.
  void settle();
  // Frees the buffers while the file is idle, keeping only its partial last block (call after
  // flush()); the next append() takes a buffer again.
  void park();

  std::int64_t size() const { return base_ + static_cast<std::int64_t>(staged_); }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  using Buffer = std::unique_ptr<char, Free>;
  Buffer aligned_buffer() const;
  bool take_buffer();
  int write_full_buffer(int fd);
  int wait_under_way();

  std::size_t capacity_;
  WriteBehind* write_behind_;
  Buffer buffer_;
  Buffer spare_;                  // the buffer under way, or the next one to fill
  WriteBehind::Write under_way_;  // reads spare_ until waited for
  std::string parked_;            // the partial last block while parked
  std::int64_t base_ = 0;         // file offset of buffer_[0]: a multiple of kBlock
  std::size_t staged_ = 0;        // octets in buffer_ (or parked_)
};

}  // namespace mailtap::storage
