#include "proxy/smtp/sasl_mechanism.hpp"

#include <algorithm>

#include "proxy/smtp/command.hpp"

namespace mailtap::smtp {
namespace {

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

}  // namespace

std::string_view to_string(Mechanism m) {
  switch (m) {
    case Mechanism::xoauth2:
      return "XOAUTH2";
    case Mechanism::oauthbearer:
      return "OAUTHBEARER";
    case Mechanism::plain:
      return "PLAIN";
    case Mechanism::login:
      return "LOGIN";
    case Mechanism::cram_md5:
      return "CRAM-MD5";
  }
  return "?";
}

std::optional<Mechanism> parse_mechanism(std::string_view name) {
  for (Mechanism m : {Mechanism::xoauth2, Mechanism::oauthbearer, Mechanism::plain,
                      Mechanism::login, Mechanism::cram_md5}) {
    if (iequals(name, to_string(m))) return m;
  }
  return std::nullopt;
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
                     ", none of which mailtap speaks (XOAUTH2, OAUTHBEARER, PLAIN, LOGIN, "
                     "CRAM-MD5)";
  }
  return choice;
}

}  // namespace mailtap::smtp
