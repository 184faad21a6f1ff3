#include "tools/chunk_command_scan.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "proxy/smtp/command.hpp"

namespace mailtap::tools {

namespace {
struct Shape {
  std::string_view start;  // how the line begins
  std::string_view name;   // as the audit names it
  bool bare = false;       // a verb without parameters (DATA, RSET): the word alone on its line
};
constexpr std::array kShapes{
    Shape{"MAIL FROM:", "MAIL FROM"}, Shape{"RCPT TO:", "RCPT TO"}, Shape{"BDAT ", "BDAT"},
    Shape{"DATA", "DATA", true},      Shape{"RSET", "RSET", true},
};
constexpr std::size_t kLongest = [] {
  std::size_t longest = 0;
  for (const Shape& s : kShapes) longest = std::max(longest, s.start.size());
  return longest;
}();
}  // namespace

// After a bare verb only SP or HT may come, then the line's end (CRLF or LF) or the chunk's:
// a server reads "RSET the counter" as a bad command at most, and prose ("Data protection
// notice") would be listed otherwise. `cr_` is a CR seen last, which only the LF may follow.
bool ChunkCommandScan::still_bare(std::string_view octets) {
  for (const char c : octets) {
    if (c == '\n') return true;  // the line's last octet
    if (cr_ || (c != ' ' && c != '\t' && c != '\r')) return false;
    cr_ = c == '\r';
  }
  return true;
}

void ChunkCommandScan::judge_line_start() {
  head_done_ = true;
  for (const Shape& s : kShapes) {
    if (head_.size() < s.start.size() || !smtp::iequals(head_.substr(0, s.start.size()), s.start))
      continue;
    if (!s.bare) {
      found_.insert(std::string(s.name));
    } else if (still_bare(std::string_view(head_).substr(s.start.size()))) {
      bare_verb_ = s.name;  // listed once the rest of its line is known
    }
  }
}

// One line's octets from this piece, its LF included when `ends_line`.
void ChunkCommandScan::read_line_part(std::string_view part, bool ends_line) {
  if (!head_done_) {
    const std::size_t taken = std::min(part.size(), kLongest - head_.size());
    head_.append(part.substr(0, taken));
    part.remove_prefix(taken);
    if (head_.size() == kLongest || ends_line) judge_line_start();
  }
  if (!bare_verb_.empty() && !still_bare(part)) bare_verb_ = {};
  if (ends_line) {
    if (!bare_verb_.empty()) found_.insert(std::string(bare_verb_));
    start_line();
  }
}

void ChunkCommandScan::start_line() {
  head_.clear();
  head_done_ = false;
  bare_verb_ = {};
  cr_ = false;
}

void ChunkCommandScan::add(std::string_view piece) {
  while (!piece.empty()) {
    const auto* lf = static_cast<const char*>(std::memchr(piece.data(), '\n', piece.size()));
    const std::size_t length =
        lf != nullptr ? static_cast<std::size_t>(lf - piece.data()) + 1 : piece.size();
    read_line_part(piece.substr(0, length), lf != nullptr);
    piece.remove_prefix(length);
  }
}

std::set<std::string> ChunkCommandScan::take() {
  // The chunk ends the line: a bare verb followed by nothing (or SP/HT) counts.
  if (!head_done_ && !head_.empty()) judge_line_start();
  if (!bare_verb_.empty() && !cr_) found_.insert(std::string(bare_verb_));
  start_line();
  return std::exchange(found_, {});
}

}  // namespace mailtap::tools
