#include "proxy/smtp/credential_shape.hpp"

#include <optional>

#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

bool is_plain_message(std::string_view decoded, std::string& user) {
  const auto nul1 = decoded.find('\0');
  if (nul1 == std::string_view::npos) return false;
  const auto nul2 = decoded.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos) return false;
  if (decoded.find('\0', nul2 + 1) != std::string_view::npos) return false;
  const auto authzid = decoded.substr(0, nul1);
  const auto authcid = decoded.substr(nul1 + 1, nul2 - nul1 - 1);
  const auto passwd = decoded.substr(nul2 + 1);
  if (authcid.empty() || passwd.empty()) return false;
  if (has_control(authzid) || has_control(authcid) || has_control(passwd)) return false;
  user = std::string(authcid);
  return true;
}

bool find_bearer_token(std::string_view s, std::size_t& at) {
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

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

bool is_encoded_credential(std::string_view line) {
  // "\0u\0p" is the shortest PLAIN message: 8 characters of base64.
  if (line.size() < 8) return false;
  for (char c : line) {
    if (!is_base64_char(c)) return false;
  }
  const std::optional<Secret> decoded = base64_decode_secret(line);
  if (!decoded) return false;
  std::string user;
  std::size_t at = 0;
  return is_plain_message(decoded->view(), user) || find_bearer_token(decoded->view(), at);
}

}  // namespace mailtap::smtp
