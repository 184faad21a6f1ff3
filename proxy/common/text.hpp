// Small facts about text from the network: where a line's content ends, whether bytes are
// UTF-8. Shared so every room answers them the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailtap {

// `line` without its trailing CR and LF bytes (any number, in any order).
std::string_view strip_crlf(std::string_view line);

// `s` without the spaces and tabs it starts with, nor the spaces, tabs and CRs it ends with (what
// is left of a CRLF line end once the LF is gone; a CR inside a line's text stays). MIME reads
// header fields and boundary delimiter lines so (RFC 2046 section 5.1.1: blanks may follow the
// delimiter, and the line's end).
std::string_view trim_blanks(std::string_view s);

// Well-formed UTF-8 (RFC 3629): no overlong forms, no UTF-16 surrogates, nothing above
// U+10FFFF, no truncated sequence.
bool is_valid_utf8(std::string_view s);

// An ASCII control octet (below 0x20, or DEL) anywhere in `s`.
bool has_control(std::string_view s);

// `s` as one word for a POSIX shell, to paste into a command mailtap suggests: in single
// quotes, each ' written as '\'' (the only character single quotes cannot hold).
std::string shell_quoted(std::string_view s);

// The length of the well-formed UTF-8 character `s` starts with (1 to 4), or 0 when `s` is
// empty or starts with a byte that does not begin one: the step is_valid_utf8 takes, for a
// caller that keeps the valid characters of a string and treats the other bytes its own way.
std::size_t utf8_char_length(std::string_view s);

// The UTF-8 bytes of code point `cp` (at most U+10FFFF; surrogates are the caller's to
// refuse), each handed to `put(char)`: a callable, so a Secret can receive them as well as a
// string.
template <class Put>
void put_utf8(std::uint32_t cp, Put& put) {
  if (cp < 0x80) {
    put(static_cast<char>(cp));
  } else if (cp < 0x800) {
    put(static_cast<char>(0xc0 | cp >> 6));
    put(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    put(static_cast<char>(0xe0 | cp >> 12));
    put(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
    put(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    put(static_cast<char>(0xf0 | cp >> 18));
    put(static_cast<char>(0x80 | (cp >> 12 & 0x3f)));
    put(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
    put(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

}  // namespace mailtap
