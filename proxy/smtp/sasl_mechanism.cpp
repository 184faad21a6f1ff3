#include "proxy/smtp/sasl_mechanism.hpp"

#include <algorithm>

#include "proxy/smtp/command.hpp"

namespace mailtap::smtp {
namespace {

// Only these words after AUTH are kept in the record: RFC 4422's sasl-mech grammar alone (up to
// 20 of A-Z 0-9 - _) also fits a PLAIN blob pasted without "PLAIN" ("AUTH AGFsaWNlAHB3") and a
// password typed in its place ("AUTH hunter2"), so any other word is taken as a secret. A fixed
// list, not the EHLO offer: `mailtap decode` and the record must render a line alike, and decode
// never sees the server.
constexpr RegisteredMechanism kRegistered[] = {
    {"PLAIN", MechanismFamily::plain},
    {"LOGIN", MechanismFamily::login},
    {"CRAM-MD5", MechanismFamily::cram_md5},
    {"DIGEST-MD5", MechanismFamily::opaque},
    {"XOAUTH2", MechanismFamily::xoauth2},
    {"OAUTHBEARER", MechanismFamily::oauthbearer},
    {"XOAUTH", MechanismFamily::opaque},
    {"GSSAPI", MechanismFamily::opaque},
    {"GSS-SPNEGO", MechanismFamily::opaque},
    {"NTLM", MechanismFamily::opaque},
    {"EXTERNAL", MechanismFamily::opaque},
    {"ANONYMOUS", MechanismFamily::opaque},
    {"OTP", MechanismFamily::opaque},
    {"SKEY", MechanismFamily::opaque},
    {"SECURID", MechanismFamily::opaque},
    {"SAML20", MechanismFamily::opaque},
    {"OPENID20", MechanismFamily::opaque},
    {"KERBEROS_V4", MechanismFamily::opaque},
    {"KERBEROS_V5", MechanismFamily::opaque},
    // The SCRAM and GS2 families' registered members, by name: a prefix alone ("GS2-...") would
    // keep a password that happens to start with it.
    {"SCRAM-SHA-1", MechanismFamily::scram},
    {"SCRAM-SHA-1-PLUS", MechanismFamily::scram},
    {"SCRAM-SHA-256", MechanismFamily::scram},
    {"SCRAM-SHA-256-PLUS", MechanismFamily::scram},
    {"SCRAM-SHA-512", MechanismFamily::scram},
    {"SCRAM-SHA-512-PLUS", MechanismFamily::scram},
    // Not yet read as SCRAM: its messages are redacted whole.
    {"SCRAM-SHA3-512", MechanismFamily::opaque},
    {"SCRAM-SHA3-512-PLUS", MechanismFamily::opaque},
    {"GS2-KRB5", MechanismFamily::opaque},
    {"GS2-KRB5-PLUS", MechanismFamily::opaque},
};

constexpr Mechanism kTokenOrder[] = {Mechanism::xoauth2, Mechanism::oauthbearer};
constexpr Mechanism kPasswordOrder[] = {Mechanism::plain, Mechanism::login, Mechanism::cram_md5};

bool offers(const std::vector<std::string>& offered, Mechanism m) {
  return std::any_of(offered.begin(), offered.end(),
                     [m](const std::string& name) { return iequals(name, to_string(m)); });
}

// "AUTH PLAIN LOGIN" as the server offered it, bounded so a silly list cannot flood a reply.
std::string offered_list(const std::vector<std::string>& offered) {
  std::string out;
  for (std::size_t i = 0; i < offered.size(); ++i) {
    if (i == 8) {
      out += " ...";
      break;
    }
    out += ' ';
    out += offered[i];
  }
  return "AUTH" + out;
}

// "XOAUTH2, OAUTHBEARER, PLAIN, LOGIN, CRAM-MD5": in the order they are chosen.
std::string spoken_list() {
  std::string out;
  const auto add = [&out](Mechanism m) {
    if (!out.empty()) out += ", ";
    out += to_string(m);
  };
  for (Mechanism m : kTokenOrder) add(m);
  for (Mechanism m : kPasswordOrder) add(m);
  return out;
}

}  // namespace

std::span<const RegisteredMechanism> registered_mechanisms() {
  return kRegistered;
}

const RegisteredMechanism* find_registered_mechanism(std::string_view name) {
  for (const RegisteredMechanism& m : kRegistered) {
    if (iequals(name, m.name)) return &m;
  }
  return nullptr;
}

std::optional<Mechanism> spoken_mechanism(MechanismFamily family) {
  switch (family) {
    case MechanismFamily::plain:
      return Mechanism::plain;
    case MechanismFamily::login:
      return Mechanism::login;
    case MechanismFamily::cram_md5:
      return Mechanism::cram_md5;
    case MechanismFamily::xoauth2:
      return Mechanism::xoauth2;
    case MechanismFamily::oauthbearer:
      return Mechanism::oauthbearer;
    case MechanismFamily::opaque:
    case MechanismFamily::scram:
      break;
  }
  return std::nullopt;
}

std::string_view to_string(Mechanism m) {
  for (const RegisteredMechanism& r : kRegistered) {
    if (spoken_mechanism(r.family) == m) return r.name;
  }
  return "?";
}

std::optional<Mechanism> parse_mechanism(std::string_view name) {
  const RegisteredMechanism* m = find_registered_mechanism(name);
  return m != nullptr ? spoken_mechanism(m->family) : std::nullopt;
}

bool takes_token(Mechanism m) {
  return m == Mechanism::xoauth2 || m == Mechanism::oauthbearer;
}

MechanismChoice choose_mechanism(const std::vector<std::string>& offered, bool have_password,
                                 bool have_token) {
  MechanismChoice choice;
  if (!have_password && !have_token) {
    choice.refusal =
        "no password or token was given (--password-env, --password-file, --password-cmd, or "
        "--oauth2-token-cmd)";
    return choice;
  }
  if (offered.empty()) {
    choice.refusal =
        "the server offers no AUTH after TLS (it may not need it here, or want it on another "
        "port)";
    return choice;
  }
  if (have_token) {
    for (Mechanism m : kTokenOrder) {
      if (offers(offered, m)) return {m, {}};
    }
  }
  if (have_password) {
    for (Mechanism m : kPasswordOrder) {
      if (offers(offered, m)) return {m, {}};
    }
  }
  const bool offers_token =
      offers(offered, Mechanism::xoauth2) || offers(offered, Mechanism::oauthbearer);
  const bool offers_password = std::any_of(std::begin(kPasswordOrder), std::end(kPasswordOrder),
                                           [&](Mechanism m) { return offers(offered, m); });
  if (have_token && !have_password && offers_password) {
    choice.refusal = "the server offers " + offered_list(offered) +
                     ": no XOAUTH2 or OAUTHBEARER for an OAuth token; give a password instead";
  } else if (have_password && !have_token && offers_token) {
    choice.refusal = "the server offers " + offered_list(offered) +
                     ": it takes OAuth tokens, not passwords; give --oauth2-token-cmd";
  } else {
    choice.refusal = "the server offers " + offered_list(offered) +
                     ", none of which mailtap speaks (" + spoken_list() + ")";
  }
  return choice;
}

}  // namespace mailtap::smtp
