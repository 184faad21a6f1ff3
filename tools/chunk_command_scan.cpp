#include "tools/chunk_command_scan.hpp"

#include <array>
#include <utility>

#include "proxy/smtp/command.hpp"

namespace mailtap::tools {

namespace {
struct Shape {
  std::string_view start;  // how the line begins
  std::string_view name;   // as the audit names it
  bool whole = false;      // the line is this word alone (DATA, RSET)
};
constexpr std::array kShapes{
    Shape{"MAIL FROM:", "MAIL FROM"}, Shape{"RCPT TO:", "RCPT TO"}, Shape{"BDAT ", "BDAT"},
    Shape{"DATA", "DATA", true},      Shape{"RSET", "RSET", true},
};
constexpr std::size_t kLongest = 11;  // "MAIL FROM:" and the line end after a whole word
}  // namespace

void ChunkCommandScan::judge_line_start() {
  head_done_ = true;
  for (const Shape& s : kShapes) {
    if (head_.size() < s.start.size() || !smtp::iequals(head_.substr(0, s.start.size()), s.start))
      continue;
    if (s.whole) {
      const std::string_view rest = std::string_view(head_).substr(s.start.size());
      if (!rest.empty() && rest[0] != '\r' && rest[0] != '\n' && rest[0] != ' ') continue;
    }
    found_.insert(std::string(s.name));
  }
}

void ChunkCommandScan::add(std::string_view piece) {
  for (const char c : piece) {
    if (at_line_start_) {
      head_.clear();
      head_done_ = false;
      at_line_start_ = false;
    }
    if (!head_done_) {
      head_.push_back(c);
      if (head_.size() >= kLongest || c == '\n') judge_line_start();
    }
    if (c == '\n') at_line_start_ = true;
  }
}

std::set<std::string> ChunkCommandScan::take() {
  if (!head_done_ && !head_.empty()) judge_line_start();
  head_.clear();
  at_line_start_ = true;
  head_done_ = false;
  return std::exchange(found_, {});
}

}  // namespace mailtap::tools
