// Text from the network made safe to print on a terminal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailtap::tools {

// CRLF line ends are the caller's business; any other control byte (a bare CR or LF, escape
// sequences) and non-ASCII bytes are shown as \r, \n or \xHH, so a server cannot move the
// cursor or recolour the user's terminal.
std::string escape_line(std::string_view text);

// mailtap's own text (a note, a line it wrote), which is UTF-8 but may quote what a client or
// server sent (user="..."): well-formed UTF-8 characters are kept, so "§" prints as "§";
// control characters (C0, DEL and the C1 range U+0080..U+009F, which starts sequences on
// some terminals) and bytes that are not UTF-8 are escaped as escape_line escapes them.
std::string escape_text(std::string_view text);

// `bytes` split at CRLF only, so a bare LF or CR stays inside its line; the CRLFs are dropped.
std::vector<std::string_view> crlf_lines(std::string_view bytes);

// Whether `bytes` can reach a terminal as they are: well-formed UTF-8 whose only control
// characters are TAB, LF and the CR of a CRLF (no escape sequence, no C1 control, no bare CR,
// which would let the rest of a line overwrite its start on screen).
bool terminal_safe(std::string_view bytes);

// Recorded bytes as a transcript shows wire text: each CRLF line escaped by escape_line and
// ended with a newline.
std::string escape_lines(std::string_view bytes);

}  // namespace mailtap::tools
