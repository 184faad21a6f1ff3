// The one buffer type for a password, an access token, or anything encoded from them (a SASL
// response, an AUTH line). Its storage is allocated once, with the capacity given at
// construction, and never grows: no realloc can leave an unwiped copy behind in freed memory.
// Destruction, clear() and truncate() wipe with OPENSSL_cleanse. It is move-only (a move hands
// over the one allocation; nothing is copied) and copies are explicit (clone(), copy_of()).
// The bytes are reached only through view()/data(), so a secret never converts silently into
// a std::string that would outlive it.
#pragma once

#include <openssl/mem.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

namespace mailtap::smtp {

class Secret {
 public:
  Secret() noexcept = default;
  // Allocates `capacity` bytes now; appends beyond it fail instead of reallocating.
  explicit Secret(std::size_t capacity)
      : bytes_(capacity == 0 ? nullptr : new char[capacity]), capacity_(capacity) {}
  static Secret copy_of(std::string_view bytes) {
    Secret s(bytes.size());
    s.append(bytes);
    return s;
  }

  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& other) noexcept
      : bytes_(std::move(other.bytes_)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      release();
      bytes_ = std::move(other.bytes_);
      size_ = std::exchange(other.size_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }
  ~Secret() { release(); }

  Secret clone() const {
    Secret s(capacity_);
    s.append(view());
    return s;
  }

  std::string_view view() const noexcept { return {bytes_.get(), size_}; }
  const char* data() const noexcept { return bytes_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t room() const noexcept { return capacity_ - size_; }
  bool empty() const noexcept { return size_ == 0; }

  // All or nothing: false (and no change) when `bytes` does not fit in the capacity.
  bool append(std::string_view bytes) noexcept {
    if (bytes.size() > room()) return false;
    if (!bytes.empty()) std::memcpy(bytes_.get() + size_, bytes.data(), bytes.size());
    size_ += bytes.size();
    return true;
  }
  bool push_back(char c) noexcept { return append(std::string_view(&c, 1)); }
  // Grows the size by `n` and returns where the new bytes go, for writers that produce bytes
  // in place (decoders, read(2)); nullptr when `n` does not fit.
  char* extend(std::size_t n) noexcept {
    if (n > room()) return nullptr;
    char* at = bytes_.get() + size_;
    size_ += n;
    return at;
  }
  // Keeps the first `n` bytes and wipes the rest.
  void truncate(std::size_t n) noexcept {
    if (n >= size_) return;
    OPENSSL_cleanse(bytes_.get() + n, size_ - n);
    size_ = n;
  }
  void clear() noexcept { truncate(0); }

  // Constant time in the contents (not in the lengths).
  bool equals(std::string_view other) const noexcept {
    return other.size() == size_ && CRYPTO_memcmp(bytes_.get(), other.data(), size_) == 0;
  }

 private:
  void release() noexcept {
    if (bytes_) OPENSSL_cleanse(bytes_.get(), capacity_);
    bytes_.reset();
    size_ = capacity_ = 0;
  }

  std::unique_ptr<char[]> bytes_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace mailtap::smtp
