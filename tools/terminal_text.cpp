#include "tools/terminal_text.hpp"

#include "proxy/common/text.hpp"

namespace mailtap::tools {

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

// `text` is a line with its LF or CRLF (`ended`), or a piece of one.
bool TerminalLines::emit(std::string_view text, bool ended) {
  if (terminal_safe(text)) return sink_(text);
  escaped_ = true;
  if (!ended) return sink_(escape_line(text));
  text.remove_suffix(text.ends_with("\r\n") ? 2 : 1);
  return sink_(escape_line(text) + "\n");
}

bool TerminalLines::append(std::string_view piece) {
  held_.append(piece);
  std::size_t start = 0;
  bool ok = true;
  for (std::size_t eol; ok && (eol = held_.find('\n', start)) != std::string::npos; start = eol + 1)
    ok = emit(std::string_view(held_).substr(start, eol + 1 - start), true);
  held_.erase(0, start);
  if (ok && held_.size() > kLongestHeld) {
    // Up to the last character's start, and never after a CR that may begin a CRLF: what is
    // cut off waits for the next piece, so a character is judged whole.
    std::size_t cut = held_.size() - 1;
    // A character is at most 4 octets: further back than 3 continuation octets none begins.
    for (int back = 0;
         back < 3 && cut > 0 && (static_cast<unsigned char>(held_[cut]) & 0xC0) == 0x80; ++back)
      --cut;
    if (cut > 0 && held_[cut - 1] == '\r') --cut;
    ok = emit(std::string_view(held_).substr(0, cut), false);
    held_.erase(0, cut);
  }
  return ok;
}

bool TerminalLines::finish() {
  if (held_.empty()) return true;
  const bool was_escaped = escaped_;
  escaped_ = false;
  bool ok = emit(held_, false);
  if (ok && escaped_) ok = sink_("\n");  // escape_lines ends every line so
  escaped_ = escaped_ || was_escaped;
  held_.clear();
  return ok;
}

}  // namespace mailtap::tools
