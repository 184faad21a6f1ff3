#include "proxy/common/terminal_escape.hpp"

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"

namespace mailtap {

bool is_c1_control(std::string_view character) {
  return character.size() == 2 && static_cast<unsigned char>(character[0]) == 0xC2 &&
         static_cast<unsigned char>(character[1]) < 0xA0;
}

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

void append_escaped_value(std::string& out, std::string_view value) {
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += ch;
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      append_hex_escape(out, c);
    }
  }
}

std::string escaped_value(std::string_view value) {
  std::string out;
  append_escaped_value(out, value);
  return out;
}

std::string escape_text(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    std::size_t n = utf8_char_length(text);
    if (n > 1 && !is_c1_control(text.substr(0, n))) {
      out.append(text.substr(0, n));
    } else {
      n = n == 0 ? 1 : n;
      out += escape_line(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

}  // namespace mailtap
