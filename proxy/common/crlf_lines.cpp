#include "proxy/common/crlf_lines.hpp"

namespace mailtap {

std::vector<std::string_view> crlf_lines(std::string_view bytes) {
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const auto eol = bytes.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      lines.push_back(bytes.substr(pos));
      break;
    }
    lines.push_back(bytes.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return lines;
}

bool CrlfLinePieces::append(std::string_view piece) {
  held_.append(piece);
  std::size_t start = 0;
  bool ok = true;
  for (std::size_t eol; ok && (eol = held_.find("\r\n", start)) != std::string::npos;
       start = eol + 2) {
    ok = sink_(std::string_view(held_).substr(start, eol - start), !in_line_, true);
    in_line_ = false;
  }
  held_.erase(0, start);
  if (ok && held_.size() > longest_held_) {
    // A CR at the end may begin the next piece's CRLF: it waits for it.
    const std::size_t cut = held_.size() - (held_.back() == '\r' ? 1 : 0);
    ok = sink_(std::string_view(held_).substr(0, cut), !in_line_, false);
    in_line_ = true;
    held_.erase(0, cut);
  }
  return ok;
}

bool CrlfLinePieces::finish() {
  const bool ok = held_.empty() && !in_line_ ? true : sink_(held_, !in_line_, true);
  held_.clear();
  in_line_ = false;
  return ok;
}

}  // namespace mailtap
