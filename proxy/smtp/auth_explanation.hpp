// The reply a client gets when mailtap's own AUTH failed: one SMTP reply line that quotes what
// the server said (its code, basic and RFC 3463 enhanced, and its first line) and says, in
// words, what happened and what to do:
//
//   454 4.7.0 mailtap: smtp.gmail.com refused AUTH PLAIN as alice@gmail.com: 534-5.7.9
//   Application-specific password required (see https://...); create an app password ...
//
// (one line on the wire). Every such failure, the server's refusal as much as one that never
// reached the server (no token, no usable mechanism, unusable credentials), answers with the
// one code kOwnAuthFailureCode. The table is in docs/auth.md.
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

// The code of every reply that explains a failure of mailtap's own AUTH, whatever the server
// answered. The failure is of mailtap's configuration (its user, secret or token command), not
// of the client's message: a 5xx to MAIL makes a relaying MTA (Postfix, Exim) bounce every
// message it has queued, where its own SASL client would defer them (Postfix's
// smtp_sasl_auth_soft_bounce). A 4xx has it try again, and deliver once mailtap is fixed. RFC
// 4954's "454 4.7.0 Temporary authentication failure", as the token command's failure always
// answered; the server's own code stays quoted in the text.
inline constexpr std::string_view kOwnAuthFailureCode = "454 4.7.0";

// At most this many octets, CRLF excluded (RFC 5321 §4.5.3.1.5 allows 512 with CRLF).
inline constexpr std::size_t kMaxExplanation = 510;

// A user name as mailtap's replies and notes quote one (escaped_value: lossless, \xHH), at most
// its first 100 octets, so that a reply quoting it stays one reply line (a name's octets may
// each take four there).
std::string quoted_user_name(std::string_view user);

// One reply line without CRLF: printable ASCII, at most kMaxExplanation octets, never a secret.
std::string explain_auth_failure(const AuthAttempt& attempt, const SaslFailure& failure);

}  // namespace mailtap::smtp
