#include "proxy/session/transcript.hpp"

#include <cstdio>

namespace mailtap {

namespace {
using smtp::Direction;
using smtp::EventKind;

const char* prefix(const smtp::Event& e) {
  switch (e.direction) {
    case Direction::client_to_upstream:
    case Direction::client_to_mailtap:
      return "C:";
    case Direction::upstream_to_client:
      return "S:";
    case Direction::mailtap_to_upstream:
      return "M>";  // mailtap's own command upstream
    case Direction::upstream_to_mailtap:
      return "S>";  // upstream's reply to mailtap
    case Direction::mailtap_to_client:
      return e.kind == EventKind::rewrite ? "S~" : "M:";
    case Direction::mailtap_note:
      return "~ ";
  }
  return "? ";
}

void append_escaped(std::string& out, std::string_view text) {
  for (unsigned char c : text) {
    if (c == '\r') continue;
    if (c < 0x20 && c != '\t') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}
}  // namespace

std::string transcript_lines(std::uint64_t session, const smtp::Event& e) {
  const std::string head = "[" + std::to_string(session) + "] " + prefix(e) + " ";
  std::string out;
  std::string_view bytes = e.bytes;
  if (bytes.empty()) {
    out += head;
    out += to_string(e.kind);
    out += ": ";
    append_escaped(out, e.note);
    out.push_back('\n');
    return out;
  }
  std::size_t pos = 0;
  bool first = true;
  while (pos < bytes.size()) {
    std::size_t eol = bytes.find('\n', pos);
    std::size_t end = eol == std::string_view::npos ? bytes.size() : eol;
    out += head;
    append_escaped(out, bytes.substr(pos, end - pos));
    // A redacted line already shows its decoded fields; a note beside it would repeat them.
    if (first && !e.note.empty() && e.kind != EventKind::rewrite && !e.redacted) {
      out += "   (";
      append_escaped(out, e.note);
      out += ")";
    }
    first = false;
    out.push_back('\n');
    pos = end == bytes.size() ? end : end + 1;
  }
  return out;
}

}  // namespace mailtap
