// The reply a client gets when mailtap's own AUTH failed: one SMTP reply line that keeps the
// server's code (basic and RFC 3463 enhanced) and says, in words, what happened and what to do:
//
//   534 5.7.9 mailtap: smtp.gmail.com refused AUTH PLAIN as alice@gmail.com: 534-5.7.9
//   Application-specific password required (see https://...); create an app password ...
//
// (one line on the wire). Failures that never reached the server use mailtap's own code:
// 454 4.7.0 (no token, unusable credentials), 504 5.5.4 (no usable mechanism), 500 5.5.6 (a
// response over RFC 4954's line limit). The table is in docs/auth.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/sasl_client.hpp"
#include "proxy/smtp/sasl_mechanism.hpp"

namespace mailtap::smtp {

struct AuthAttempt {
  std::optional<Mechanism> mechanism;  // nullopt when none could be chosen
  std::string_view user;
  std::string_view upstream_host;  // "smtp.gmail.com" (no port)
  // The token had just been fetched by running the token command (not taken from the cache),
  // so "expired" points at the command, not at mailtap's cache.
  bool fresh_token = false;
};

// At most this many octets, CRLF excluded (RFC 5321 §4.5.3.1.5 allows 512 with CRLF).
inline constexpr std::size_t kMaxExplanation = 510;

// One reply line without CRLF: printable ASCII, at most kMaxExplanation octets, never a secret.
std::string explain_auth_failure(const AuthAttempt& attempt, const SaslFailure& failure);

}  // namespace mailtap::smtp
