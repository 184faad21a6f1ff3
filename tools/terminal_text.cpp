#include "tools/terminal_text.hpp"

#include "proxy/common/hex.hpp"

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

}  // namespace mailtap::tools
