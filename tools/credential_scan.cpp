#include "tools/credential_scan.hpp"

#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {

namespace {

bool is_b64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

bool printable_text(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '?';
    }
  }
  return out + "\"";
}

// A bearer token in clear: "auth=Bearer " followed by something other than a redaction.
bool has_bearer_token(std::string_view s, std::size_t& at) {
  constexpr std::string_view kMarker = "auth=Bearer ";
  std::size_t pos = 0;
  while ((pos = s.find(kMarker, pos)) != std::string_view::npos) {
    const std::size_t v = pos + kMarker.size();
    if (v < s.size() && s[v] != '<' && s[v] != '\x01' && s[v] != ' ' && s[v] != '\r' &&
        s[v] != '\n') {
      at = pos;
      return true;
    }
    pos = v;
  }
  return false;
}

}  // namespace

bool looks_like_plain_blob(std::string_view decoded, std::string& user) {
  const auto nul1 = decoded.find('\0');
  if (nul1 == std::string_view::npos) return false;
  const auto nul2 = decoded.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos) return false;
  if (decoded.find('\0', nul2 + 1) != std::string_view::npos) return false;
  const auto authzid = decoded.substr(0, nul1);
  const auto authcid = decoded.substr(nul1 + 1, nul2 - nul1 - 1);
  const auto passwd = decoded.substr(nul2 + 1);
  if (authcid.empty() || passwd.empty()) return false;
  if (!printable_text(authzid) || !printable_text(authcid) || !printable_text(passwd)) return false;
  user = std::string(authcid);
  return true;
}

bool looks_like_base64_text(std::string_view line) {
  if (line.empty() || line == "=" || line == "*") return false;
  for (char c : line)
    if (!is_b64_char(c)) return false;
  // Decoded into a Secret: what is decoded may be a password, wiped when it goes.
  const std::optional<smtp::Secret> decoded = smtp::base64_decode_secret(line);
  return decoded && !decoded->empty() && printable_text(decoded->view());
}

namespace {

// What a run of base64 characters at `at` gives away once decoded.
void scan_base64_token(std::string_view token, std::size_t at, const std::string& pw,
                       std::vector<CredentialFinding>& found) {
  const std::optional<smtp::Secret> decoded = smtp::base64_decode_secret(token);
  if (!decoded) return;
  const std::string_view d = decoded->view();
  std::string user;
  if (looks_like_plain_blob(d, user))
    found.push_back({at, "base64 SASL PLAIN blob (user " + quoted(user) + ")"});
  std::size_t b = 0;
  if (has_bearer_token(d, b))
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

}  // namespace

std::vector<CredentialFinding> scan_for_credentials(std::string_view bytes,
                                                    const CredentialScanOptions& options) {
  std::vector<CredentialFinding> found;
  std::size_t at = 0;
  if (has_bearer_token(bytes, at))
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
    if (!is_b64_char(bytes[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < bytes.size() && is_b64_char(bytes[j])) ++j;
    const std::string_view token = bytes.substr(i, j - i);
    if (token.size() >= 8) scan_base64_token(token, i, pw, found);
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
