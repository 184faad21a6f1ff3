// Which mechanism mailtap picks from what the server offers after TLS.
#include "proxy/smtp/sasl_mechanism.hpp"

#include <gtest/gtest.h>

namespace mailtap::smtp {
namespace {

using Offered = std::vector<std::string>;
const Offered kGmail{"LOGIN", "PLAIN", "XOAUTH2", "PLAIN-CLIENTTOKEN", "OAUTHBEARER", "XOAUTH"};
const Offered kMicrosoft{"LOGIN", "XOAUTH2"};
const Offered kPostfix{"PLAIN", "LOGIN"};

std::optional<Mechanism> pick(const Offered& o, bool password, bool token) {
  return choose_mechanism(o, password, token).mechanism;
}

TEST(SaslMechanism, NamesRoundTrip) {
  for (Mechanism m : {Mechanism::xoauth2, Mechanism::oauthbearer, Mechanism::plain,
                      Mechanism::login, Mechanism::cram_md5}) {
    EXPECT_EQ(parse_mechanism(to_string(m)), m);
  }
  EXPECT_EQ(parse_mechanism("cram-md5"), Mechanism::cram_md5);
  EXPECT_FALSE(parse_mechanism("GSSAPI"));
  EXPECT_TRUE(takes_token(Mechanism::oauthbearer));
  EXPECT_FALSE(takes_token(Mechanism::login));
}

TEST(SaslMechanism, TokenPrefersXoauth2ThenOauthbearer) {
  EXPECT_EQ(pick(kGmail, false, true), Mechanism::xoauth2);
  EXPECT_EQ(pick(kMicrosoft, false, true), Mechanism::xoauth2);
  EXPECT_EQ(pick({"OAUTHBEARER", "PLAIN"}, false, true), Mechanism::oauthbearer);
  EXPECT_EQ(pick(kGmail, true, true), Mechanism::xoauth2);  // a token wins over a password
}

TEST(SaslMechanism, PasswordPrefersPlainThenLoginThenCramMd5) {
  EXPECT_EQ(pick(kGmail, true, false), Mechanism::plain);
  EXPECT_EQ(pick(kPostfix, true, false), Mechanism::plain);
  EXPECT_EQ(pick(kMicrosoft, true, false), Mechanism::login);
  EXPECT_EQ(pick({"CRAM-MD5", "LOGIN"}, true, false), Mechanism::login);
  EXPECT_EQ(pick({"CRAM-MD5", "GSSAPI"}, true, false), Mechanism::cram_md5);
  // Both given, no OAuth offered: the password still works.
  EXPECT_EQ(pick(kPostfix, true, true), Mechanism::plain);
}

TEST(SaslMechanism, NothingUsableSaysWhy) {
  auto c = choose_mechanism(kPostfix, false, true);
  EXPECT_FALSE(c.mechanism);
  EXPECT_EQ(c.refusal,
            "the server offers AUTH PLAIN LOGIN: no XOAUTH2 or OAUTHBEARER for an OAuth token; "
            "give a password instead");
  c = choose_mechanism({"XOAUTH2", "OAUTHBEARER"}, true, false);
  EXPECT_EQ(c.refusal,
            "the server offers AUTH XOAUTH2 OAUTHBEARER: it takes OAuth tokens, not passwords; "
            "give --oauth2-token-cmd");
  c = choose_mechanism({"GSSAPI", "NTLM"}, true, false);
  EXPECT_NE(c.refusal.find("none of which mailtap speaks"), std::string::npos);
  c = choose_mechanism({}, true, false);
  EXPECT_NE(c.refusal.find("offers no AUTH"), std::string::npos);
  c = choose_mechanism(kGmail, false, false);
  EXPECT_NE(c.refusal.find("no password or token"), std::string::npos);
}

TEST(SaslMechanism, LongOfferListsAreBounded) {
  Offered many(50, "X-MECH");
  const auto c = choose_mechanism(many, true, false);
  EXPECT_LT(c.refusal.size(), 200u);
  EXPECT_NE(c.refusal.find("..."), std::string::npos);
}

}  // namespace
}  // namespace mailtap::smtp
