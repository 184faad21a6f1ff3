// Text from the network made safe to print on a terminal.
#pragma once

#include <cstddef>
#include <functional>
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

// `bytes` that arrive in pieces split at CRLF as crlf_lines splits them whole, each line handed
// on as soon as its CRLF has come: whole when it is at most `longest_held` octets long, else in
// pieces of about that size (never cut between a CR and the LF that may follow it). So a line
// can be written as it arrives, however long, with the CRLFs dropped.
class CrlfLinePieces {
 public:
  static constexpr std::size_t kLongestHeld = 64 * 1024;
  // A line or a piece of one: `first`, the piece its start is in; `last`, the one its end is in.
  // False: the output failed, stop.
  using Sink = std::function<bool(std::string_view text, bool first, bool last)>;

  explicit CrlfLinePieces(Sink sink, std::size_t longest_held = kLongestHeld)
      : sink_(std::move(sink)), longest_held_(longest_held) {}
  bool append(std::string_view piece);
  bool finish();  // the line after the last CRLF, if any
  // Whether a line has begun that no CRLF has ended yet (held, or some of it handed on).
  bool line_open() const { return in_line_ || !held_.empty(); }

 private:
  Sink sink_;
  std::size_t longest_held_;
  std::string held_;      // of the line not yet ended
  bool in_line_ = false;  // a piece of the line not yet ended went out
};

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
