// The line editing a terminal does in canonical mode, done by the secret prompt itself: that
// mode keeps only the first 4095 characters of a line and drops the rest without a word, and a
// pasted OAuth access token can be longer, so the prompt reads the terminal key by key.
#pragma once

#include <termios.h>

#include "proxy/smtp/secret.hpp"

namespace mailtap::secrets {

// The terminal's erase, kill (Ctrl-U), word erase (Ctrl-W), literal next (Ctrl-V), reprint and
// end-of-file (Ctrl-D) keys, with the settings that enable them, as the Linux line discipline
// applies them. Default: no key at all.
struct EditingKeys {
  cc_t erase = _POSIX_VDISABLE;
  cc_t kill = _POSIX_VDISABLE;
  cc_t word_erase = _POSIX_VDISABLE;
  cc_t literal_next = _POSIX_VDISABLE;
  cc_t reprint = _POSIX_VDISABLE;
  cc_t end_of_file = _POSIX_VDISABLE;
  cc_t end_of_line = _POSIX_VDISABLE;
  cc_t end_of_line2 = _POSIX_VDISABLE;
  bool utf8 = false;  // an erase removes a whole UTF-8 character

  static EditingKeys of(const termios& t);
};

enum class LineEnd { more, complete, input_ended, too_long };

// Applies each key typed to `line` as canonical mode would have: the line ends at NL, CR or
// the end-of-line keys; end of file on an empty line is the end of input (inside a line it is
// nothing); the line is as long as the secret's capacity allows.
class LineEditor {
 public:
  LineEditor(EditingKeys keys, smtp::Secret& line) : keys_(keys), line_(line) {}

  LineEnd take(char c);

 private:
  LineEnd add(char c);
  void erase_character();
  void erase_word();

  EditingKeys keys_;
  smtp::Secret& line_;
  bool literal_next_ = false;
};

}  // namespace mailtap::secrets
