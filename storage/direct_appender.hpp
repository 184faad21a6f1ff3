// Appending to a file opened with O_DIRECT: octets collect in a block-aligned buffer and reach
// the disk in whole blocks, bypassing the page cache. Through the page cache a large body cost
// the storage thread a copy into freshly allocated cache pages, the file system's per-page work
// and later the writeback, together more CPU than the relay's own TLS (docs/benchmarks.md);
// written directly it costs one copy into this buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace mailtap::storage {

class DirectAppender {
 public:
  // The strictest alignment O_DIRECT asks of common devices (logical blocks of 512 or 4096).
  static constexpr std::size_t kBlock = 4096;

  // Appends to an empty file, `capacity` octets (rounded up to whole blocks) at a time.
  explicit DirectAppender(std::size_t capacity);

  // Appends at the end; a full buffer is written at once. Returns 0 or an errno.
  int append(int fd, std::string_view bytes);
  // Writes everything appended and not yet written, the last partial block padded with zeros.
  // That block stays buffered and is written again, longer, by the next flush: until then the
  // file is longer than size(). Returns 0 or an errno.
  int flush(int fd);
  // Frees the buffer while the file is idle, keeping only its partial last block (call after
  // flush()); the next append() takes a buffer again.
  void park();

  std::int64_t size() const { return base_ + static_cast<std::int64_t>(staged_); }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  bool take_buffer();
  int write_at_base(int fd, std::size_t length);

  std::size_t capacity_;
  std::unique_ptr<char, Free> buffer_;
  std::string parked_;      // the partial last block while parked
  std::int64_t base_ = 0;   // file offset of buffer_[0]: a multiple of kBlock
  std::size_t staged_ = 0;  // octets in buffer_ (or parked_)
};

}  // namespace mailtap::storage
