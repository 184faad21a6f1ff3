#include "storage/direct_appender.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace mailtap::storage {

namespace {

std::size_t round_up(std::size_t n) {
  return (n + DirectAppender::kBlock - 1) / DirectAppender::kBlock * DirectAppender::kBlock;
}

}  // namespace

DirectAppender::DirectAppender(std::size_t capacity, WriteBehind* write_behind)
    : capacity_(round_up(std::max<std::size_t>(capacity, kBlock))), write_behind_(write_behind) {}

DirectAppender::~DirectAppender() {
  settle();
}

DirectAppender::Buffer DirectAppender::aligned_buffer() const {
  return Buffer(static_cast<char*>(std::aligned_alloc(kBlock, capacity_)));
}

bool DirectAppender::take_buffer() {
  if (buffer_) return true;
  buffer_ = aligned_buffer();
  if (!buffer_) return false;
  std::memcpy(buffer_.get(), parked_.data(), parked_.size());
  parked_.clear();
  parked_.shrink_to_fit();
  return true;
}

int DirectAppender::wait_under_way() {
  return write_behind_ != nullptr ? write_behind_->wait(under_way_) : 0;
}

void DirectAppender::settle() {
  wait_under_way();
}

// The buffer is full: written here, or handed over while appends go on into the spare one.
int DirectAppender::write_full_buffer(int fd) {
  if (write_behind_ == nullptr) {
    if (int err = write_fully_at(fd, buffer_.get(), capacity_, base_)) return err;
  } else {
    if (int err = wait_under_way()) return err;
    if (!spare_ && !(spare_ = aligned_buffer())) return ENOMEM;
    under_way_.fd = fd;
    under_way_.data = buffer_.get();
    under_way_.length = capacity_;
    under_way_.offset = base_;
    write_behind_->start(under_way_);
    std::swap(buffer_, spare_);
  }
  base_ += static_cast<std::int64_t>(capacity_);
  staged_ = 0;
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
      if (int err = write_full_buffer(fd)) return err;
    }
  }
  return 0;
}

int DirectAppender::flush(int fd) {
  if (int err = wait_under_way()) return err;
  if (staged_ == 0 || !buffer_) return 0;  // parked: its block was written before parking
  const std::size_t padded = round_up(staged_);
  std::memset(buffer_.get() + staged_, 0, padded - staged_);
  if (int err = write_fully_at(fd, buffer_.get(), padded, base_)) return err;
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
  settle();
  spare_.reset();
  if (!buffer_ || staged_ >= kBlock) return;
  parked_.assign(buffer_.get(), staged_);
  buffer_.reset();
}

}  // namespace mailtap::storage
