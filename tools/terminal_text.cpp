#include "tools/terminal_text.hpp"

#include "proxy/common/text.hpp"

namespace mailtap::tools {

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
    if (n == 0 || is_c1_control(bytes.substr(0, n))) return false;
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
