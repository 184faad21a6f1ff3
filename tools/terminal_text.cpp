#include "tools/terminal_text.hpp"

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"

namespace mailtap::tools {

namespace {

// The well-formed UTF-8 character of `n` bytes `text` starts with is a C1 control
// (U+0080..U+009F: 0xC2 0x80..0x9F).
bool is_c1_control(std::string_view text, std::size_t n) {
  return n == 2 && static_cast<unsigned char>(text[0]) == 0xC2 &&
         static_cast<unsigned char>(text[1]) < 0xA0;
}

}  // namespace

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
    if (n > 1 && !is_c1_control(text, n)) {
      out.append(text.substr(0, n));
    } else {
      n = n == 0 ? 1 : n;
      out += escape_line(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

std::vector<std::string_view> crlf_lines(std::string_view bytes) {
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const auto eol = bytes.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      lines.push_back(bytes.substr(pos));
      break;
    }
    lines.push_back(bytes.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return lines;
}

bool terminal_safe(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto c = static_cast<unsigned char>(bytes.front());
    const std::size_t n = utf8_char_length(bytes);
    if (n == 0 || is_c1_control(bytes, n)) return false;
    if (n == 1 && (c == 0x7f || (c < 0x20 && c != '\t' && c != '\r' && c != '\n'))) return false;
    // A CR of its own sends the cursor back to the start of the line, so what follows
    // overwrites what the line showed ("harmless text\rX-Evil: ..."). A bare LF only starts
    // a new line: nothing is hidden, so it may stay.
    if (c == '\r' && bytes.substr(1, 1) != "\n") return false;
    bytes.remove_prefix(n);
  }
  return true;
}

std::string escape_lines(std::string_view bytes) {
  std::string out;
  for (const std::string_view line : crlf_lines(bytes)) {
    out += escape_line(line);
    out.push_back('\n');
  }
  return out;
}

}  // namespace mailtap::tools
