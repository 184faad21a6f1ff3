// Bytes as hexadecimal digits: digests and fingerprints ("9f86d0...", "9F:86:D0:..."), and the
// \xHH escape every printer of untrusted bytes uses for what it will not show as is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailtap {

inline constexpr char kHexDigits[] = "0123456789abcdef";

// Two lower-case digits for `byte`, appended to any container of char with push_back (a
// std::string, or the core's Secret, which wipes what it held).
template <class Out>
void append_hex(Out& out, unsigned char byte) {
  out.push_back(kHexDigits[byte >> 4]);
  out.push_back(kHexDigits[byte & 15]);
}

// "9f86d0..." (lower case, two digits a byte).
std::string to_hex(const unsigned char* bytes, std::size_t size);
std::string to_hex(std::string_view bytes);
// "9F:86:D0:..." (upper case, colon between bytes), as certificate fingerprints are shown.
std::string to_hex_colons(const unsigned char* bytes, std::size_t size);

// The value of hexadecimal digit `c` (either case), or -1 if it is none.
int hex_digit_value(char c);

// The octet the two hexadecimal digits `s` starts with stand for ("3D..." -> '='), or -1 when
// it does not start with two: what follows the '%' of a URL's or RFC 2231's escape, or the '='
// of quoted-printable's and RFC 2047's Q.
int hex_pair_value(std::string_view s);

// `in` with each `escape` followed by two hexadecimal digits as the octet they stand for (an
// escape not followed by two stays as it is), and each `as_space` (when not '\0') as a space,
// appended to `out`: a URL's %XX and '+', RFC 2231's %XX, RFC 2047's Q (=XX and '_').
void append_hex_unescaped(std::string_view in, char escape, std::string& out, char as_space = '\0');

// "\x1b": a backslash, an x and two lower-case digits.
void append_hex_escape(std::string& out, unsigned char byte);

}  // namespace mailtap
