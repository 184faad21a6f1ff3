#include "tools/credential_scan.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/credential_shape.hpp"
#include "tools/terminal_text.hpp"

namespace mailtap::tools {

namespace {

// A user name as a finding quotes it: a quote or a backslash in it gets a backslash before it, so
// the quotes hold the whole name; then as escape_text shows mailtap's own text (audit.md): UTF-8
// kept, controls and octets that are not UTF-8 as \xHH, never a '?' that hides which octet.
std::string quoted(std::string_view s) {
  std::string raw;
  for (char c : s) {
    if (c == '"' || c == '\\') raw += '\\';
    raw += c;
  }
  return "\"" + escape_text(raw) + "\"";
}

}  // namespace

CredentialScanOptions::CredentialScanOptions(smtp::Secret known_password)
    : known_password_(std::move(known_password)),
      known_password_base64_(smtp::base64_encoded_size(known_password_.size())) {
  smtp::base64_encode_append(known_password_.view(), known_password_base64_);
}

bool looks_like_base64_text(std::string_view line) {
  if (line.empty() || line == "=" || line == "*") return false;
  for (char c : line)
    if (!smtp::is_base64_char(c)) return false;
  // Decoded into a Secret: what is decoded may be a password, wiped when it goes.
  const std::optional<smtp::Secret> decoded = smtp::base64_decode_secret(line);
  return decoded && !decoded->empty() && !has_control(decoded->view());
}

namespace {

// True if `d` is a PLAIN message by the test for where it was found; `user` gets its authcid.
bool plain_message(std::string_view d, bool message_body, std::string& user) {
  if (message_body) return smtp::is_plain_message(d, user);
  if (!smtp::has_plain_message_shape(d)) return false;
  const std::size_t first = d.find('\0');
  user = std::string(d.substr(first + 1, d.find('\0', first + 1) - first - 1));
  return true;
}

// The authcid a finding names, unless it is the password as well ("\0pw\0pw", typed in haste):
// a finding must not print what it warns of.
std::string plain_user_shown(std::string_view message, std::string_view user) {
  const std::string_view password = message.substr(message.rfind('\0') + 1);
  return password == user ? "its user name is its password: not shown" : "user " + quoted(user);
}

// What a run of base64 characters at `at` gives away once decoded. `judge_plain`: whether a PLAIN
// message in it counts: not in a line of a wrapped encoding (whose octets are cut wherever the
// line width falls), nor, outside a message body, in a run that does not stand alone (see
// smtp::stands_alone, the dialogue's rule). `decoded`: a buffer for the decoding, reused from
// token to token.
void scan_base64_token(std::string_view token, std::size_t at, bool judge_plain, bool message_body,
                       std::string_view pw, smtp::Secret& decoded,
                       std::vector<CredentialFinding>& found) {
  if (decoded.capacity() < token.size() / 4 * 3) decoded = smtp::Secret(token.size() / 4 * 3);
  if (!decode_base64_for_scan(token, decoded)) return;
  const std::string_view d = decoded.view();
  std::string user;
  if (judge_plain && plain_message(d, message_body, user))
    found.push_back({at, "base64 SASL PLAIN blob (" + plain_user_shown(d, user) + ")"});
  std::size_t b = 0;
  if (smtp::find_bearer_token(d, b))
    found.push_back({at, "base64 XOAUTH2/OAUTHBEARER blob with a bearer token"});
  if (!pw.empty() && d.find(pw) != std::string_view::npos && d != pw)
    found.push_back({at, "the --password-env password, inside a base64 blob"});
}

// "\r" and "\n" spelled out.
std::string escape_line_ends(std::string_view s) {
  std::string e;
  for (char c : s) e += c == '\r' ? "\\r" : c == '\n' ? "\\n" : std::string(1, c);
  return e;
}

// The shape of SMTP smuggling around the '.' at `i` of `d` (0 < i, i + 1 < d.size()), spelled
// out, or "" when there is none there.
std::string shape_at(std::string_view d, std::size_t i) {
  const char before = d[i - 1], after = d[i + 1];
  if ((before != '\r' && before != '\n') || (after != '\r' && after != '\n')) return {};
  const bool crlf_before = before == '\n' && i >= 2 && d[i - 2] == '\r';
  const bool crlf_after = after == '\r' && i + 2 < d.size() && d[i + 2] == '\n';
  if (crlf_before && crlf_after) return {};  // the real terminator (or a stuffed line)
  // A "\r\n.\r" followed by more text is not a terminator shape for anyone either.
  const std::size_t from = crlf_before ? i - 2 : i - 1;
  const std::size_t to = crlf_after ? i + 3 : i + 2;
  return escape_line_ends(d.substr(from, to - from));
}

// Each octet's value in the base64 alphabet, kNotBase64 if it is none ('=' included).
constexpr std::uint8_t kNotBase64 = 0xff;
constexpr auto kBase64Value = [] {
  std::array<std::uint8_t, 256> table{};
  table.fill(kNotBase64);
  constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t v = 0; v < alphabet.size(); ++v)
    table[static_cast<unsigned char>(alphabet[v])] = static_cast<std::uint8_t>(v);
  return table;
}();

std::uint8_t base64_value(char c) {
  return kBase64Value[static_cast<unsigned char>(c)];
}

// True if a line end follows at `j`: "\n", or "\r\n" (wrapped_width_before takes one CR before
// the LF for part of the line end, not of the line).
bool line_end_follows(std::string_view bytes, std::size_t j) {
  return j < bytes.size() &&
         (bytes[j] == '\n' || (bytes[j] == '\r' && j + 1 < bytes.size() && bytes[j + 1] == '\n'));
}

// scan_for_credentials' look at every run of base64 characters in `bytes`.
void scan_base64_runs(std::string_view bytes, std::size_t width_before, bool message_body,
                      std::string_view pw, std::vector<CredentialFinding>& found) {
  // Every run of base64 characters long enough to hold "\0u\0p" (8 characters). A run never
  // holds a line end, so the lines are followed as the runs are found: whether a run continues
  // a wrapped encoding depends on the line before it, whose width is known by the time the run
  // is reached and is never searched for again.
  smtp::Secret decoded;
  std::size_t line_start = 0;
  std::size_t width_of_line_before = width_before;  // wrapped_width_before(bytes, line_start)
  std::size_t width_of_line = 0;                    // the current line's, once a run fills it
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    if (!smtp::is_base64_char(bytes[i])) {
      if (bytes[i] == '\n') {
        width_of_line_before = width_of_line;
        width_of_line = 0;
        line_start = i + 1;
      }
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    bool padded = bytes[i] == '=';
    for (; j < n && smtp::is_base64_char(bytes[j]); ++j) padded |= bytes[j] == '=';
    const std::string_view token = bytes.substr(i, j - i);
    const bool starts_line = i == line_start;
    if (starts_line && line_end_follows(bytes, j))  // the line is this run alone
      width_of_line = padded || token.size() % 4 != 0 ? 0 : token.size();
    if (token.size() >= 8) {
      // A line of a wrapped encoding: the run is a whole line (the end of `bytes` counts as a
      // line end: a stored piece may stop inside a line), no wider than the line before it.
      const bool ends_line = j == n || bytes[j] == '\r' || bytes[j] == '\n';
      const bool slice = starts_line && ends_line && width_of_line_before > 0 &&
                         width_of_line_before >= token.size();
      const bool judge_plain = !slice && (message_body || smtp::stands_alone(bytes, i, j - i));
      scan_base64_token(token, i, judge_plain, message_body, pw, decoded, found);
    }
    i = j;
  }
}

// The base64 words of `bytes` (not a message body) the runs above cannot read whole, as the
// dialogue reads a word pasted into a line (smtp::find_credential_words): one in the URL-safe
// alphabet, without its padding, or run on from what comes before it ("AUTH=<blob>"). Recorded
// in clear by mailtaps before the dialogue redacted them. A word that is exactly one of those
// runs was judged there, by its place in the lines too.
void scan_other_base64_words(std::string_view bytes, std::vector<CredentialFinding>& found) {
  for (smtp::CredentialWord& w : smtp::find_credential_words(bytes)) {
    const std::string_view word = bytes.substr(w.at, w.size);
    const bool whole_run =
        (w.at == 0 || !smtp::is_base64_char(bytes[w.at - 1])) &&
        (w.at + w.size == bytes.size() || !smtp::is_base64_char(bytes[w.at + w.size])) &&
        std::none_of(word.begin(), word.end(), smtp::is_base64url_only_char);
    if (whole_run && w.size % 4 == 0) continue;
    if (w.plain) found.push_back({w.at, "base64 SASL PLAIN blob (user " + quoted(w.user) + ")"});
    if (w.bearer) found.push_back({w.at, "base64 XOAUTH2/OAUTHBEARER blob with a bearer token"});
  }
}

}  // namespace

