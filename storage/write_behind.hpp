// A thread that performs the body files' direct writes handed to it, in order, so that the
// storage thread hashes and records the next megabyte of a body while the device takes the
// last one. A write past the page cache (O_DIRECT) blocks for the whole transfer, and on ext4
// an appending one blocks even when submitted with io_submit(2), so overlapping the device with
// the rest of the storage thread's work takes a thread. It starts with the first write.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

namespace mailtap::storage {

// pwrite(2) until all `length` octets are written at `offset`. Returns 0 or an errno.
int write_fully_at(int fd, const char* data, std::size_t length, std::int64_t offset);

class WriteBehind {
 public:
  // One write. Its descriptor and buffer stay untouched until wait() returns.
  struct Write {
    int fd = -1;
    const char* data = nullptr;
    std::size_t length = 0;
    std::int64_t offset = 0;

   private:
    friend class WriteBehind;
    bool done = true;
    int result = 0;
  };

  WriteBehind() = default;
  ~WriteBehind();  // performs what is queued, then stops the thread
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // Queues `write`, which must stay alive until wait(write) returns. If no thread can be
  // started, writes it before returning.
  void start(Write& write);
  // Returns once `write` is on the device (at once for one never started): 0 or an errno. The
  // outcome stays with `write` until it is started again.
  int wait(Write& write);

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable queued_;
  std::condition_variable written_;
  std::deque<Write*> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mailtap::storage
