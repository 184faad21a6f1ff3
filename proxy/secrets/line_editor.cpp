#include "proxy/secrets/line_editor.hpp"

namespace mailtap::secrets {
namespace {

bool is(cc_t key, char c) {
  return key != _POSIX_VDISABLE && key == static_cast<unsigned char>(c);
}

bool utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// What the line discipline's word erase keeps together (isalnum in the C locale, or '_').
bool word_character(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || c == '_';
}

}  // namespace

EditingKeys EditingKeys::of(const termios& t) {
  EditingKeys k;
  k.erase = t.c_cc[VERASE];
  k.kill = t.c_cc[VKILL];
  k.end_of_file = t.c_cc[VEOF];
  k.end_of_line = t.c_cc[VEOL];
  // Linux's line discipline honours these only with IEXTEN (as it does EOL2).
  if ((t.c_lflag & IEXTEN) != 0) {
    k.end_of_line2 = t.c_cc[VEOL2];
    k.word_erase = t.c_cc[VWERASE];
    k.literal_next = t.c_cc[VLNEXT];
    k.reprint = t.c_cc[VREPRINT];
  }
  k.utf8 = (t.c_iflag & IUTF8) != 0;
  return k;
}

LineEnd LineEditor::take(char c) {
  if (literal_next_) {
    literal_next_ = false;
    return add(c);
  }
  // CR too: a terminal without ICRNL sends it for Enter, and a secret holds no CR.
  if (c == '\n' || c == '\r' || is(keys_.end_of_line, c) || is(keys_.end_of_line2, c))
    return LineEnd::complete;
  if (is(keys_.end_of_file, c)) return line_.empty() ? LineEnd::input_ended : LineEnd::more;
  if (is(keys_.erase, c)) {
    erase_character();
  } else if (is(keys_.kill, c)) {
    line_.clear();
  } else if (is(keys_.word_erase, c)) {
    erase_word();
  } else if (is(keys_.literal_next, c)) {
    literal_next_ = true;
  } else if (!is(keys_.reprint, c)) {
    return add(c);
  }
  return LineEnd::more;
}

LineEnd LineEditor::add(char c) {
  return line_.push_back(c) ? LineEnd::more : LineEnd::too_long;
}

void LineEditor::erase_character() {
  std::size_t n = line_.size();
  if (n == 0) return;
  --n;
  if (keys_.utf8) {
    while (n > 0 && utf8_continuation(line_.view()[n])) --n;
  }
  line_.truncate(n);
}

// The separators before the cursor, then the word before them.
void LineEditor::erase_word() {
  std::size_t n = line_.size();
  bool in_word = false;
  while (n > 0) {
    const bool word = word_character(line_.view()[n - 1]);
    if (!word && in_word) break;
    in_word = in_word || word;
    --n;
  }
  line_.truncate(n);
}

}  // namespace mailtap::secrets
