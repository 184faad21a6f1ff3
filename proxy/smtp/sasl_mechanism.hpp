// The SASL mechanisms mailtap can authenticate with itself, and which one to use against what a
// server offers after TLS.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::smtp {

enum class Mechanism : std::uint8_t { xoauth2, oauthbearer, plain, login, cram_md5 };

std::string_view to_string(Mechanism m);                          // "XOAUTH2", "CRAM-MD5", ...
std::optional<Mechanism> parse_mechanism(std::string_view name);  // case-insensitive
// XOAUTH2 and OAUTHBEARER take an OAuth access token; the others a password.
bool takes_token(Mechanism m);

struct MechanismChoice {
  std::optional<Mechanism> mechanism;
  // Why nothing was chosen (printable, names only what the server offered): for the reply.
  std::string refusal;
};

// `offered` is Capabilities::auth_mechanisms of the EHLO reply after TLS. With a token: XOAUTH2,
// then OAUTHBEARER; with a password: PLAIN, then LOGIN, then CRAM-MD5. XOAUTH2 comes first
// because it is the one both large providers implement (Microsoft 365 offers no OAUTHBEARER)
// and test most, and it carries no host/port that a proxy could get wrong; the two fail the
// same way and mailtap explains both. With both a token and a password, the token wins.
MechanismChoice choose_mechanism(const std::vector<std::string>& offered, bool have_password,
                                 bool have_token);

}  // namespace mailtap::smtp
