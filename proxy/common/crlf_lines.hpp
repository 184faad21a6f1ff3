// Bytes from the network split into lines at CRLF only (a bare LF or CR stays inside its line),
// whole or as they arrive: the transcripts (mailtap show, proxy --transcript) print a message's
// text so, however its reads cut it.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap {

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

}  // namespace mailtap
