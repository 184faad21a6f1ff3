#include "tools/credential_scan.hpp"

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

bool looks_like_base64_text(std::string_view line) {
  if (line.empty() || line == "=" || line == "*") return false;
  for (char c : line)
    if (!smtp::is_base64_char(c)) return false;
  // Decoded into a Secret: what is decoded may be a password, wiped when it goes.
  const std::optional<smtp::Secret> decoded = smtp::base64_decode_secret(line);
  return decoded && !decoded->empty() && !has_control(decoded->view());
}

namespace {

// What a run of base64 characters at `at` gives away once decoded. `slice`: the run is a line of
// a wrapped encoding, whose octets are cut wherever the line width falls.
// True if `d` is a PLAIN message by the test for where it was found; `user` gets its authcid.
bool plain_message(std::string_view d, bool message_body, std::string& user) {
  if (message_body) return smtp::is_plain_message(d, user);
  if (!smtp::has_plain_message_shape(d)) return false;
  const std::size_t first = d.find('\0');
  user = std::string(d.substr(first + 1, d.find('\0', first + 1) - first - 1));
  return true;
}

void scan_base64_token(std::string_view token, std::size_t at, bool slice, bool message_body,
                       const std::string& pw, std::vector<CredentialFinding>& found) {
  const std::optional<smtp::Secret> decoded = smtp::base64_decode_secret(token);
  if (!decoded) return;
  const std::string_view d = decoded->view();
  std::string user;
  if (!slice && plain_message(d, message_body, user))
    found.push_back({at, "base64 SASL PLAIN blob (user " + quoted(user) + ")"});
  std::size_t b = 0;
  if (smtp::find_bearer_token(d, b))
    found.push_back({at, "base64 XOAUTH2/OAUTHBEARER blob with a bearer token"});
  if (!pw.empty() && d.find(pw) != std::string_view::npos && d != pw)
    found.push_back({at, "the --password-env password, inside a base64 blob"});
}

// The run [i, j) of base64 characters is a whole line (the end of `bytes` counts as a line end:
// a stored piece may stop inside a line) that continues a wrapped encoding.
bool continues_wrapped_encoding(std::string_view bytes, std::size_t i, std::size_t j,
                                std::size_t width_before) {
  if (i > 0 && bytes[i - 1] != '\n') return false;
  if (j < bytes.size() && bytes[j] != '\r' && bytes[j] != '\n') return false;
  const std::size_t width = wrapped_width_before(bytes, i, width_before);
  return width > 0 && width >= j - i;
}

// "\r" and "\n" spelled out.
std::string escape_line_ends(std::string_view s) {
  std::string e;
  for (char c : s) e += c == '\r' ? "\\r" : c == '\n' ? "\\n" : std::string(1, c);
  return e;
}

}  // namespace

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
    found.push_back({at, "OAuth bearer token (auth=Bearer) in clear"});
  const std::string& pw = options.known_password;
  if (!pw.empty()) {
    if (auto p = bytes.find(pw); p != std::string_view::npos)
      found.push_back({p, "the --password-env password, in clear"});
    const std::string pw64 = smtp::base64_encode(pw);
    if (auto p = bytes.find(pw64); p != std::string_view::npos)
      found.push_back({p, "the --password-env password, base64-encoded"});
  }

  // Every run of base64 characters long enough to hold "\0u\0p" (8 characters).
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (!smtp::is_base64_char(bytes[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < bytes.size() && smtp::is_base64_char(bytes[j])) ++j;
    const std::string_view token = bytes.substr(i, j - i);
    if (token.size() >= 8)
      scan_base64_token(token, i, continues_wrapped_encoding(bytes, i, j, width_before),
                        message_body, pw, found);
    i = j;
  }
  return found;
}

std::vector<SmugglingShape> find_smuggling_shapes(std::string_view d) {
  std::vector<SmugglingShape> out;
  for (std::size_t i = 1; i + 1 < d.size(); ++i) {
    if (d[i] != '.') continue;
    const char before = d[i - 1], after = d[i + 1];
    if ((before != '\r' && before != '\n') || (after != '\r' && after != '\n')) continue;
    const bool crlf_before = before == '\n' && i >= 2 && d[i - 2] == '\r';
    const bool crlf_after = after == '\r' && i + 2 < d.size() && d[i + 2] == '\n';
    if (crlf_before && crlf_after) continue;  // the real terminator (or a stuffed line)
    // A "\r\n.\r" followed by more text is not a terminator shape for anyone either.
    const std::size_t from = crlf_before ? i - 2 : i - 1;
    const std::size_t to = crlf_after ? i + 3 : i + 2;
    out.push_back({i, escape_line_ends(d.substr(from, to - from))});
  }
  return out;
}

}  // namespace mailtap::tools
