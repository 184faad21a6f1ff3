#include "tools/web/mime.hpp"

#include <cctype>

#include "proxy/common/hex.hpp"

namespace mailtap::tools::web {

namespace {

constexpr int kMaxDepth = 8;  // nested multiparts beyond this are shown as they are

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Splits at the first empty line (CRLF CRLF or bare LF LF).
void split_entity(std::string_view raw, std::string_view& head, std::string_view& body) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\n') continue;
    std::size_t j = i + 1;
    if (j < raw.size() && raw[j] == '\r') ++j;
    if (j < raw.size() && raw[j] == '\n') {
      head = raw.substr(0, i + 1);
      body = raw.substr(j + 1);
      return;
    }
    if (j >= raw.size()) break;
  }
  if (!raw.empty() && (raw.front() == '\n' || raw.starts_with("\r\n"))) {
    head = {};
    body = raw.substr(raw.front() == '\n' ? 1 : 2);
    return;
  }
  head = raw;
  body = {};
}

std::vector<MimeHeader> parse_headers(std::string_view head) {
  std::vector<MimeHeader> out;
  std::size_t pos = 0;
  while (pos < head.size()) {
    auto eol = head.find('\n', pos);
    if (eol == std::string_view::npos) eol = head.size();
    std::string_view line = head.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = eol + 1;
    if (line.empty()) continue;
    if ((line.front() == ' ' || line.front() == '\t') && !out.empty()) {
      out.back().value += ' ';
      out.back().value += trim(line);
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.push_back(
        {std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
  }
  return out;
}

std::string header(const std::vector<MimeHeader>& headers, std::string_view name) {
  for (const auto& h : headers)
    if (lower(h.name) == name) return h.value;
  return "";
}

// The value before the first ';', lower case.
std::string main_value(std::string_view value) {
  return lower(trim(value.substr(0, value.find(';'))));
}

std::string parameter(std::string_view value, std::string_view name) {
  std::size_t pos = value.find(';');
  while (pos != std::string_view::npos) {
    std::size_t next = pos + 1;
    // A ';' inside a quoted value does not end it.
    bool quoted = false;
    while (next < value.size() && (quoted || value[next] != ';')) {
      if (value[next] == '"') quoted = !quoted;
      ++next;
    }
    std::string_view item = trim(value.substr(pos + 1, next - pos - 1));
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && lower(trim(item.substr(0, eq))) == name) {
      std::string_view v = trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
    pos = next < value.size() ? next : std::string_view::npos;
  }
  return "";
}

}  // namespace

std::string decode_base64(std::string_view in) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v = -1;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=')
      break;
    if (v < 0) continue;  // line ends and other noise
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

namespace {

std::string decode_quoted_printable(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out += in[i];
      continue;
    }
    if (i + 1 < in.size() && in[i + 1] == '\n') {  // soft break, bare LF
      i += 1;
    } else if (i + 2 < in.size() && in[i + 1] == '\r' && in[i + 2] == '\n') {  // soft break
      i += 2;
    } else if (i + 2 < in.size() && hex_digit_value(in[i + 1]) >= 0 &&
               hex_digit_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit_value(in[i + 1]) * 16 + hex_digit_value(in[i + 2]));
      i += 2;
    } else {
      out += '=';
    }
  }
  return out;
}

void walk(const std::vector<MimeHeader>& headers, std::string_view body, int depth,
          std::vector<MimePart>& out);

// Walks one entity's raw text: its headers, an empty line, its body.
void walk_entity(std::string_view raw, int depth, std::vector<MimePart>& out) {
  std::string_view head, part_body;
  split_entity(raw, head, part_body);
  walk(parse_headers(head), part_body, depth, out);
}

enum class DelimiterLine { none, part, close };

