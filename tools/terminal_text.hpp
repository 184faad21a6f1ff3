// Text from the network made safe to print on a terminal.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/crlf_lines.hpp"
#include "proxy/common/terminal_escape.hpp"

namespace mailtap::tools {

// escape_line (wire text, every non-ASCII byte escaped) and escape_text (mailtap's own UTF-8
// text), shared with the proxy's stderr lines.
using mailtap::escape_line;
using mailtap::escape_text;
// Lines split at CRLF, whole or as they arrive (shared with the proxy's live transcript).
using mailtap::crlf_lines;
using mailtap::CrlfLinePieces;

// Whether `bytes` can reach a terminal as they are: well-formed UTF-8 whose only control
// characters are TAB, LF and the CR of a CRLF (no escape sequence, no C1 control, no bare CR,
// which would let the rest of a line overwrite its start on screen).
bool terminal_safe(std::string_view bytes);

// Recorded bytes as a transcript shows wire text: each CRLF line escaped by escape_line and
// ended with a newline.
std::string escape_lines(std::string_view bytes);

// Recorded bytes on their way to a terminal, judged a line (to its LF) at a time as they arrive:
// a line terminal_safe passes goes out as it is, any other as escape_line shows it, ended with
// a newline. So what a client or server chose cannot drive the terminal, and the whole never
// has to be held, however large. A line longer than kLongestHeld octets is judged a piece at a
// time.
class TerminalLines {
 public:
  static constexpr std::size_t kLongestHeld = 64 * 1024;
  using Sink = std::function<bool(std::string_view)>;  // false: the output failed

  explicit TerminalLines(Sink sink) : sink_(std::move(sink)) {}
  bool append(std::string_view piece);
  bool finish();                             // what is left after the last CRLF
  bool escaped() const { return escaped_; }  // some text had to be escaped

 private:
  bool emit(std::string_view text, bool ended);

  Sink sink_;
  std::string held_;
  bool escaped_ = false;
};

}  // namespace mailtap::tools
