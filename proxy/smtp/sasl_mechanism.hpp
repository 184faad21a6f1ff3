// The registered SASL mechanism names and how mailtap reads each one's exchange; the mechanisms
// mailtap can authenticate with itself, and which one to use against what a server offers after
// TLS.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::smtp {

enum class Mechanism : std::uint8_t { xoauth2, oauthbearer, plain, login, cram_md5 };

// How the record reads the messages of an exchange under a registered name: each mechanism
// mailtap speaks by its own grammar, SCRAM-SHA-1/256/512 (RFC 5802) by theirs; under any other
// name (GSSAPI, NTLM, ...) a non-empty message may carry ticket or hash material, so it is
// redacted whole.
enum class MechanismFamily : std::uint8_t {
  opaque,
  plain,
  login,
  cram_md5,
  xoauth2,
  oauthbearer,
  scram
};

struct RegisteredMechanism {
  std::string_view name;  // as registered: upper case
  MechanismFamily family;
};

// The names of the IANA SASL mechanism registry: the one list that the record (which words after
// AUTH it keeps, and how it reads the exchange), parse_mechanism and to_string read.
std::span<const RegisteredMechanism> registered_mechanisms();
// The entry named `name`, case-insensitive as SMTP arguments are; nullptr for any other word.
// Compared in place: the word may be a password typed where the name goes, so no copy is made.
const RegisteredMechanism* find_registered_mechanism(std::string_view name);
// The mechanism mailtap speaks that reads its exchange so, if any.
std::optional<Mechanism> spoken_mechanism(MechanismFamily family);

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
