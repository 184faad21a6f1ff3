// The contract of --oauth2-token-cmd's output.
#include "proxy/secrets/token_output.hpp"

#include <gtest/gtest.h>

namespace mailtap::secrets {
namespace {

using std::chrono::seconds;

TEST(TokenOutput, TokenAloneAsOamaAndPizauthPrintIt) {
  const TokenParse p = parse_token_output("ya29.a0AfB_byC-x~y+z/9==\n");
  ASSERT_TRUE(p.value) << p.error;
  EXPECT_EQ(p.value->token.view(), "ya29.a0AfB_byC-x~y+z/9==");
  EXPECT_FALSE(p.value->expires_in);
  EXPECT_EQ(parse_token_output("tok\r\n").value->token.view(), "tok");
  EXPECT_EQ(parse_token_output("tok").value->token.view(), "tok");
}

// docs/auth.md: spaces, tabs and a CR around the token are dropped, with or without the lines
// after it; inside it, a space or any control character makes the line a message.
TEST(TokenOutput, BlanksAroundTheTokenLineAreDroppedNotThoseInside) {
  for (const char* out : {"tok \n", "tok\r\n", "tok\t\n", " tok\n", "tok \nexpires_in=60\n",
                          "tok\r\nexpires_in=60\r\n", "\ttok \r\nscope=x\n"}) {
    const TokenParse p = parse_token_output(out);
    ASSERT_TRUE(p.value) << out << ": " << p.error;
    EXPECT_EQ(p.value->token.view(), "tok") << out;
  }
  for (const char* out : {"tok good\n", "tok\x1b\n", "tok\rgood\n", "tok good \nexpires_in=60\n"})
    EXPECT_FALSE(parse_token_output(out).value) << out;
}

TEST(TokenOutput, ExpiresInLine) {
  const TokenParse p = parse_token_output("tok\nexpires_in=3599\n");
  ASSERT_TRUE(p.value);
  EXPECT_EQ(p.value->expires_in, seconds(3599));
  EXPECT_EQ(parse_token_output("tok\nscope=x\n expires_in=60 \n").value->expires_in, seconds(60));
  EXPECT_EQ(parse_token_output("tok\nexpires_in=99999999\n").value->expires_in, seconds(86400));
  EXPECT_EQ(parse_token_output("tok\nexpires_in=soon\n").error,
            "printed an expires_in= line that is not a number");
}

TEST(TokenOutput, TokenEndpointJson) {
  const TokenParse p = parse_token_output(
      R"({"token_type":"Bearer","scope":"https://outlook.office.com/SMTP.Send","expires_in":4523,"ext_expires_in":4523,"access_token":"eyJ0eXAi.eyJhdWQ\/x.sig","refresh_token":"0.AR8A"})"
      "\n");
  ASSERT_TRUE(p.value) << p.error;
  EXPECT_EQ(p.value->token.view(), "eyJ0eXAi.eyJhdWQ/x.sig");
  EXPECT_EQ(p.value->expires_in, seconds(4523));
  EXPECT_EQ(parse_token_output(R"({"access_token":"t","expires_in":"3600"})").value->expires_in,
            seconds(3600));
}

TEST(TokenOutput, TokenEndpointErrorsAreReported) {
  EXPECT_EQ(
      parse_token_output(
          R"({"error":"invalid_grant","error_description":"Token has been expired or revoked."})")
          .error,
      "printed a token endpoint error (error invalid_grant: Token has been expired or "
      "revoked.)");
  EXPECT_EQ(parse_token_output(R"({"token_type":"Bearer"})").error,
            "printed JSON without an \"access_token\" string");
  EXPECT_EQ(parse_token_output("{oops").error,
            "printed something that starts like JSON but is not an object");
}

TEST(TokenOutput, NothingOrNotATokenIsAnErrorThatQuotesNothing) {
  EXPECT_EQ(parse_token_output("").error, "printed nothing");
  EXPECT_EQ(parse_token_output(" \n\n").error, "printed nothing");
  const TokenParse notice = parse_token_output("Obtaining new access token...\ntok\n");
  EXPECT_FALSE(notice.value);
  EXPECT_EQ(notice.error.find("Obtaining"), std::string::npos);
  EXPECT_NE(notice.error.find("not an access token (29 bytes"), std::string::npos) << notice.error;
  EXPECT_FALSE(parse_token_output("tok\x01"
                                  "auth=Bearer evil\n")
                   .value);
}

}  // namespace
}  // namespace mailtap::secrets
