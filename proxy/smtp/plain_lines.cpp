#include "proxy/smtp/plain_lines.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mailtap::smtp {

namespace {

// The first CR or LF at or after `pos`, or npos. Windows that double in size keep memchr's speed
// and make the cost a multiple of the distance to what is found, never of the rest of the text:
// a run of bare CRs (each a line the caller hands to the normaliser one by one) must not make
// every call search the whole read for an LF that is not there.
std::size_t first_cr_or_lf(std::string_view text, std::size_t pos) {
  for (std::size_t window = 64; pos < text.size(); window *= 2) {
    const std::size_t length = std::min(window, text.size() - pos);
    const char* from = text.data() + pos;
    const auto* lf = static_cast<const char*>(std::memchr(from, '\n', length));
    const std::size_t until_lf = lf == nullptr ? length : static_cast<std::size_t>(lf - from);
    const auto* cr = static_cast<const char*>(std::memchr(from, '\r', until_lf));
    if (cr != nullptr) return static_cast<std::size_t>(cr - text.data());
    if (lf != nullptr) return static_cast<std::size_t>(lf - text.data());
    pos += length;
  }
  return std::string_view::npos;
}

// From `pos`, a line start, on: the end of the last plain line.
std::size_t plain_lines_end_by_line(std::string_view text, std::size_t pos, bool long_lines_ok) {
  std::size_t run = pos;
  while (pos < text.size() && text[pos] != '.') {
    const std::size_t cr_at = first_cr_or_lf(text, pos);
    // Not found, a bare LF, a bare CR, or a CR last in the text (its LF yet to come).
    if (cr_at == std::string_view::npos || text[cr_at] != '\r' || cr_at + 1 == text.size() ||
        text[cr_at + 1] != '\n') {
      break;
    }
    if (cr_at - pos > kLongestTextLine && !long_lines_ok) break;
    pos = cr_at + 2;
    run = pos;
  }
  return run;
}

#if defined(__x86_64__)

constexpr std::size_t kBlock = 64;

// Bit i set: octet i of the block held in `lo` and `hi` is `c`.
[[gnu::target("avx2"), gnu::always_inline]] inline std::uint64_t octets_equal(const __m256i& lo,
                                                                              const __m256i& hi,
                                                                              char c) {
  const __m256i of = _mm256_set1_epi8(c);
  const auto low = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, of)));
  const auto high = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, of)));
  return low | std::uint64_t{high} << 32;
}

// Whole blocks while every line ending in them is plain; returns the start of the first line
// not known to be plain (a line start: everything before it is plain lines). Free of branches
// but the loop's own: most blocks of a body hold one line end, at no predictable place.
[[gnu::target("avx2,bmi")]] std::size_t plain_blocks_end(std::string_view text,
                                                         bool long_lines_ok) {
  const std::size_t longest = long_lines_ok ? text.size() : kLongestTextLine;
  std::size_t line_start = 0;
  std::uint64_t cr_before = 0;  // 1: the octet before the block is CR, so its first must be LF
  std::uint64_t lf_before = 1;  // 1: the block's first octet starts a line
  for (std::size_t base = 0; base + kBlock <= text.size(); base += kBlock) {
    const auto* at = reinterpret_cast<const __m256i*>(text.data() + base);
    const __m256i lo = _mm256_loadu_si256(at);
    const __m256i hi = _mm256_loadu_si256(at + 1);
    const std::uint64_t lf = octets_equal(lo, hi, '\n');
    const std::uint64_t cr = octets_equal(lo, hi, '\r');
    const std::uint64_t dot = octets_equal(lo, hi, '.');
    // Each LF right after a CR and each CR right before an LF (a CR in the block's last octet
    // is checked against the next block's first); no line starts with a dot; only the first
    // line ending in the block can be too long, the others began in it.
    const std::size_t first_lf = base + _tzcnt_u64(lf);
    const bool odd = (lf != ((cr << 1) | cr_before)) | ((dot & ((lf << 1) | lf_before)) != 0) |
                     ((lf != 0) & (first_lf - 1 - line_start > longest));
    if (odd) break;
    line_start =
        lf != 0 ? base + kBlock - static_cast<std::size_t>(__builtin_clzll(lf)) : line_start;
    cr_before = cr >> 63;
    lf_before = lf >> 63;
  }
  return line_start;
}

bool can_scan_blocks() {
  static const bool can = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi");
  return can;
}

#endif

}  // namespace

std::size_t plain_lines_length(std::string_view text, bool long_lines_ok) {
  std::size_t lines_end = 0;
#if defined(__x86_64__)
  if (can_scan_blocks()) lines_end = plain_blocks_end(text, long_lines_ok);
#endif
  return plain_lines_end_by_line(text, lines_end, long_lines_ok);
}

std::size_t plain_lines_length_by_line(std::string_view text, bool long_lines_ok) {
  return plain_lines_end_by_line(text, 0, long_lines_ok);
}

}  // namespace mailtap::smtp
