#include "proxy/smtp/timing_mark_scanner.hpp"

#include <cstring>

namespace mailtap::smtp {

namespace {
constexpr unsigned char iac = 0xFF;
constexpr unsigned char do_ = 0xFD;
constexpr unsigned char timing_mark = 0x06;  // RFC 860
}  // namespace

std::size_t TimingMarkScanner::scan(std::string_view bytes) {
  std::size_t found = 0;
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  // A sequence begun in the previous piece: its next octets come first here.
  if (matched_ == 1 && i < n) {
    const unsigned char c = at(i);
    matched_ = 0;
    if (c == do_) {
      matched_ = 2;
      ++i;
    } else if (c == iac) {
      ++i;  // IAC IAC: an escaped data 0xFF
    }
  }
  if (matched_ == 2 && i < n) {
    matched_ = 0;
    if (at(i) == timing_mark) {
      ++found;
      ++i;
    }
  }
  while (i < n) {
    const void* hit = std::memchr(bytes.data() + i, iac, n - i);
    if (hit == nullptr) break;
    const auto p = static_cast<std::size_t>(static_cast<const char*>(hit) - bytes.data());
    if (p + 1 == n) {
      matched_ = 1;
      break;
    }
    if (at(p + 1) == iac) {  // IAC IAC
      i = p + 2;
      continue;
    }
    if (at(p + 1) != do_) {
      i = p + 1;
      continue;
    }
    if (p + 2 == n) {
      matched_ = 2;
      break;
    }
    if (at(p + 2) == timing_mark) {
      ++found;
      i = p + 3;
    } else {
      i = p + 2;  // 0xFD is no IAC: the octet after it is looked at next
    }
  }
  return found;
}

}  // namespace mailtap::smtp
