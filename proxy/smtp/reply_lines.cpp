#include "proxy/smtp/reply_lines.hpp"

#include "proxy/smtp/auth_explanation.hpp"
#include "proxy/smtp/reply_parser.hpp"

namespace mailtap::smtp {

std::string reply_lines(std::string_view code, std::string_view text) {
  const std::string status = parse_enhanced_status(text);
  std::string_view rest = text;
  if (!status.empty()) {
    rest.remove_prefix(status.size());
    if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
  const std::string after_mark = status.empty() ? std::string() : status + " ";
  // Room for text on each line: the code, its mark and the status come first.
  const std::size_t room = kMaxExplanation - code.size() - 1 - after_mark.size();
  std::string out;
  while (true) {
    std::size_t take = rest.size();
    if (take > room) {
      const std::size_t space = rest.rfind(' ', room);
      take = space == std::string_view::npos || space == 0 ? room : space;
    }
    const bool last = take == rest.size();
    out.append(code).push_back(last ? ' ' : '-');
    out.append(after_mark).append(rest.substr(0, take)).append("\r\n");
    if (last) return out;
    rest.remove_prefix(take);
    if (rest.front() == ' ') rest.remove_prefix(1);
  }
}

}  // namespace mailtap::smtp
