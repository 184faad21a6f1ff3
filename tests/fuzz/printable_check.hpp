// The fuzz targets' check of text bound for a terminal, written apart from the code under test:
// valid UTF-8 with no control character but tab (and line feed where `lines`), no DEL and no C1
// control (U+0080..U+009F, which starts escape sequences on some terminals).
#pragma once

#include <cstdlib>
#include <string_view>

#include "proxy/common/text.hpp"

namespace mailtap::fuzz {

inline void check_terminal_text(std::string_view s, bool lines) {
  if (!is_valid_utf8(s)) std::abort();
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 && c != '\t' && !(lines && c == '\n')) std::abort();
    if (c == 0x7f) std::abort();
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xa0) std::abort();
  }
}

}  // namespace mailtap::fuzz
