// The body's block scan against its line-by-line reference (proxy/smtp/plain_lines.hpp): both
// must take the same plain lines from any bytes, and what they take must be whole CRLF lines
// with no other CR or LF, none starting with a dot.
//
// Input: byte 0's low bit is long_lines_ok; the rest is the body text, from a line start.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proxy/smtp/plain_lines.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool long_lines_ok = (data[0] & 1) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t run = mailtap::smtp::plain_lines_length(text, long_lines_ok);
  if (run != mailtap::smtp::plain_lines_length_by_line(text, long_lines_ok)) std::abort();
  if (run > text.size()) std::abort();
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < run; ++i) {
    if (i == line_start && text[i] == '.') std::abort();
    if (text[i] == '\r' && (i + 1 == run || text[i + 1] != '\n')) std::abort();
    if (text[i] == '\n') {
      if (i == 0 || text[i - 1] != '\r') std::abort();
      if (!long_lines_ok && i - 1 - line_start > mailtap::smtp::kLongestTextLine) std::abort();
      line_start = i + 1;
    }
  }
  if (line_start != run) std::abort();  // whole lines only
  return 0;
}
