// A message body as an mboxrd entry's text, a piece at a time: LF line ends, and every line
// matching ^>*From  gets one more '>', so readers can undo the quoting exactly. Streamed, so
// `mailtap export --format mbox` holds a piece of a message however large it is, and a line
// however long: only a line's first octets decide its quoting.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace mailtap::tools {

class MboxrdQuoter {
 public:
  using Emit = std::function<void(std::string_view)>;
  explicit MboxrdQuoter(Emit emit) : emit_(std::move(emit)) {}

  // The body's next octets; what can be written of them is handed to `emit`.
  void append(std::string_view piece);
  // The body ended: its last line (if not ended by LF) is ended.
  void finish();

 private:
  void decide();
  void end_undecided_line();

  Emit emit_;
  bool line_start_ = true;  // `start_` holds the line's first octets, its quoting undecided
  std::string start_;       // '>'s and a beginning of "From ": at most a few octets, and a CR
  bool held_cr_ = false;    // a CR written only if the line goes on (one before LF is dropped)
};

// The whole of `body` quoted so (each line ended by LF).
std::string mboxrd_quote(std::string_view body);

}  // namespace mailtap::tools
