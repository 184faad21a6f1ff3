#include "proxy/smtp/capabilities.hpp"

#include <algorithm>
#include <vector>

#include "proxy/smtp/command.hpp"

namespace mailtap::smtp {

namespace {
std::string_view keyword(std::string_view text) {
  std::size_t end = text.find_first_of(" =");
  return text.substr(0, end);
}

// RFC 4422 §3.1: sasl-mech = 1*20mech-char, upper-case letters, digits, '-' and '_'. Servers
// are case-insensitive about it, so lower case is accepted and folded.
bool is_mechanism_name(std::string_view word) {
  if (word.empty() || word.size() > 20) return false;
  for (char c : word) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

void add_mechanisms(std::string_view list, std::vector<std::string>& out) {
  std::size_t pos = 0;
  while (pos < list.size()) {
    const std::size_t end = std::min(list.find(' ', pos), list.size());
    const std::string_view word = list.substr(pos, end - pos);
    pos = end + 1;
    if (!is_mechanism_name(word)) continue;
    std::string upper(word);
    for (char& c : upper) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    if (std::find(out.begin(), out.end(), upper) == out.end()) out.push_back(std::move(upper));
  }
}

// What a SIZE line's parameter says (RFC 1870: SIZE [SP 1*DIGIT]).
struct SizeParameter {
  std::uint64_t size = 0;
  bool unreadable = false;
};

// SIZE's parameter, read as its decimal number, leading zeros allowed, one past 2^64-1 read as
// that. A server that puts a TAB before it or words after it ("SIZE 20480 extra") still has that
// limit, and one misread as none would let a chunk cross it: the number counts whatever words
// follow it. No parameter at all is no limit (RFC 1870); one that does not begin with a digit,
// or whose digits run into something else ("SIZE 0x1000000", "SIZE 10M": read as 0 they were no
// limit), is a limit mailtap cannot read.
SizeParameter advertised_size(std::string_view parameter) {
  const std::size_t start = parameter.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  const std::size_t end = parameter.find_first_not_of("0123456789", start);
  if (end == start ||
      (end != std::string_view::npos && parameter[end] != ' ' && parameter[end] != '\t'))
    return {.size = 0, .unreadable = true};
  std::uint64_t n = 0;
  for (const char c : parameter.substr(start, end - start)) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    n = n > (UINT64_MAX - digit) / 10 ? UINT64_MAX : n * 10 + digit;
  }
  return {.size = n};
}

// Several SIZE lines in one reply: the strictest reading, so that no line can lift a limit
// another sets (a later bare "SIZE" or "SIZE 0" after "SIZE 20480" was read as no limit). One
// mailtap cannot read makes the limit unreadable; else the smallest non-zero number.
void add_size_line(const SizeParameter& parameter, Capabilities& caps) {
  const bool first = !caps.size_advertised;
  caps.size_advertised = true;
  if (parameter.unreadable || caps.size_unreadable) {
    caps.size = 0;
    caps.size_unreadable = true;
    return;
  }
  if (first || caps.size == 0 || (parameter.size != 0 && parameter.size < caps.size))
    caps.size = parameter.size;
}

// The keyword SIZE, then SP, HT or "=" before its parameter, or nothing. "SIZE=10240000" is
// not RFC 1870's form, but old servers send it (as some send "AUTH=..."), Postfix's client reads
// it as SIZE 10240000, and read as no limit it would let a chunk cross the server's limit.
bool is_size_line(std::string_view line) {
  constexpr std::string_view kw = "SIZE";
  return line.size() >= kw.size() && iequals(line.substr(0, kw.size()), kw) &&
         (line.size() == kw.size() || line[kw.size()] == ' ' || line[kw.size()] == '\t' ||
          line[kw.size()] == '=');
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
    if (is_size_line(line)) {
      add_size_line(advertised_size(line.substr(std::min<std::size_t>(line.size(), 5))), caps);
    }
    if (iequals(kw, "AUTH") && line.size() > 5) {
      caps.auth = std::string(line.substr(5));
      add_mechanisms(line.substr(5), caps.auth_mechanisms);
    }
  }
  return caps;
}

bool Capabilities::offers_auth(std::string_view mechanism) const {
  for (const std::string& m : auth_mechanisms) {
    if (iequals(m, mechanism)) return true;
  }
  return false;
}

std::string remove_starttls(const Reply& reply, bool& removed) {
  return remove_extensions(reply, {"STARTTLS"}, removed);
}

std::string remove_extensions(const Reply& reply, std::initializer_list<std::string_view> names,
                              bool& removed) {
  removed = false;
  std::vector<std::string_view> lines = raw_lines(reply.raw);
  if (lines.size() != reply.lines.size() || lines.size() < 2) return reply.raw;
  std::vector<std::string_view> kept;
  kept.push_back(lines[0]);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view kw = keyword(reply.lines[i]);
    if (std::any_of(names.begin(), names.end(),
                    [&](std::string_view name) { return iequals(kw, name); })) {
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

std::string append_extension(std::string raw, std::string_view keyword) {
  if (raw.size() < 3) return raw;
  const std::string code = raw.substr(0, 3);
  // The last line begins after the last line ending but one.
  std::size_t end = raw.size();
  while (end > 0 && (raw[end - 1] == '\n' || raw[end - 1] == '\r')) --end;
  const std::size_t nl = raw.rfind('\n', end == 0 ? 0 : end - 1);
  const std::size_t last = nl == std::string::npos ? 0 : nl + 1;
  if (raw.size() > last + 3 && raw[last + 3] == ' ')
    raw[last + 3] = '-';
  else if (raw.size() >= last + 3 && (raw.size() == last + 3 || raw[last + 3] != '-'))
    raw.insert(last + 3, "-");
  if (end == raw.size()) raw += "\r\n";
  raw += code + " " + std::string(keyword) + "\r\n";
  return raw;
}

std::string starttls_offered_under_tls_none() {
  return "the server offers STARTTLS: drop --tls none so that nothing travels in plain text";
}

}  // namespace mailtap::smtp
