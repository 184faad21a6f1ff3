#include "tools/mboxrd.hpp"

namespace mailtap::tools {

namespace {
constexpr std::string_view kFrom = "From ";
}

// `start_` is '>'s and then what may still begin "From ": wait for more, or know now.
void MboxrdQuoter::decide() {
  const std::size_t quotes = start_.find_first_not_of('>');
  if (quotes == std::string::npos) return;  // only '>'s so far
  const std::string_view rest = std::string_view(start_).substr(quotes);
  const bool from = rest.starts_with(kFrom);
  if (!from && rest.size() < kFrom.size() && kFrom.starts_with(rest)) return;
  if (from) emit_(">");
  std::string_view line = start_;
  if (line.back() == '\r') {  // only a last octet can be a CR: it decides at once
    line.remove_suffix(1);
    held_cr_ = true;
  }
  emit_(line);
  start_.clear();
  line_start_ = false;
}

// A line that ended before its start decided anything (an empty line, ">>", "Fro"): not quoted.
void MboxrdQuoter::end_undecided_line() {
  emit_(start_);
  emit_("\n");
  start_.clear();
}

void MboxrdQuoter::append(std::string_view p) {
  while (!p.empty()) {
    if (line_start_) {
      const char c = p.front();
      p.remove_prefix(1);
      if (c == '\n') {
        end_undecided_line();
      } else {
        start_.push_back(c);
        decide();
      }
      continue;
    }
    const std::size_t lf = p.find('\n');
    std::string_view text = p.substr(0, lf);
    if (held_cr_ && !text.empty()) {  // the line went on: the CR was not its last octet
      emit_("\r");
      held_cr_ = false;
    }
    if (lf == std::string_view::npos) {
      if (text.back() == '\r') {
        text.remove_suffix(1);
        held_cr_ = true;
      }
      emit_(text);
      return;
    }
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    held_cr_ = false;  // a CR before LF is dropped: CRLF becomes LF
    emit_(text);
    emit_("\n");
    line_start_ = true;
    p.remove_prefix(lf + 1);
  }
}

void MboxrdQuoter::finish() {
  if (line_start_) {
    if (!start_.empty()) end_undecided_line();
    return;
  }
  held_cr_ = false;  // the last line's CR is dropped, as before an LF
  emit_("\n");
  line_start_ = true;
}

std::string mboxrd_quote(std::string_view body) {
  std::string out;
  MboxrdQuoter q([&out](std::string_view piece) { out.append(piece); });
  q.append(body);
  q.finish();
  return out;
}

}  // namespace mailtap::tools
