#include "proxy/smtp/reply_parser.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

namespace mailtap::smtp {

namespace {
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Digits of an enhanced status part: 1-3 digits.
std::size_t digits(std::string_view s, std::size_t pos, std::size_t max) {
  std::size_t n = 0;
  while (pos + n < s.size() && n < max && is_digit(s[pos + n])) ++n;
  return n;
}

// reply-line = code [ ("-" / SP) textstring ] ; RFC 5321 §4.2 (line ending removed)
bool is_reply_line(std::string_view line) {
  return line.size() >= 3 && is_digit(line[0]) && is_digit(line[1]) && is_digit(line[2]) &&
         line[0] >= '1' && line[0] <= '5' && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
}
}  // namespace

std::string Reply::text() const {
  return lines.empty() ? std::string{} : lines.front();
}

namespace {
// The line at the start of rest, without its line end; rest moves past both.
std::string_view take_line(std::string_view& rest) {
  const std::size_t end = std::min(rest.find_first_of("\r\n"), rest.size());
  const std::string_view line = rest.substr(0, end);
  rest.remove_prefix(end);
  if (rest.starts_with("\r\n"))
    rest.remove_prefix(2);
  else if (!rest.empty())
    rest.remove_prefix(1);
  return line;
}

std::string_view without_leading_blanks(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t");
  return start == std::string_view::npos ? std::string_view{} : text.substr(start);
}
}  // namespace

std::string reply_summary(std::string_view raw) {
  std::string_view rest = raw;
  std::string_view line = take_line(rest);
  if (!is_reply_line(line) || line.size() == 3 || line[3] != '-') return std::string(line);
  // Every line's text: the last often holds what matters (Exim's "250 OK id=..." after its
  // "250- 22 byte chunk, total 22"); a status repeated on each line is said once.
  const std::string_view code = line.substr(0, 3);
  const std::string status = parse_enhanced_status(without_leading_blanks(line.substr(4)));
  std::string out = std::string(code) + ' ';
  bool first = true;
  bool said = false;
  for (;;) {
    std::string_view text =
        without_leading_blanks(line.substr(std::min<std::size_t>(4, line.size())));
    if (!first && !status.empty() && parse_enhanced_status(text) == status)
      text = without_leading_blanks(text.substr(status.size()));
    if (!text.empty()) {
      out += said ? "; " : "";
      out += text;
      said = true;
    }
    if (line.size() == 3 || line[3] == ' ') break;
    line = take_line(rest);
    first = false;
    if (!is_reply_line(line) || line.substr(0, 3) != code) break;
  }
  return out;
}

std::string parse_enhanced_status(std::string_view text) {
  // status-code = class "." subject "." detail ; class = "2"/"4"/"5", subject/detail 1-3 digits
  if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
    return {};
  std::size_t pos = 2;
  std::size_t n = digits(text, pos, 3);
  if (n == 0 || pos + n >= text.size() || text[pos + n] != '.') return {};
  pos += n + 1;
  n = digits(text, pos, 3);
  if (n == 0) return {};
  pos += n;
  if (pos < text.size() && text[pos] != ' ') return {};
  return std::string(text.substr(0, pos));
}

std::optional<Reply> ReplyParser::next() {
  if (error_ != Error::none) return std::nullopt;
  Reply reply;
  std::size_t pos = consumed_;
  for (;;) {
    const std::optional<std::string_view> line = take_line(pos);
    if (!line) return std::nullopt;
    if (!is_reply_line(*line)) {
      error_ = Error::malformed;
      malformed_end_ = pos;
      return std::nullopt;
    }
    const int code = ((*line)[0] - '0') * 100 + ((*line)[1] - '0') * 10 + ((*line)[2] - '0');
    if (reply.lines.empty()) {
      reply.code = code;
    } else if (code != reply.code) {
      error_ = Error::malformed;  // a continuation must repeat the code
      malformed_end_ = pos;
      return std::nullopt;
    }
    reply.lines.emplace_back(line->size() > 4 ? line->substr(4) : std::string_view{});
    if (pos - consumed_ > max_reply) {
      error_ = Error::reply_too_long;
      return std::nullopt;
    }
    const bool last = line->size() == 3 || (*line)[3] == ' ';
    if (last) return complete(std::move(reply), pos);
  }
}

// The line that starts at `pos`, its line ending removed, and `pos` moved past it; nullopt if
// it is not complete yet, or too long (error_).
std::optional<std::string_view> ReplyParser::take_line(std::size_t& pos) {
  const std::size_t eol = buffer_.find('\n', pos);
  if (eol == std::string::npos) {
    if (buffer_.size() - pos > max_line) error_ = Error::line_too_long;
    if (buffer_.size() - consumed_ > max_reply) error_ = Error::reply_too_long;
    return std::nullopt;
  }
  std::string_view line(buffer_.data() + pos, eol - pos);
  if (line.size() > max_line) {
    error_ = Error::line_too_long;
    return std::nullopt;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos = eol + 1;
  return line;
}

// The reply's lines end before `pos`: it takes its raw bytes, and the buffer lets them go.
Reply ReplyParser::complete(Reply reply, std::size_t pos) {
  reply.raw.assign(buffer_, consumed_, pos - consumed_);
  reply.enhanced_status = parse_enhanced_status(reply.lines.front());
  consumed_ = pos;
  // Compact once the consumed prefix dominates, so the buffer stays bounded.
  if (consumed_ > 4096 && consumed_ * 2 > buffer_.size()) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  return reply;
}

std::string ReplyParser::malformed_reason() const {
  std::string_view line = malformed_octets();
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  line = line.substr(std::min(line.size(), line.rfind('\n') + 1));  // the line that made it so
  const bool coded =
      digits(line, 0, 3) == 3 && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
  if (coded && !is_reply_line(line))
    return "reply code " + std::string(line.substr(0, 3)) + " is outside 100..599 (RFC 5321 §4.2)";
  if (coded)
    return "a continuation line with another code than the reply's first line (every line of "
           "a reply begins with its code, the same on each line)";
  return "a line that does not begin with a reply code (every line of a reply begins with its "
         "three-digit code, then a space or a hyphen)";
}

std::string_view ReplyParser::error_text() const {
  switch (error_) {
    case Error::none:
      return "";
    case Error::line_too_long:
      return "upstream sent a reply line longer than 8192 octets";
    case Error::reply_too_long:
      return "upstream sent a reply longer than 256 KiB";
    case Error::malformed:
      return "upstream sent a malformed reply";
  }
  return "";
}

}  // namespace mailtap::smtp
