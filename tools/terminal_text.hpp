// Text from the network made safe to print on a terminal.
#pragma once

#include <string>
#include <string_view>

namespace mailtap::tools {

// CRLF line ends are the caller's business; any other control byte (a bare CR or LF, escape
// sequences) and non-ASCII bytes are shown as \r, \n or \xHH, so a server cannot move the
// cursor or recolour the user's terminal.
std::string escape_line(std::string_view text);

}  // namespace mailtap::tools
