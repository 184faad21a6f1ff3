// Every client SASL message byte for byte.
#include "proxy/smtp/sasl_responses.hpp"

#include <gtest/gtest.h>

#include "proxy/smtp/base64.hpp"

namespace mailtap::smtp {
namespace {

using namespace std::string_literals;

TEST(SaslResponses, Plain) {
  const Secret s = plain_response("", "alice@gmail.com", "app pass word");
  EXPECT_EQ(s.view(), "\0alice@gmail.com\0app pass word"s);
  EXPECT_EQ(s.room(), 0u);  // sized exactly
  EXPECT_EQ(plain_response("admin", "alice", "pw").view(), "admin\0alice\0pw"s);
  // The well-known tutorial vector: \0test\0test -> AHRlc3QAdGVzdA==
  EXPECT_EQ(base64_encode(plain_response("", "test", "test").view()), "AHRlc3QAdGVzdA==");
}

TEST(SaslResponses, Xoauth2) {
  const Secret s =
      xoauth2_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
  EXPECT_EQ(s.view(),
            "user=someuser@example.com\x01"
            "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01");
  EXPECT_EQ(s.room(), 0u);
  // Google's documented example, base64 included.
  EXPECT_EQ(base64_encode(s.view()),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQm"
            "hkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
}

TEST(SaslResponses, Oauthbearer) {
  const Secret s = oauthbearer_response("user@example.com", "server.example.com", 587,
                                        "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
  EXPECT_EQ(s.view(),
            "n,a=user@example.com,\x01"
            "host=server.example.com\x01"
            "port=587\x01"
            "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01");
  EXPECT_EQ(s.room(), 0u);
}

TEST(SaslResponses, OauthbearerEscapesTheSaslnameAndLeavesOutHostAndPort) {
  const Secret s = oauthbearer_response("a,b=c", "", std::nullopt, "t");
  EXPECT_EQ(s.view(),
            "n,a=a=2Cb=3Dc,\x01"
            "auth=Bearer t\x01\x01");
  const Secret p = oauthbearer_response("u", "h", 65535, "t");
  EXPECT_EQ(p.view(),
            "n,a=u,\x01host=h\x01port=65535\x01"
            "auth=Bearer t\x01\x01");
}

TEST(SaslResponses, CramMd5Rfc2195Example) {
  // RFC 2195 §2: user tim, password tanstaaftanstaaf.
  const Secret s =
      cram_md5_response("tim", "tanstaaftanstaaf", "<1896.697170952@postoffice.reston.mci.net>");
  EXPECT_EQ(s.view(), "tim b913a602c7eda7a495b4e6e7334d3890");
  EXPECT_EQ(base64_encode(s.view()), "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
}

TEST(SaslResponses, BearerTokenCharset) {
  EXPECT_TRUE(is_bearer_token("ya29.a0AfB_byC-x~y+z/9=="));
  EXPECT_TRUE(is_bearer_token("eyJ0eXAiOiJKV1QiLCJub25jZSI6.eyJhdWQiOi.sig"));
  EXPECT_FALSE(is_bearer_token(""));
  EXPECT_FALSE(is_bearer_token("=="));
  EXPECT_FALSE(is_bearer_token("a=b"));
  EXPECT_FALSE(is_bearer_token("tok en"));
  EXPECT_FALSE(
      is_bearer_token("tok\x01"
                      "auth=Bearer x"));
  EXPECT_FALSE(is_bearer_token("token\n"));
}

TEST(SaslResponses, CredentialsProblems) {
  EXPECT_EQ(credentials_problem(Mechanism::plain, "alice", "pw"), "");
  EXPECT_EQ(credentials_problem(Mechanism::plain, "", "pw"), "the user name is empty");
  EXPECT_EQ(credentials_problem(Mechanism::login, "al\nice", "pw"),
            "the user name contains control characters");
  EXPECT_EQ(credentials_problem(Mechanism::plain, "alice", ""), "the password is empty");
  EXPECT_EQ(credentials_problem(Mechanism::xoauth2, "alice", ""), "the access token is empty");
  EXPECT_NE(credentials_problem(Mechanism::plain, "alice", "p\0w"s), "");
  EXPECT_EQ(credentials_problem(Mechanism::login, "alice", "p\0w"s), "");
  EXPECT_NE(credentials_problem(Mechanism::oauthbearer, "alice", "bad token"), "");
  EXPECT_EQ(credentials_problem(Mechanism::oauthbearer, "alice", "good.token"), "");
}

}  // namespace
}  // namespace mailtap::smtp
