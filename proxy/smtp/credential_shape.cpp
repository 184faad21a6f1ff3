#include "proxy/smtp/credential_shape.hpp"

#include <algorithm>
#include <optional>

#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

namespace {

struct PlainParts {
  std::string_view authzid, authcid, passwd;
};

// authzid NUL authcid NUL passwd, authcid and passwd not empty.
std::optional<PlainParts> split_plain_message(std::string_view decoded) {
  const auto nul1 = decoded.find('\0');
  if (nul1 == std::string_view::npos) return std::nullopt;
  const auto nul2 = decoded.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos) return std::nullopt;
  if (decoded.find('\0', nul2 + 1) != std::string_view::npos) return std::nullopt;
  PlainParts p{decoded.substr(0, nul1), decoded.substr(nul1 + 1, nul2 - nul1 - 1),
               decoded.substr(nul2 + 1)};
  if (p.authcid.empty() || p.passwd.empty()) return std::nullopt;
  return p;
}

// UTF-8 without a control character: C0 and DEL (has_control), and C1 (U+0080..U+009F, encoded
// 0xC2 0x80..0x9F), which no one types in a name or a password.
bool is_printable_utf8(std::string_view s) {
  if (has_control(s) || !is_valid_utf8(s)) return false;
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    if (static_cast<unsigned char>(s[i]) == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0)
      return false;
  }
  return true;
}

}  // namespace

bool is_plain_message(std::string_view decoded, std::string& user) {
  const std::optional<PlainParts> p = split_plain_message(decoded);
  if (!p || !is_printable_utf8(p->authzid) || !is_printable_utf8(p->authcid) ||
      !is_printable_utf8(p->passwd))
    return false;
  user = std::string(p->authcid);
  return true;
}

bool has_plain_message_shape(std::string_view decoded) {
  const std::optional<PlainParts> p = split_plain_message(decoded);
  return p && !has_control(p->authzid) && !has_control(p->authcid) && !has_control(p->passwd);
}

bool has_hand_made_plain_shape(std::string_view decoded) {
  const auto nuls = static_cast<std::size_t>(std::count(decoded.begin(), decoded.end(), '\0'));
  if (nuls == 0 || nuls > 3 || decoded.back() == '\0') return false;
  return std::none_of(decoded.begin(), decoded.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u != 0 && u < 0x20) || u == 0x7f;
  });
}

std::size_t bearer_scheme_length(std::string_view auth_value) {
  constexpr std::string_view kScheme = "Bearer ";
  return iequals(auth_value.substr(0, kScheme.size()), kScheme) ? kScheme.size() : 0;
}

std::string_view bearer_token_at(std::string_view after_scheme) {
  // The spaces find_bearer_token lets stand between the scheme and the token ("Bearer  tok").
  while (!after_scheme.empty() && after_scheme.front() == ' ') after_scheme.remove_prefix(1);
  std::size_t n = 0;
  auto token_char = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
  };
  while (n < after_scheme.size() && token_char(after_scheme[n])) ++n;
  while (n < after_scheme.size() && after_scheme[n] == '=') ++n;
  return after_scheme.substr(0, n);
}

bool find_bearer_token(std::string_view s, std::size_t& at) {
  constexpr std::string_view kKey = "auth=";
  constexpr std::size_t kEquals = 4;  // where its '=' stands
  // Found by its '=', which is rare in text and base64 alike: a search for the whole marker
  // stops at every 'a' (audit searches whole records). The marker cannot overlap itself, so
  // every place it stands is looked at in turn.
  for (std::size_t eq = s.find('=', kEquals); eq != std::string_view::npos;
       eq = s.find('=', eq + 1)) {
    const std::size_t pos = eq - kEquals;
    if (s.substr(pos, kKey.size()) != kKey) continue;
    const std::size_t scheme = bearer_scheme_length(s.substr(eq + 1));
    if (scheme == 0) continue;
    // The redactor hides all that follows the scheme, spaces included: so "Bearer  tok" is a
    // token too.
    std::size_t v = eq + 1 + scheme;
    while (v < s.size() && s[v] == ' ') ++v;
    if (v < s.size() && s[v] != '<' && s[v] != '\x01' && s[v] != '\r' && s[v] != '\n') {
      at = pos;
      return true;
    }
  }
  return false;
}

