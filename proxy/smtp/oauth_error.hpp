// The error a server sends when it refuses an OAuth bearer token during XOAUTH2 or OAUTHBEARER:
// a "334 <base64 JSON>" challenge (RFC 7628 §3.2.2; Google's XOAUTH2 uses the same form), which
// the client must answer (empty line for XOAUTH2, "AQ==" for OAUTHBEARER) before the final 535.
// Read leniently: Gmail sends
// {"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}, Google's documentation
// shows "401" and a trailing newline, RFC 7628 "invalid_token"; a number is accepted where a string
// belongs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailtap::smtp {

struct OAuthError {
  // Each value printable ASCII (other bytes become '?') and at most 200 characters, so it can go
  // into an SMTP reply or a log line as it is. Empty when the member is absent.
  std::string status;  // "400", "401", "invalid_token", ...
  std::string schemes;
  std::string scope;
  std::string openid_configuration;

  enum class Meaning : std::uint8_t {
    invalid_token,  // 401 / invalid_token: expired or revoked
    wrong_scope,    // 400 with a scope, 403 / insufficient_scope: the token lacks the scope
    other,
  };
  Meaning meaning() const;
  // "status 400, scope https://mail.google.com/" (the members present), for messages.
  std::string summary() const;
};

// `json` is the decoded challenge. nullopt if it is not a JSON object.
std::optional<OAuthError> parse_oauth_error(std::string_view json);

}  // namespace mailtap::smtp
