// What --oauth2-token-cmd must print on stdout (it must also exit 0):
//
//   1. the access token alone on the first line, as `oama access`, `pizauth show` and
//      mutt_oauth2.py print it; optionally a later line `expires_in=SECONDS`; or
//   2. a token endpoint's JSON response (RFC 6749 §5.1), so `curl -s .../token -d ...` works
//      as it is: "access_token" (string) and optionally "expires_in" (seconds, number or string).
//      A JSON "error" member is reported as the failure ("error_description" too).
//
// The token must be an RFC 6750 b64token (letters, digits, -._~+/ and trailing =). Spaces and
// tabs around it on its line are dropped, and a CR after it; a first line with a space or a control
// character inside is an error message or a notice, not a token, and is refused without being
// quoted.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/secret.hpp"

namespace mailtap::secrets {

struct TokenOutput {
  smtp::Secret token;
  std::optional<std::chrono::seconds> expires_in;
};

struct TokenParse {
  std::optional<TokenOutput> value;
  std::string error;  // "printed nothing", ...: to follow the option name
};

TokenParse parse_token_output(std::string_view output);

}  // namespace mailtap::secrets
