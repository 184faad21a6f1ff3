// Renders events as the telnet tutorials print a dialogue: "C:" for the client, "S:" for the
// server, "M:" for mailtap's own words (its replies, its pre-TLS commands), "~" for notes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/session/terminal_style.hpp"
#include "proxy/smtp/event.hpp"

namespace mailtap {

struct TranscriptView {
  Style style = Style::plain();
  // --explain: lines printed under each reply (code, enhanced status, reply text); none when
  // unset. The session layer only prints them: the table of meanings lives with the tools.
  std::function<std::vector<std::string>(int, std::string_view, std::string_view)> explain;
};

// Set once at start-up, before any session runs.
void set_transcript_view(TranscriptView view);

// One or more lines, each "[<session>] <prefix> <text>\n"; control bytes are escaped.
std::string transcript_lines(std::uint64_t session, const smtp::Event& e);

}  // namespace mailtap
