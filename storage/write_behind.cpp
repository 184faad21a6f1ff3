#include "storage/write_behind.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "storage/threads.hpp"

namespace mailtap::storage {

int write_fully_at(int fd, const char* data, std::size_t length, std::int64_t offset) {
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pwrite(fd, data + done, length - done,
                               static_cast<off_t>(offset) + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;  // the device took nothing: do not spin
    // A short direct write ends on a block boundary (the device took whole blocks): go on
    // from there.
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

WriteBehind::~WriteBehind() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void WriteBehind::start(Write& write) {
  write.done = false;
  write.result = 0;
  {
    const std::lock_guard lock(mutex_);
    if (!thread_.joinable()) {
      try {
        thread_ = std::thread([this] { run(); });
      } catch (const std::system_error&) {
        // No thread (resource limits): the storage thread writes it itself, as without one.
        write.result = write_fully_at(write.fd, write.data, write.length, write.offset);
        write.done = true;
        return;
      }
      name_thread(thread_, "mailtap-bodies");
    }
    queue_.push_back(&write);
  }
  queued_.notify_one();
}

int WriteBehind::wait(Write& write) {
  std::unique_lock lock(mutex_);
  written_.wait(lock, [&] { return write.done; });
  return write.result;
}

void WriteBehind::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    queued_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued is written
    Write& write = *queue_.front();
    queue_.pop_front();
    lock.unlock();
    const int result = write_fully_at(write.fd, write.data, write.length, write.offset);
    lock.lock();
    write.result = result;
    write.done = true;
    written_.notify_all();
  }
}

}  // namespace mailtap::storage
