// Renders events as the telnet tutorials print a dialogue: "C:" for the client, "S:" for the
// server, "M:" for mailtap's own words (its replies, its pre-TLS commands), "~" for notes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/terminal_style.hpp"
#include "proxy/smtp/event.hpp"

namespace mailtap {

// --explain: lines printed under a reply (code, enhanced status, reply text, the verb of the
// command it answers). The session layer only prints them: the table of meanings lives with
// the tools.
using ReplyExplainer = std::function<std::vector<std::string>(int, std::string_view,
                                                              std::string_view, std::string_view)>;

struct TranscriptView {
  Style style = Style::plain();
  ReplyExplainer explain;  // none when unset
};

// Set once at start-up, before any session runs.
void set_transcript_view(TranscriptView view);

// One or more lines, each "[<session>] <prefix> <text>\n"; control bytes are escaped.
std::string transcript_lines(std::uint64_t session, const smtp::Event& e);

}  // namespace mailtap
