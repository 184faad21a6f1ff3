// Text from outside made safe to print on a terminal: what a server or client sent, quoted in
// mailtap's stderr lines, its replies and the tools' output, cannot move the cursor, retitle
// the window or recolour the screen.
#pragma once

#include <string>
#include <string_view>

namespace mailtap {

// CRLF line ends are the caller's business; any other control byte (a bare CR or LF, escape
// sequences) and non-ASCII bytes are shown as \r, \n or \xHH, so a server cannot move the
// cursor or recolour the user's terminal. Printable ASCII out: fit for an SMTP reply's text.
std::string escape_line(std::string_view text);

// mailtap's own text (a note, a line it wrote), which is UTF-8 but may quote what a client or
// server sent (user="..."): well-formed UTF-8 characters are kept, so "§" prints as "§";
// control characters (C0, DEL and the C1 range U+0080..U+009F, which starts sequences on
// some terminals) and bytes that are not UTF-8 are escaped as escape_line escapes them.
std::string escape_text(std::string_view text);

// A value mailtap's own text quotes from the wire or from its options (a user name in a note
// or a reply): printable ASCII kept, `"` and `\` after a backslash, every other byte as \xHH.
// Lossless and unambiguous ("j\xc3\xb6rg" is jörg, "j\\xc3" is what it says), and printable
// ASCII, so it fits an SMTP reply's text as well as a note. Appends to `out`.
void append_escaped_value(std::string& out, std::string_view value);
std::string escaped_value(std::string_view value);

// `character`, the bytes of one well-formed UTF-8 character, is a C1 control (U+0080..U+009F:
// 0xC2 0x80..0x9F).
bool is_c1_control(std::string_view character);

}  // namespace mailtap
