// Where a message body leaves mailtap nothing to decide. Most of a body is whole CRLF lines of
// ordinary text: those go to the upstream and the record as they are, and only the rest takes
// the line-by-line path through the normaliser and the dot handling (SMTP smuggling lives
// there). Scanning a body one line at a time cost two memchr calls a line, a tenth of the relay
// thread's time on large messages (docs/benchmarks.md); this scans 64 octets at a time.
#pragma once

#include <cstddef>
#include <string_view>

namespace mailtap::smtp {

// RFC 5321 §4.5.3.1.6: the longest text line, its CRLF excluded.
inline constexpr std::size_t kLongestTextLine = 998;

// `text` starts at the start of a body line. Returns the length of its longest prefix made of
// whole lines that each end in CRLF, hold no other CR or LF, do not start with a dot, and are no
// longer than kLongestTextLine (unless `long_lines_ok`). 0 if the first line is not one.
std::size_t plain_lines_length(std::string_view text, bool long_lines_ok);

// The same, one line at a time with memchr: what the block scan must agree with, octet for
// octet (tests and the fuzz target hold them to it), and what it falls back to near a line
// that is not plain and at the end of the text.
std::size_t plain_lines_length_by_line(std::string_view text, bool long_lines_ok);

}  // namespace mailtap::smtp