namespace {

// `word` as canonical base64's standard alphabet spells it, into `out` (of room for
// word.size() + 3): "-" and "_" as "+" and "/", and the padding a client left out put back.
// False if `word` holds a character of neither alphabet or cannot be base64 at all.
bool as_standard_base64(std::string_view word, Secret& out) {
  for (char c : word) {
    if (!is_base64_char(c) && !is_base64url_only_char(c)) return false;
    out.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  if (out.size() % 4 == 1) return false;
  while (out.size() % 4 != 0) out.push_back('=');
  return true;
}

}  // namespace

std::optional<Secret> decode_base64_word(std::string_view word) {
  Secret standard(word.size() + 3);
  if (!as_standard_base64(word, standard)) return std::nullopt;
  return base64_decode_secret(standard.view());
}

namespace {

// "\0u\0p" is the shortest PLAIN message: 7 characters of base64 without its padding.
constexpr std::size_t kShortestEncodedCredential = 7;

// The word [at, at + size) of `text`, if it decodes to a well-formed credential.
std::optional<CredentialWord> credential_word(std::string_view text, std::size_t at,
                                              std::size_t size) {
  if (size < kShortestEncodedCredential) return std::nullopt;
  const std::optional<Secret> decoded = decode_base64_word(text.substr(at, size));
  if (!decoded) return std::nullopt;
  const std::string_view d = decoded->view();
  CredentialWord w{at, size, has_plain_message_shape(d), {}, false};
  if (w.plain) {
    const std::size_t first = d.find('\0');
    w.user = std::string(d.substr(first + 1, d.find('\0', first + 1) - first - 1));
  }
  std::size_t b = 0;
  w.bearer = find_bearer_token(d, b);
  if (!w.plain && !w.bearer) return std::nullopt;
  return w;
}

}  // namespace

bool stands_alone(std::string_view text, std::size_t at, std::size_t size) {
  constexpr std::string_view kBefore = " \t\r\n<:=(\"',;";
  constexpr std::string_view kAfter = " \t\r\n>)\"',;";
  const std::size_t end = at + size;
  return (at == 0 || kBefore.find(text[at - 1]) != std::string_view::npos) &&
         (end >= text.size() || kAfter.find(text[end]) != std::string_view::npos);
}

std::vector<CredentialWord> find_credential_words(std::string_view text) {
  std::vector<CredentialWord> found;
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    if (!is_base64_word_char(text[i]) || text[i] == '=') {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < n && is_base64_word_char(text[j]) && text[j] != '=') ++j;
    while (j < n && text[j] == '=') ++j;
    if (stands_alone(text, i, j - i))
      if (std::optional<CredentialWord> w = credential_word(text, i, j - i))
        found.push_back(std::move(*w));
    i = j;
  }
  return found;
}

std::vector<std::pair<std::size_t, std::size_t>> credential_spans(std::string_view line) {
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (const CredentialWord& w : find_credential_words(line))
    spans.emplace_back(w.at, w.at + w.size);
  // Each bearer token in clear, from its "auth=" (no marker is left for audit to find) to the
  // end of its field; the spaces after the scheme are part of it ("auth=Bearer  tok").
  constexpr std::size_t kKey = 5;  // "auth="
  for (std::size_t from = 0, at = 0;
       from < line.size() && find_bearer_token(line.substr(from), at);) {
    const std::size_t begin = from + at;
    std::size_t v = begin + kKey + bearer_scheme_length(line.substr(begin + kKey));
    while (v < line.size() && line[v] == ' ') ++v;
    const std::size_t end = std::min(line.find_first_of(" \t\x01", v), line.size());
    spans.emplace_back(begin, end);
    from = end;
  }
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<std::size_t, std::size_t>> merged;
  for (const auto& s : spans) {
    if (!merged.empty() && s.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, s.second);
    } else {
      merged.push_back(s);
    }
  }
  return merged;
}

bool is_encoded_credential(std::string_view word) {
  if (word.size() < kShortestEncodedCredential) return false;
  const std::optional<Secret> decoded = decode_base64_word(word);
  if (!decoded) return false;
  std::size_t at = 0;
  return has_hand_made_plain_shape(decoded->view()) || find_bearer_token(decoded->view(), at);
}

bool line_holds_credential(std::string_view line) {
  std::size_t at = 0;
  if (find_bearer_token(line, at)) return true;
  // What the rule for a line with a verb finds ("x=<blob>"), this wider one finds too.
  if (!find_credential_words(line).empty()) return true;
  // Its words, and the words joined: a Secret, as they may be one.
  Secret joined(line.size());
  std::size_t words = 0;
  for (std::size_t i = 0; i < line.size();) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    const std::size_t end = std::min(line.find_first_of(" \t", i), line.size());
    const std::string_view word = line.substr(i, end - i);
    if (is_encoded_credential(word)) return true;
    joined.append(word);
    ++words;
    i = end;
  }
  return words > 1 && is_encoded_credential(joined.view());
}

}  // namespace mailtap::smtp
