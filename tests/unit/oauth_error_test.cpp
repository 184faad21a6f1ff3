// What servers put in the 334 that refuses an OAuth token, read leniently.
#include "proxy/smtp/oauth_error.hpp"

#include <gtest/gtest.h>

namespace mailtap::smtp {
namespace {

TEST(OAuthError, GmailInPractice) {
  const auto e = parse_oauth_error(
      R"({"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, "400");
  EXPECT_EQ(e->schemes, "Bearer");
  EXPECT_EQ(e->scope, "https://mail.google.com/");
  EXPECT_EQ(e->meaning(), OAuthError::Meaning::wrong_scope);
  EXPECT_EQ(e->summary(), "status 400, schemes Bearer, scope https://mail.google.com/");
}

TEST(OAuthError, GooglesDocumentedExampleWithTrailingNewline) {
  const auto e = parse_oauth_error(
      "{\"status\":\"401\",\n \"schemes\":\"bearer mac\",\n"
      " \"scope\":\"https://mail.google.com/\"}\n");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, "401");
  EXPECT_EQ(e->schemes, "bearer mac");
  EXPECT_EQ(e->meaning(), OAuthError::Meaning::invalid_token);
}

TEST(OAuthError, Rfc7628Form) {
  const auto e = parse_oauth_error(
      R"({"status":"invalid_token","scope":"example_scope","openid-configuration":"https://example.com/.well-known/openid-configuration"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->meaning(), OAuthError::Meaning::invalid_token);
  EXPECT_EQ(e->openid_configuration, "https://example.com/.well-known/openid-configuration");
}

TEST(OAuthError, StatusAsANumberAndOtherMeanings) {
  EXPECT_EQ(parse_oauth_error(R"({"status":401})")->status, "401");
  EXPECT_EQ(parse_oauth_error(R"({"status":401})")->meaning(), OAuthError::Meaning::invalid_token);
  EXPECT_EQ(parse_oauth_error(R"({"status":"insufficient_scope"})")->meaning(),
            OAuthError::Meaning::wrong_scope);
  EXPECT_EQ(parse_oauth_error(R"({"status":"403"})")->meaning(), OAuthError::Meaning::wrong_scope);
  EXPECT_EQ(parse_oauth_error(R"({"status":"400"})")->meaning(), OAuthError::Meaning::other);
  EXPECT_EQ(parse_oauth_error(R"({"status":"500"})")->meaning(), OAuthError::Meaning::other);
  EXPECT_EQ(parse_oauth_error("{}")->summary(), "no details");
}

TEST(OAuthError, ValuesArePrintableAndBounded) {
  const auto e =
      parse_oauth_error(R"({"status":"4\u0000\n1","scope":")" + std::string(500, 's') + "\"}");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, "4??1");
  EXPECT_EQ(e->scope.size(), 200u);
}

TEST(OAuthError, NotJson) {
  EXPECT_FALSE(parse_oauth_error("Username:"));
  EXPECT_FALSE(parse_oauth_error(""));
}

}  // namespace
}  // namespace mailtap::smtp
