#include "tools/terminal_text.hpp"

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"

namespace mailtap::tools {

std::string escape_line(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
      out.push_back(static_cast<char>(c));
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      append_hex_escape(out, c);
    }
  }
  return out;
}

std::string escape_text(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    std::size_t n = utf8_char_length(text);
    // A two-byte character below U+00A0 is a C1 control (0xC2 0x80..0x9F).
    const bool c1 = n == 2 && static_cast<unsigned char>(text[0]) == 0xC2 &&
                    static_cast<unsigned char>(text[1]) < 0xA0;
    if (n > 1 && !c1) {
      out.append(text.substr(0, n));
    } else {
      n = n == 0 ? 1 : n;
      out += escape_line(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

}  // namespace mailtap::tools
