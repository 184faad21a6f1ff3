// Renders events as the telnet tutorials print a dialogue: "C:" for the client, "S:" for the
// server, "M:" for mailtap's own words (its replies, its pre-TLS commands), "~" for notes.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/smtp/event.hpp"

namespace mailtap {

// One or more lines, each "[<session>] <prefix> <text>\n"; control bytes are escaped.
std::string transcript_lines(std::uint64_t session, const smtp::Event& e);

}  // namespace mailtap
