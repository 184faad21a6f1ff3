// Renders events as the telnet tutorials print a dialogue: "C:" for the client, "S:" for the
// server, "M:" for mailtap's own words (its replies, its pre-TLS commands), "~" for notes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/terminal_style.hpp"
#include "proxy/smtp/body_text_join.hpp"
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

// One session's transcript as it runs: each event as transcript_lines prints it, but the
// client's message text (DATA's, a BDAT chunk's payload) line by line as mailtap show prints the
// same octets (smtp::BodyTextJoin), not a line per read of the client: a line is printed once
// its CRLF has come, mailtap's notes on the text that come while it is open after it, and what
// is open when anything else comes (a reply, a command, the session's end) as far as it came.
// Only whole lines are handed out, so sessions never interleave within one; a line longer than
// CrlfLinePieces::kLongestHeld is printed as pieces of about that size, each a line, so what
// is held stays bounded.
class LiveTranscript {
 public:
  explicit LiveTranscript(std::uint64_t session);
  LiveTranscript(const LiveTranscript&) = delete;
  LiveTranscript& operator=(const LiveTranscript&) = delete;
  ~LiveTranscript();

  // The lines to print now that event `e` came (appended to `out`).
  void event(const smtp::Event& e, std::string& out);
  // The session ended: the line still open, and the notes held after it.
  void finish(std::string& out);

 private:
  class Writer;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<smtp::BodyTextJoin> join_;
};

}  // namespace mailtap
