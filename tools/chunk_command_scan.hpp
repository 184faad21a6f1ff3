// Command-shaped lines in a BDAT chunk, for `mailtap audit`: a server at its size limit may stop
// reading a chunk there and take the rest as commands (Exim 4.96 answers 552, then runs a
// hidden RSET/MAIL/RCPT/BDAT in the chunk's tail: servers-F1). mailtap refuses such a chunk
// since it knows the server's SIZE; a recording made before holds the chunk as message text, and
// a chunk the server refused with a 5yz that holds such lines is one to look at.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace mailtap::tools {

// The lines of a chunk handed over in pieces (its events), read as one stream: which begin with
// a command that opens, fills, ends or resets a mail transaction ("MAIL FROM:", "RCPT TO:",
// "BDAT ", "DATA", "RSET"; case-insensitive, from the line's first octet, as Exim reads a verb).
class ChunkCommandScan {
 public:
  void add(std::string_view piece);
  // The command names found ("MAIL FROM", "RCPT TO", ...), and a new chunk begins.
  std::set<std::string> take();
  bool any() const { return !found_.empty(); }

 private:
  void judge_line_start();
  std::string head_;  // the current line's first octets, up to the longest verb's length
  bool at_line_start_ = true;
  bool head_done_ = false;
  std::set<std::string> found_;
};

}  // namespace mailtap::tools
