#include "tools/web/download_name.hpp"

#include <algorithm>
#include <cstdint>

#include "proxy/common/text.hpp"

namespace mailtap::tools::web {

namespace {

std::uint32_t code_point(std::string_view utf8) {
  if (utf8.size() == 1) return static_cast<unsigned char>(utf8[0]);
  std::uint32_t cp = static_cast<unsigned char>(utf8[0]) & (0x7f >> utf8.size());
  for (std::size_t i = 1; i < utf8.size(); ++i)
    cp = cp << 6 | (static_cast<unsigned char>(utf8[i]) & 0x3f);
  return cp;
}

// Characters that would make the name mean something else than it shows: controls (C0, DEL,
// C1), and the invisible ones that reorder or hide what follows ("cod.exe" shown "exe.doc").
bool invisible_or_control(std::uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff;
}

// Path separators, and what Windows refuses in a name or a header's quoted string cannot hold.
bool reserved(std::uint32_t cp) {
  return cp == '/' || cp == '\\' || cp == '"' || cp == ':' || cp == '*' || cp == '?' || cp == '<' ||
         cp == '>' || cp == '|';
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == '.' || s.front() == ' ')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

// `s` at most `limit` octets, cut at a character's start.
std::string_view first_octets(std::string_view s, std::size_t limit) {
  std::size_t end = 0;
  while (end < s.size()) {
    const std::size_t step = utf8_char_length(s.substr(end));
    if (end + step > limit) break;
    end += step;
  }
  return s.substr(0, end);
}

// A long name loses the end of its stem, not its extension (".pdf" still opens as a PDF).
std::string shortened(std::string_view name) {
  if (name.size() <= kMaxFileNameOctets) return std::string(name);
  const std::size_t dot = name.rfind('.');
  const std::size_t extension =
      dot != std::string_view::npos && name.size() - dot <= 16 ? name.size() - dot : 0;
  std::string out(trimmed(first_octets(name, kMaxFileNameOctets - extension)));
  out += name.substr(name.size() - extension);
  return out;
}

bool attr_char(char c) {  // RFC 8187 attr-char
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$&+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::string safe_file_name(std::string_view name) {
  std::string out;
  while (!name.empty()) {
    std::size_t step = utf8_char_length(name);
    if (step == 0) {  // not UTF-8: one octet the name cannot say what it is
      out += '_';
      name.remove_prefix(1);
      continue;
    }
    const std::uint32_t cp = code_point(name.substr(0, step));
    if (reserved(cp) || (cp < 0x20 || cp == 0x7f))
      out += '_';
    else if (!invisible_or_control(cp))
      out += name.substr(0, step);
    name.remove_prefix(step);
  }
  return shortened(trimmed(out));
}

std::string attachment_disposition(std::string_view name, std::string_view fallback) {
  std::string safe = safe_file_name(name);
  if (safe.empty()) safe = fallback;
  // The quoted form for browsers without RFC 8187: ASCII, and no '%', which some of them would
  // take for an escape (RFC 6266 appendix D).
  std::string ascii;
  for (std::string_view rest = safe; !rest.empty();) {
    const std::size_t step = std::max<std::size_t>(utf8_char_length(rest), 1);
    ascii += step == 1 && rest[0] != '%' ? rest[0] : '_';
    rest.remove_prefix(step);
  }
  std::string value = "attachment; filename=\"" + ascii + "\"";
  if (ascii == safe) return value;
  constexpr char kHex[] = "0123456789ABCDEF";
  value += "; filename*=UTF-8''";
  for (const char c : safe) {
    if (attr_char(c)) {
      value += c;
    } else {
      const auto octet = static_cast<unsigned char>(c);
      value += '%';
      value += kHex[octet >> 4];
      value += kHex[octet & 0xf];
    }
  }
  return value;
}

}  // namespace mailtap::tools::web