bool decode_base64_for_scan(std::string_view text, smtp::Secret& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  if (text.empty()) return true;
  char* at = out.extend(text.size() / 4 * 3);
  if (at == nullptr) return false;
  const auto* in = text.data();
  const std::size_t last = text.size() - 4;  // the final quantum, the only one with '='
  std::size_t o = 0;
  for (std::size_t i = 0; i < last; i += 4) {
    const std::uint8_t a = base64_value(in[i]), b = base64_value(in[i + 1]),
                       c = base64_value(in[i + 2]), d = base64_value(in[i + 3]);
    if (((a | b | c | d) & 0xc0) != 0) {  // kNotBase64 among them
      out.clear();
      return false;
    }
    at[o++] = static_cast<char>((a << 2) | (b >> 4));
    at[o++] = static_cast<char>(((b & 0x0f) << 4) | (c >> 2));
    at[o++] = static_cast<char>(((c & 0x03) << 6) | d);
  }
  const std::uint8_t a = base64_value(in[last]), b = base64_value(in[last + 1]);
  const bool pad2 = in[last + 2] == '=' && in[last + 3] == '=';
  const bool pad1 = !pad2 && in[last + 3] == '=';
  const std::uint8_t c = pad2 ? 0 : base64_value(in[last + 2]);
  const std::uint8_t d = pad1 || pad2 ? 0 : base64_value(in[last + 3]);
  // Pad bits must be zero: "Zh==" is not "Zg==" (one value, one encoding).
  const bool canonical = !(pad2 && (b & 0x0f) != 0) && !(pad1 && (c & 0x03) != 0);
  if (((a | b | c | d) & 0xc0) != 0 || !canonical) {
    out.clear();
    return false;
  }
  at[o++] = static_cast<char>((a << 2) | (b >> 4));
  if (!pad2) at[o++] = static_cast<char>(((b & 0x0f) << 4) | (c >> 2));
  if (!pad1 && !pad2) at[o++] = static_cast<char>(((c & 0x03) << 6) | d);
  out.truncate(o);
  return true;
}

