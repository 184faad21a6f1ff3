#include "proxy/smtp/sasl_responses.hpp"

#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>

#include <charconv>

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"

namespace mailtap::smtp {
namespace {

constexpr std::string_view kBearer = "auth=Bearer ";

}  // namespace

Secret plain_response(std::string_view authzid, std::string_view user, std::string_view password) {
  Secret out(authzid.size() + 1 + user.size() + 1 + password.size());
  out.append(authzid);
  out.push_back('\0');
  out.append(user);
  out.push_back('\0');
  out.append(password);
  return out;
}

Secret xoauth2_response(std::string_view user, std::string_view token) {
  constexpr std::string_view kUser = "user=";
  Secret out(kUser.size() + user.size() + 1 + kBearer.size() + token.size() + 2);
  out.append(kUser);
  out.append(user);
  out.push_back('\x01');
  out.append(kBearer);
  out.append(token);
  out.append("\x01\x01");
  return out;
}

Secret oauthbearer_response(std::string_view user, std::string_view host,
                            std::optional<std::uint16_t> port, std::string_view token) {
  char port_text[8] = {};
  std::size_t port_len = 0;
  if (port)
    port_len = std::to_chars(port_text, port_text + sizeof port_text, *port).ptr - port_text;
  // saslname (RFC 5801): ',' and '=' become "=2C" and "=3D".
  std::size_t user_size = user.size();
  for (char c : user) user_size += c == ',' || c == '=' ? 2 : 0;
  Secret out(4 + user_size + 2 + (host.empty() ? 0 : 6 + host.size()) + (port ? 6 + port_len : 0) +
             kBearer.size() + token.size() + 2);
  out.append("n,a=");
  for (char c : user) {
    if (c == ',') {
      out.append("=2C");
    } else if (c == '=') {
      out.append("=3D");
    } else {
      out.push_back(c);
    }
  }
  out.append(",\x01");
  if (!host.empty()) {
    out.append("host=");
    out.append(host);
    out.push_back('\x01');
  }
  if (port) {
    out.append("port=");
    out.append(std::string_view(port_text, port_len));
    out.push_back('\x01');
  }
  out.append(kBearer);
  out.append(token);
  out.append("\x01\x01");
  return out;
}

Secret cram_md5_response(std::string_view user, std::string_view password,
                         std::string_view challenge) {
  std::uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  Secret out(user.size() + 1 + 32);
  if (HMAC(EVP_md5(), password.data(), password.size(),
           reinterpret_cast<const std::uint8_t*>(challenge.data()), challenge.size(), mac,
           &mac_len) == nullptr ||
      mac_len != 16) {
    OPENSSL_cleanse(mac, sizeof mac);
    return out;  // empty: the caller reports the failure
  }
  out.append(user);
  out.push_back(' ');
  for (unsigned i = 0; i < mac_len; ++i) append_hex(out, mac[i]);
  OPENSSL_cleanse(mac, sizeof mac);
  return out;
}

bool is_bearer_token(std::string_view token) {
  std::size_t i = 0;
  for (; i < token.size(); ++i) {
    const char c = token[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  while (i < token.size() && token[i] == '=') ++i;  // *"=" only at the end
  return i == token.size();
}

std::string credentials_problem(Mechanism m, std::string_view user, std::string_view secret) {
  if (user.empty()) return "the user name is empty";
  if (has_control(user)) return "the user name contains control characters";
  if (secret.empty()) return takes_token(m) ? "the access token is empty" : "the password is empty";
  if (takes_token(m)) {
    if (!is_bearer_token(secret)) {
      return "the access token has characters a bearer token cannot have (RFC 6750: letters, "
             "digits, -._~+/ and trailing =)";
    }
  } else if (m == Mechanism::plain && secret.find('\0') != std::string_view::npos) {
    return "the password contains a NUL byte, which AUTH PLAIN cannot carry";
  }
  return {};
}

}  // namespace mailtap::smtp
