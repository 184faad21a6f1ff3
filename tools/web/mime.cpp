#include "tools/web/mime.hpp"

#include <cctype>

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"
#include "tools/web/mime_parameters.hpp"

namespace mailtap::tools::web {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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
  body = raw.substr(raw.size());  // empty, but inside `raw`: parts' offsets are taken from it
}

}  // namespace

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
      out.back().value += trim_blanks(line);
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.push_back({std::string(trim_blanks(line.substr(0, colon))),
                   std::string(trim_blanks(line.substr(colon + 1)))});
  }
  return out;
}

namespace {

std::string header(const std::vector<MimeHeader>& headers, std::string_view name) {
  for (const auto& h : headers)
    if (lower(h.name) == name) return h.value;
  return "";
}

// The value before the first ';', lower case.
std::string main_value(std::string_view value) {
  return lower(trim_blanks(value.substr(0, value.find(';'))));
}

}  // namespace

namespace {

// The value of a base64 character, -2 for the '=' that ends the data, -1 for anything else.
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return c == '=' ? -2 : -1;
}

// Quoted-printable over `in`: `whole` when nothing follows it; otherwise an '=' too near the end
// to be decided is left, with what follows it, in `rest`.
void decode_quoted_printable(std::string_view in, bool whole, std::string& out, std::string& rest) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out += in[i];
      continue;
    }
    if (!whole && in.size() - i < 3) {  // its two octets come with the next piece
      rest.assign(in.substr(i));
      return;
    }
    if (i + 1 < in.size() && in[i + 1] == '\n') {  // soft break, bare LF
      i += 1;
    } else if (i + 2 < in.size() && in[i + 1] == '\r' && in[i + 2] == '\n') {  // soft break
      i += 2;
    } else if (const int octet = hex_pair_value(in.substr(i + 1)); octet >= 0) {
      out += static_cast<char>(octet);
      i += 2;
    } else {
      out += '=';
    }
  }
}

}  // namespace

TransferDecoder::TransferDecoder(std::string_view transfer_encoding)
    : kind_(transfer_encoding == "base64"             ? Kind::base64
            : transfer_encoding == "quoted-printable" ? Kind::quoted_printable
                                                      : Kind::identity) {}

void TransferDecoder::append(std::string_view in, std::string& out) {
  if (kind_ == Kind::identity) {
    out.append(in);
  } else if (kind_ == Kind::quoted_printable) {
    std::string rest;
    if (held_.empty()) {
      decode_quoted_printable(in, false, out, rest);
    } else {
      held_.append(in);
      decode_quoted_printable(held_, false, out, rest);
    }
    held_ = std::move(rest);
  } else {
    for (char c : in) {
      if (stopped_) return;
      const int v = base64_value(c);
      if (v == -2) stopped_ = true;
      if (v < 0) continue;  // line ends and other noise
      bits_buffer_ = (bits_buffer_ << 6) | static_cast<unsigned>(v);
      bits_ += 6;
      if (bits_ >= 8) {
        bits_ -= 8;
        out += static_cast<char>((bits_buffer_ >> bits_) & 0xff);
      }
    }
  }
}

void TransferDecoder::finish(std::string& out) {
  std::string rest;
  if (kind_ == Kind::quoted_printable) decode_quoted_printable(held_, true, out, rest);
  held_.clear();
}

std::size_t decoded_size(std::string_view transfer_encoding, std::string_view encoded) {
  constexpr std::size_t kSlice = std::size_t{256} * 1024;
  TransferDecoder decoder(transfer_encoding);
  std::size_t size = 0;
  std::string out;
  for (std::size_t i = 0; i < encoded.size(); i += kSlice) {
    out.clear();
    decoder.append(encoded.substr(i, kSlice), out);
    size += out.size();
  }
  out.clear();
  decoder.finish(out);
  return size + out.size();
}

std::string decoded_prefix(std::string_view transfer_encoding, std::string_view encoded,
                           std::size_t limit, bool& cut) {
  constexpr std::size_t kSlice = std::size_t{64} * 1024;
  TransferDecoder decoder(transfer_encoding);
  std::string out;
  for (std::size_t i = 0; i < encoded.size() && out.size() <= limit; i += kSlice)
    decoder.append(encoded.substr(i, kSlice), out);
  if (out.size() <= limit) decoder.finish(out);
  cut = out.size() > limit;
  if (cut) out.resize(limit);
  return out;
}

std::string decode_base64(std::string_view in) {
  std::string out;
  TransferDecoder("base64").append(in, out);
  return out;
}

namespace {

// The leaves found so far, and whether their bodies are decoded.
struct PartsOut {
  std::vector<MimePart>& parts;
  MimeBodies bodies;
};

void walk(const std::vector<MimeHeader>& headers, std::string_view body, int depth, PartsOut& out);

// Walks one entity's raw text: its headers, an empty line, its body.
void walk_entity(std::string_view raw, int depth, PartsOut& out) {
  std::string_view head, part_body;
  split_entity(raw, head, part_body);
  walk(parse_headers(head), part_body, depth, out);
}

enum class DelimiterLine { none, part, close };

DelimiterLine delimiter_kind(std::string_view line, std::string_view delimiter) {
  if (!line.starts_with(delimiter)) return DelimiterLine::none;
  const auto rest = trim_blanks(line.substr(delimiter.size()));
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
bool walk_multipart(std::string_view body, const std::string& boundary, int depth, PartsOut& out) {
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

void walk(const std::vector<MimeHeader>& headers, std::string_view body, int depth, PartsOut& out) {
  std::string boundary;
  MimePart part = describe_entity(headers, boundary);
  if (!boundary.empty() && depth < kMimeMaxDepth && walk_multipart(body, boundary, depth, out))
    return;
  part.encoded = body;
  if (out.bodies == MimeBodies::decoded) {
    TransferDecoder decoder(part.transfer_encoding);
    decoder.append(body, part.body);
    decoder.finish(part.body);
  }
  out.parts.push_back(std::move(part));
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

MimePart describe_entity(const std::vector<MimeHeader>& headers, std::string& boundary) {
  MimePart part;
  const std::string content_type = header(headers, "content-type");
  std::string type = main_value(content_type);
  if (type.empty() || type.find('/') == std::string::npos) type = "text/plain";
  boundary = type.starts_with("multipart/") ? mime_parameter(content_type, "boundary") : "";
  part.content_type = std::move(type);
  part.charset = lower(mime_parameter(content_type, "charset"));
  const std::string disposition = header(headers, "content-disposition");
  part.attachment = main_value(disposition) == "attachment";
  MimeParameterText name = mime_text_parameter(disposition, "filename");
  if (name.value.empty()) name = mime_text_parameter(content_type, "name");
  part.filename = std::move(name.value);
  part.filename_is_text = name.extended;
  part.transfer_encoding = main_value(header(headers, "content-transfer-encoding"));
  return part;
}

ParsedMessage parse_message(std::string_view raw, MimeBodies bodies) {
  ParsedMessage m;
  std::string_view head, body = raw;
  if (starts_with_header(raw)) split_entity(raw, head, body);
  m.headers = parse_headers(head);
  PartsOut out{m.parts, bodies};
  walk(m.headers, body, 0, out);
  return m;
}

}  // namespace mailtap::tools::web
