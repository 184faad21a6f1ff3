// A Backspace that went through as an octet: a terminal in raw mode or telnet's `mode
// character` sends the key as DEL (0x7f) or BS (0x08, Windows telnet, PuTTY) and edits nothing,
// so the line the screen showed corrected is not the line sent. Named in mailtap's notes when
// the server refuses such a line (typist finding 10).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mailtap::smtp {

struct BackspaceOctet {
  char octet = 0;      // 0x7f or 0x08
  std::size_t at = 0;  // its octet in the text, from 1
};

// The first DEL or BS in `text`, if any.
std::optional<BackspaceOctet> first_backspace(std::string_view text);

// "a Backspace octet (0x7f, DEL)".
std::string backspace_name(char octet);

// Why the screen and the line differ, for a note: "a terminal in raw mode or telnet's mode
// character sends Backspace as an octet, not as an edit".
std::string_view backspace_cause();

}  // namespace mailtap::smtp
