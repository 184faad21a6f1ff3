#include "proxy/smtp/capabilities.hpp"

#include <vector>

#include "proxy/smtp/command.hpp"

namespace mailtap::smtp {

namespace {
std::string_view keyword(std::string_view text) {
  std::size_t end = text.find_first_of(" =");
  return text.substr(0, end);
}

// Splits raw reply bytes into lines, each with its own line ending.
std::vector<std::string_view> raw_lines(std::string_view raw) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < raw.size()) {
    std::size_t eol = raw.find('\n', pos);
    std::size_t end = eol == std::string_view::npos ? raw.size() : eol + 1;
    out.push_back(raw.substr(pos, end - pos));
    pos = end;
  }
  return out;
}
}  // namespace

Capabilities parse_capabilities(const Reply& reply) {
  Capabilities caps;
  for (std::size_t i = 1; i < reply.lines.size(); ++i) {
    std::string_view line = reply.lines[i];
    std::string_view kw = keyword(line);
    if (iequals(kw, "STARTTLS")) caps.starttls = true;
    if (iequals(kw, "PIPELINING")) caps.pipelining = true;
    if (iequals(kw, "CHUNKING")) caps.chunking = true;
    if (iequals(kw, "AUTH") && line.size() > 5) caps.auth = std::string(line.substr(5));
  }
  return caps;
}

std::string remove_starttls(const Reply& reply, bool& removed) {
  removed = false;
  std::vector<std::string_view> lines = raw_lines(reply.raw);
  if (lines.size() != reply.lines.size() || lines.size() < 2) return reply.raw;
  std::vector<std::string_view> kept;
  kept.push_back(lines[0]);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (iequals(keyword(reply.lines[i]), "STARTTLS")) {
      removed = true;
      continue;
    }
    kept.push_back(lines[i]);
  }
  if (!removed) return reply.raw;
  std::string out;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    std::string line(kept[i]);
    // Continuation marker: '-' on all but the last line, ' ' on the last.
    if (line.size() > 3 && (line[3] == '-' || line[3] == ' ')) {
      line[3] = i + 1 == kept.size() ? ' ' : '-';
    } else if (i + 1 != kept.size()) {
      // A bare "250\r\n" line cannot stay a middle line: give it a marker.
      line.insert(3, "-");
    }
    out += line;
  }
  return out;
}

}  // namespace mailtap::smtp
