// Small facts about text from the network: where a line's content ends, whether bytes are
// UTF-8. Shared so every room answers them the same way.
#pragma once

#include <string_view>

namespace mailtap {

// `line` without its trailing CR and LF bytes (any number, in any order).
std::string_view strip_crlf(std::string_view line);

// Well-formed UTF-8 (RFC 3629): no overlong forms, no UTF-16 surrogates, nothing above
// U+10FFFF, no truncated sequence.
bool is_valid_utf8(std::string_view s);

}  // namespace mailtap
