#include "storage/direct_appender.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mailtap::storage {

namespace {

std::size_t round_up(std::size_t n) {
  return (n + DirectAppender::kBlock - 1) / DirectAppender::kBlock * DirectAppender::kBlock;
}

}  // namespace

DirectAppender::DirectAppender(std::size_t capacity)
    : capacity_(round_up(std::max<std::size_t>(capacity, kBlock))) {}

bool DirectAppender::take_buffer() {
  if (buffer_) return true;
  buffer_.reset(static_cast<char*>(std::aligned_alloc(kBlock, capacity_)));
  if (!buffer_) return false;
  std::memcpy(buffer_.get(), parked_.data(), parked_.size());
  parked_.clear();
  parked_.shrink_to_fit();
  return true;
}

int DirectAppender::write_at_base(int fd, std::size_t length) {
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pwrite(fd, buffer_.get() + done, length - done,
                               static_cast<off_t>(base_) + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;  // the device took nothing: do not spin
    // A short direct write ends on a block boundary (the device took whole blocks): go on
    // from there.
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

int DirectAppender::append(int fd, std::string_view bytes) {
  if (!take_buffer()) return ENOMEM;
  while (!bytes.empty()) {
    const std::size_t n = std::min(capacity_ - staged_, bytes.size());
    std::memcpy(buffer_.get() + staged_, bytes.data(), n);
    staged_ += n;
    bytes.remove_prefix(n);
    if (staged_ == capacity_) {
      if (int err = write_at_base(fd, capacity_)) return err;
      base_ += static_cast<std::int64_t>(capacity_);
      staged_ = 0;
    }
  }
  return 0;
}

int DirectAppender::flush(int fd) {
  if (staged_ == 0 || !buffer_) return 0;  // parked: its block was written before parking
  const std::size_t padded = round_up(staged_);
  std::memset(buffer_.get() + staged_, 0, padded - staged_);
  if (int err = write_at_base(fd, padded)) return err;
  // Whole blocks are final; the partial one is kept to be rewritten with what follows it.
  const std::size_t whole = staged_ / kBlock * kBlock;
  if (whole > 0) {
    std::memmove(buffer_.get(), buffer_.get() + whole, staged_ - whole);
    base_ += static_cast<std::int64_t>(whole);
    staged_ -= whole;
  }
  return 0;
}

void DirectAppender::park() {
  if (!buffer_ || staged_ >= kBlock) return;
  parked_.assign(buffer_.get(), staged_);
  buffer_.reset();
}

}  // namespace mailtap::storage
