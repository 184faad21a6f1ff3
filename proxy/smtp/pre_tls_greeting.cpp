#include "proxy/smtp/pre_tls_greeting.hpp"

#include "proxy/common/terminal_escape.hpp"

namespace mailtap::smtp {

ShownGreeting pre_tls_greeting_for_client(std::string_view raw) {
  ShownGreeting shown;
  shown.bytes.reserve(raw.size());
  while (!raw.empty()) {
    const std::size_t lf = raw.find('\n');
    const std::size_t next = lf == std::string_view::npos ? raw.size() : lf + 1;
    std::string_view line = raw.substr(0, next);
    // The line's own ending (CRLF, or the LF some servers send) is its structure, not its text.
    std::size_t end = line.size();
    if (end > 0 && line[end - 1] == '\n') --end;
    if (end > 0 && line[end - 1] == '\r') --end;
    const std::string_view text = line.substr(0, end);
    const std::string escaped = escape_line(text);
    // The octets escape_line does not keep as they are.
    for (const char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (u != '\t' && (u < 0x20 || u >= 0x7f)) ++shown.escaped;
    }
    shown.bytes += escaped;
    shown.bytes += line.substr(end);
    raw.remove_prefix(next);
  }
  return shown;
}

}  // namespace mailtap::smtp
