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
// "BDAT ", or "DATA" or "RSET" alone, SP or HT after it allowed; case-insensitive, from the
// line's first octet, as Exim reads a verb).
class ChunkCommandScan {
 public:
  void add(std::string_view piece);
  // The command names found ("MAIL FROM", "RCPT TO", ...), and a new chunk begins.
  std::set<std::string> take();
  bool any() const { return !found_.empty(); }

 private:
  void read_line_part(std::string_view part, bool ends_line);
  void judge_line_start();
  bool still_bare(std::string_view octets);
  void start_line();
  std::string head_;  // the current line's first octets, up to the longest verb's length
  bool head_done_ = false;
  std::string_view bare_verb_;  // the line began DATA or RSET with only SP/HT after it so far
  bool cr_ = false;             // and then a CR, its last octet so far
  std::set<std::string> found_;
};

}  // namespace mailtap::tools
