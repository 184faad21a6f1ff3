// Text from the network made safe to print on a terminal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/terminal_escape.hpp"

namespace mailtap::tools {

// escape_line (wire text, every non-ASCII byte escaped) and escape_text (mailtap's own UTF-8
// text), shared with the proxy's stderr lines.
using mailtap::escape_line;
using mailtap::escape_text;

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