DelimiterLine delimiter_kind(std::string_view line, std::string_view delimiter) {
  if (!line.starts_with(delimiter)) return DelimiterLine::none;
  const auto rest = trim(line.substr(delimiter.size()));
  if (rest.empty()) return DelimiterLine::part;
  return rest == "--" ? DelimiterLine::close : DelimiterLine::none;
}

// The part from part_start up to the delimiter line at delimiter_pos: the line end before the
// delimiter belongs to the delimiter.
std::string_view part_before(std::string_view body, std::size_t part_start,
                             std::size_t delimiter_pos) {
  std::size_t end = delimiter_pos;
  if (end > part_start && body[end - 1] == '\n') --end;
  if (end > part_start && body[end - 1] == '\r') --end;
  return body.substr(part_start, end - part_start);
}

// Walks each part between the delimiter lines of a multipart body. False when the body has no
// delimiter line at all (it is then shown as it is).
bool walk_multipart(std::string_view body, const std::string& boundary, int depth,
                    std::vector<MimePart>& out) {
  const std::string delimiter = "--" + boundary;
  std::size_t pos = 0;
  std::size_t part_start = std::string_view::npos;
  bool found = false;
  while (pos <= body.size()) {
    auto eol = body.find('\n', pos);
    if (eol == std::string_view::npos) eol = body.size();
    std::string_view line = body.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const DelimiterLine kind = delimiter_kind(line, delimiter);
    if (kind != DelimiterLine::none) {
      found = true;
      if (part_start != std::string_view::npos)
        walk_entity(part_before(body, part_start, pos), depth + 1, out);
      if (kind == DelimiterLine::close) return true;
      part_start = eol + 1;
    }
    pos = eol + 1;
  }
  // No closing delimiter (a truncated recording): the last part runs to the end.
  if (found && part_start != std::string_view::npos && part_start < body.size())
    walk_entity(body.substr(part_start), depth + 1, out);
  return found;
}

std::string decode_transfer_encoding(const std::vector<MimeHeader>& headers,
                                     std::string_view body) {
  const std::string encoding = main_value(header(headers, "content-transfer-encoding"));
  if (encoding == "base64") return decode_base64(body);
  if (encoding == "quoted-printable") return decode_quoted_printable(body);
  return std::string(body);
}

MimePart leaf_part(const std::vector<MimeHeader>& headers, const std::string& content_type,
                   std::string type, std::string_view body) {
  MimePart part;
  part.content_type = std::move(type);
  part.charset = lower(parameter(content_type, "charset"));
  const std::string disposition = header(headers, "content-disposition");
  part.attachment = main_value(disposition) == "attachment";
  part.filename = parameter(disposition, "filename");
  if (part.filename.empty()) part.filename = parameter(content_type, "name");
  part.body = decode_transfer_encoding(headers, body);
  return part;
}

void walk(const std::vector<MimeHeader>& headers, std::string_view body, int depth,
          std::vector<MimePart>& out) {
  const std::string content_type = header(headers, "content-type");
  std::string type = main_value(content_type);
  if (type.empty() || type.find('/') == std::string::npos) type = "text/plain";
  const std::string boundary = parameter(content_type, "boundary");
  if (type.starts_with("multipart/") && !boundary.empty() && depth < kMaxDepth &&
      walk_multipart(body, boundary, depth, out))
    return;
  out.push_back(leaf_part(headers, content_type, std::move(type), body));
}

// "Name: value" with a printable name: the start of a header section.
bool starts_with_header(std::string_view raw) {
  const auto colon = raw.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  for (char c : raw.substr(0, colon))
    if (c <= ' ' || c > '~') return false;
  return true;
}

}  // namespace

ParsedMessage parse_message(std::string_view raw) {
  ParsedMessage m;
  std::string_view head, body = raw;
  if (starts_with_header(raw)) split_entity(raw, head, body);
  m.headers = parse_headers(head);
  walk(m.headers, body, 0, m.parts);
  return m;
}

}  // namespace mailtap::tools::web