std::size_t wrapped_width_before(std::string_view bytes, std::size_t line_start,
                                 std::size_t width_before) {
  if (line_start == 0) return width_before;
  std::size_t end = line_start - 1;  // the '\n' that ends the line before
  if (end > 0 && bytes[end - 1] == '\r') --end;
  const std::size_t nl = end == 0 ? std::string_view::npos : bytes.rfind('\n', end - 1);
  const std::size_t begin = nl == std::string_view::npos ? 0 : nl + 1;
  const std::string_view line = bytes.substr(begin, end - begin);
  if (line.empty() || line.size() % 4 != 0) return 0;
  for (char c : line)
    if (c == '=' || !smtp::is_base64_char(c)) return 0;
  return line.size();
}

std::vector<CredentialFinding> scan_for_credentials(std::string_view bytes,
                                                    const CredentialScanOptions& options,
                                                    std::size_t width_before, bool message_body) {
  std::vector<CredentialFinding> found;
  std::size_t at = 0;
  if (smtp::find_bearer_token(bytes, at))
    found.push_back({at, "OAuth bearer token (auth=Bearer) in clear", /*first_only=*/true});
  const std::string_view pw = options.known_password();
  if (!pw.empty()) {
    if (auto p = bytes.find(pw); p != std::string_view::npos)
      found.push_back({p, "the --password-env password, in clear", /*first_only=*/true});
    if (auto p = bytes.find(options.known_password_base64()); p != std::string_view::npos)
      found.push_back({p, "the --password-env password, base64-encoded", /*first_only=*/true});
  }

  scan_base64_runs(bytes, width_before, message_body, pw, found);
  if (!message_body) scan_other_base64_words(bytes, found);
  return found;
}

std::vector<SmugglingShape> find_smuggling_shapes(std::string_view d) {
  std::vector<SmugglingShape> out;
  for (std::size_t i = d.find('.', 1); i != std::string_view::npos && i + 1 < d.size();
       i = d.find('.', i + 1)) {
    if (std::string shape = shape_at(d, i); !shape.empty()) out.push_back({i, std::move(shape)});
  }
  return out;
}

void SmugglingShapeStream::judge(std::string_view d, std::uint64_t start, std::uint64_t from,
                                 std::uint64_t to, std::vector<SmugglingShape>& out) {
  if (from > to || to < start) return;
  for (std::size_t i = d.find('.', static_cast<std::size_t>(from - start));
       i != std::string_view::npos && start + i <= to; i = d.find('.', i + 1)) {
    if (std::string shape = shape_at(d, i); !shape.empty())
      out.push_back({static_cast<std::size_t>(start + i), std::move(shape)});
  }
}

// A '.' at stream offset g is judged once the stream holds g + 2 (find_smuggling_shapes looks
// at most two octets either side of it; it is at least 1): by an earlier add() when g + 2 < the
// stream's length then, so this piece judges from the old length - 2 on. Those near the start
// of the piece are judged with the carried tail before them (a few octets joined, never the
// piece), the rest in the piece itself.
void SmugglingShapeStream::add(std::string_view bytes, std::vector<SmugglingShape>& out) {
  if (bytes.empty()) return;
  const std::uint64_t old_end = end_;
  end_ += bytes.size();
  if (end_ >= 3) {
    const std::uint64_t from = std::max<std::uint64_t>(1, old_end < 2 ? 0 : old_end - 2);
    const std::uint64_t to = end_ - 3;
    std::string joined = tail_;
    joined.append(bytes.substr(0, 4));
    judge(joined, old_end - tail_.size(), from, std::min(to, old_end + 1), out);
    judge(bytes, old_end, std::max(from, old_end + 2), to, out);
  }
  if (bytes.size() >= 4) {
    tail_.assign(bytes.substr(bytes.size() - 4));
  } else {
    tail_.append(bytes);
    if (tail_.size() > 4) tail_.erase(0, tail_.size() - 4);
  }
}

void SmugglingShapeStream::finish(std::vector<SmugglingShape>& out) {
  if (end_ >= 3) judge(tail_, end_ - tail_.size(), end_ - 2, end_ - 2, out);
  tail_.clear();
  end_ = 0;
}

}  // namespace mailtap::tools
