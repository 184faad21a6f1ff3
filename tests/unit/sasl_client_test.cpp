// mailtap's own AUTH exchange, step by step, against the replies real servers send.
#include "proxy/smtp/sasl_client.hpp"

#include <gtest/gtest.h>

#include <string>

#include "proxy/smtp/base64.hpp"
#include "reply_of.hpp"

namespace mailtap::smtp {
namespace {

using test_support::reply_of;

using namespace std::string_literals;
using Kind = SaslStep::Kind;

SaslClient client(Mechanism m, std::string user, std::string_view secret,
                  std::size_t max_line = 12288) {
  SaslClientOptions o;
  o.mechanism = m;
  o.user = std::move(user);
  o.secret = Secret::copy_of(secret);
  o.host = "smtp.gmail.com";
  o.port = 587;
  o.max_line = max_line;
  return SaslClient(std::move(o));
}

std::string sent(const SaslStep& s) {
  EXPECT_EQ(s.kind, Kind::send);
  return std::string(s.line.view());
}

std::string b64(std::string_view s) {
  return base64_encode(s);
}

const char* kGmailJson =
    R"({"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"})";
const char* kGmail535 =
    "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1-2 - gsmtp\r\n";

TEST(SaslClient, PlainWithInitialResponse) {
  SaslClient c = client(Mechanism::plain, "alice", "secret");
  EXPECT_EQ(sent(c.start()), "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
  EXPECT_FALSE(c.done());
  EXPECT_EQ(c.on_reply(reply_of("235 2.7.0 Authentication successful\r\n")).kind, Kind::succeeded);
  EXPECT_TRUE(c.succeeded());
  EXPECT_FALSE(c.failure());
  EXPECT_EQ(c.on_reply(reply_of("250 late\r\n")).kind, Kind::succeeded);  // stays done
}

TEST(SaslClient, PlainRefusedKeepsTheServersReply) {
  SaslClient c = client(Mechanism::plain, "alice@gmail.com", "wrong");
  sent(c.start());
  EXPECT_EQ(c.on_reply(reply_of(kGmail535)).kind, Kind::failed);
  ASSERT_TRUE(c.failure());
  EXPECT_EQ(c.failure()->kind, SaslFailure::Kind::refused);
  ASSERT_TRUE(c.failure()->reply);
  EXPECT_EQ(c.failure()->reply->code, 535);
  EXPECT_EQ(c.failure()->reply->enhanced_status, "5.7.8");
  EXPECT_FALSE(c.failure()->token_rejected);
  EXPECT_EQ(c.on_reply(reply_of("235 ok\r\n")).kind, Kind::failed);  // stays failed
}

TEST(SaslClient, PlainAnswersAnUnexpectedChallengeWithACancel) {
  SaslClient c = client(Mechanism::plain, "alice", "secret");
  sent(c.start());
  EXPECT_EQ(sent(c.on_reply(reply_of("334 \r\n"))), "*\r\n");
  EXPECT_EQ(c.on_reply(reply_of("501 5.7.0 Authentication aborted\r\n")).kind, Kind::failed);
  EXPECT_EQ(c.failure()->kind, SaslFailure::Kind::protocol);
  EXPECT_EQ(c.failure()->detail, "the server sent another challenge after the credentials");
  EXPECT_EQ(c.failure()->reply->code, 501);
}

TEST(SaslClient, LoginAnswersThePrompts) {
  SaslClient c = client(Mechanism::login, "alice", "alice-secret-1");
  EXPECT_EQ(sent(c.start()), "AUTH LOGIN\r\n");
  EXPECT_EQ(sent(c.on_reply(reply_of("334 VXNlcm5hbWU6\r\n"))), b64("alice") + "\r\n");
  EXPECT_EQ(sent(c.on_reply(reply_of("334 UGFzc3dvcmQ6\r\n"))), b64("alice-secret-1") + "\r\n");
  EXPECT_EQ(c.on_reply(reply_of("235 2.7.0 Authentication successful\r\n")).kind, Kind::succeeded);
}

TEST(SaslClient, LoginFollowsPromptsThatSayWhatTheyWant) {
  // Lower-case "User Name" and "password" prompts (Exchange sends these in other cases).
  SaslClient c = client(Mechanism::login, "alice", "pw");
  sent(c.start());
  EXPECT_EQ(sent(c.on_reply(reply_of("334 " + b64("password") + "\r\n"))), b64("pw") + "\r\n");
  EXPECT_EQ(sent(c.on_reply(reply_of("334 " + b64("User Name") + "\r\n"))), b64("alice") + "\r\n");
  EXPECT_EQ(c.on_reply(reply_of("235 ok\r\n")).kind, Kind::succeeded);
}

TEST(SaslClient, LoginGoesByPositionWhenThePromptSaysNothing) {
  SaslClient c = client(Mechanism::login, "alice", "pw");
  sent(c.start());
  EXPECT_EQ(sent(c.on_reply(reply_of("334 not base64!\r\n"))), b64("alice") + "\r\n");
  EXPECT_EQ(sent(c.on_reply(reply_of("334 \r\n"))), b64("pw") + "\r\n");
}

TEST(SaslClient, LoginCancelsARepeatedOrThirdPrompt) {
  SaslClient c = client(Mechanism::login, "alice", "pw");
  sent(c.start());
  sent(c.on_reply(reply_of("334 VXNlcm5hbWU6\r\n")));
  EXPECT_EQ(sent(c.on_reply(reply_of("334 VXNlcm5hbWU6\r\n"))), "*\r\n");
  EXPECT_EQ(c.on_reply(reply_of("501 5.7.0 aborted\r\n")).kind, Kind::failed);
  EXPECT_EQ(c.failure()->detail, "the server asked for the user name twice");

  SaslClient d = client(Mechanism::login, "alice", "pw");
  sent(d.start());
  sent(d.on_reply(reply_of("334 VXNlcm5hbWU6\r\n")));
  sent(d.on_reply(reply_of("334 UGFzc3dvcmQ6\r\n")));
  EXPECT_EQ(sent(d.on_reply(reply_of("334 \r\n"))), "*\r\n");
}

TEST(SaslClient, CramMd5AnswersTheChallenge) {
  SaslClient c = client(Mechanism::cram_md5, "tim", "tanstaaftanstaaf");
  EXPECT_EQ(sent(c.start()), "AUTH CRAM-MD5\r\n");
  EXPECT_EQ(sent(c.on_reply(
                reply_of("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"))),
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n");
  EXPECT_EQ(c.on_reply(reply_of("235 ok\r\n")).kind, Kind::succeeded);
}

TEST(SaslClient, CramMd5CancelsABadChallenge) {
  SaslClient c = client(Mechanism::cram_md5, "tim", "pw");
  sent(c.start());
  EXPECT_EQ(sent(c.on_reply(reply_of("334 %%%\r\n"))), "*\r\n");
  c.on_reply(reply_of("501 aborted\r\n"));
  EXPECT_EQ(c.failure()->kind, SaslFailure::Kind::protocol);
  SaslClient empty = client(Mechanism::cram_md5, "tim", "pw");
  sent(empty.start());
  EXPECT_EQ(sent(empty.on_reply(reply_of("334 \r\n"))), "*\r\n");
}

TEST(SaslClient, Xoauth2WithInitialResponse) {
  SaslClient c = client(Mechanism::xoauth2, "alice@gmail.com", "ya29.token");
  EXPECT_EQ(sent(c.start()), "AUTH XOAUTH2 " +
                                 b64("user=alice@gmail.com\x01"
                                     "auth=Bearer ya29.token\x01\x01") +
                                 "\r\n");
  EXPECT_EQ(c.on_reply(reply_of("235 2.7.0 Accepted\r\n")).kind, Kind::succeeded);
}

TEST(SaslClient, Xoauth2ErrorChallengeIsAnsweredWithAnEmptyLine) {
  SaslClient c = client(Mechanism::xoauth2, "alice@gmail.com", "expired");
  sent(c.start());
  EXPECT_EQ(sent(c.on_reply(reply_of("334 " + b64(kGmailJson) + "\r\n"))), "\r\n");
  EXPECT_FALSE(c.done());
  EXPECT_EQ(c.on_reply(reply_of(kGmail535)).kind, Kind::failed);
  const SaslFailure& f = *c.failure();
  EXPECT_EQ(f.kind, SaslFailure::Kind::refused);
  EXPECT_EQ(f.reply->code, 535);
  ASSERT_TRUE(f.error_challenge);
  ASSERT_TRUE(f.oauth_error);
  EXPECT_EQ(f.oauth_error->status, "400");
  EXPECT_EQ(f.oauth_error->scope, "https://mail.google.com/");
  EXPECT_TRUE(f.token_rejected);
}

TEST(SaslClient, OauthbearerErrorChallengeIsAnsweredWithCtrlA) {
  SaslClient c = client(Mechanism::oauthbearer, "alice@gmail.com", "expired");
  EXPECT_EQ(sent(c.start()), "AUTH OAUTHBEARER " +
                                 b64("n,a=alice@gmail.com,\x01host=smtp.gmail.com\x01port=587\x01"
                                     "auth=Bearer expired\x01\x01") +
                                 "\r\n");
  EXPECT_EQ(sent(c.on_reply(reply_of("334 " + b64("{\"status\":\"invalid_token\"}\n") + "\r\n"))),
            "AQ==\r\n");
  c.on_reply(reply_of("535 5.7.8 Authentication credentials invalid\r\n"));
  EXPECT_EQ(c.failure()->oauth_error->meaning(), OAuthError::Meaning::invalid_token);
  EXPECT_TRUE(c.failure()->token_rejected);
}

TEST(SaslClient, ErrorChallengeThatIsNotJsonIsStillAnswered) {
  SaslClient c = client(Mechanism::xoauth2, "a", "t");
  sent(c.start());
  EXPECT_EQ(sent(c.on_reply(reply_of("334 not-base64\r\n"))), "\r\n");
  c.on_reply(reply_of("535 5.7.8 no\r\n"));
  EXPECT_TRUE(c.failure()->error_challenge);
  EXPECT_FALSE(c.failure()->oauth_error);
  EXPECT_TRUE(c.failure()->token_rejected);
}

TEST(SaslClient, SecondChallengeAfterTheErrorIsCancelled) {
  SaslClient c = client(Mechanism::xoauth2, "a", "t");
  sent(c.start());
  sent(c.on_reply(reply_of("334 " + b64(kGmailJson) + "\r\n")));
  EXPECT_EQ(sent(c.on_reply(reply_of("334 " + b64(kGmailJson) + "\r\n"))), "*\r\n");
  EXPECT_EQ(c.on_reply(reply_of("334 again\r\n")).kind, Kind::failed);  // ignores the cancel too
  EXPECT_EQ(c.failure()->kind, SaslFailure::Kind::protocol);
  EXPECT_NE(c.failure()->detail.find("ignored the cancel"), std::string::npos);
}

TEST(SaslClient, Microsoft535WithoutAChallengeStillRejectsTheToken) {
  SaslClient c = client(Mechanism::xoauth2, "bob@contoso.com", "t");
  sent(c.start());
  c.on_reply(reply_of(
      "535 5.7.3 Authentication unsuccessful [SN4PR0201CA0047.namprd02.prod.outlook.com]\r\n"));
  EXPECT_TRUE(c.failure()->token_rejected);
  SaslClient d = client(Mechanism::xoauth2, "bob@contoso.com", "t");
  sent(d.start());
  d.on_reply(reply_of("454 4.7.0 Temporary authentication failure\r\n"));
  EXPECT_FALSE(d.failure()->token_rejected);
}

TEST(SaslClient, ResponseOverTheLineLimitWaitsForTheGoAhead) {
  // 35 + 9172 message octets, 12276 of base64: the AUTH line would be 12291 octets.
  const std::string token(9172, 'a');
  SaslClient c = client(Mechanism::xoauth2, "alice@gmail.com", token);
  EXPECT_EQ(sent(c.start()), "AUTH XOAUTH2\r\n");
  const std::string response = sent(c.on_reply(reply_of("334 \r\n")));
  EXPECT_EQ(response, b64("user=alice@gmail.com\x01"
                          "auth=Bearer " +
                          token + "\x01\x01") +
                          "\r\n");
  EXPECT_LE(response.size(), 12288u);
  EXPECT_EQ(c.on_reply(reply_of("235 ok\r\n")).kind, Kind::succeeded);
}

TEST(SaslClient, ExactlyAtTheLimitStillUsesTheInitialResponse) {
  // "AUTH PLAIN " + base64 + CRLF == max_line
  SaslClient c = client(Mechanism::plain, "u", "p", 11 + 8 + 2);  // \0u\0p -> 4 bytes -> 8 chars
  EXPECT_EQ(sent(c.start()), "AUTH PLAIN AHUAcA==\r\n");
  SaslClient d = client(Mechanism::plain, "u", "p", 11 + 8 + 1);
  EXPECT_EQ(sent(d.start()), "AUTH PLAIN\r\n");
}

TEST(SaslClient, ResponseThatCannotFitAtAllIsRefusedBeforeSending) {
  SaslClient c = client(Mechanism::xoauth2, "a", std::string(20000, 'a'));
  const SaslStep s = c.start();
  EXPECT_EQ(s.kind, Kind::failed);
  EXPECT_TRUE(s.line.empty());
  EXPECT_EQ(c.failure()->kind, SaslFailure::Kind::too_long);
  SaslClient l = client(Mechanism::login, "a", std::string(10000, 'p'));
  EXPECT_EQ(l.start().kind, Kind::failed);
}

TEST(SaslClient, UnusableCredentialsAreRefusedBeforeSending) {
  SaslClient c = client(Mechanism::xoauth2, "alice", "token with spaces");
  EXPECT_EQ(c.start().kind, Kind::failed);
  EXPECT_EQ(c.failure()->kind, SaslFailure::Kind::unusable);
  EXPECT_EQ(c.failure()->detail.find("token with"), std::string::npos);  // never quoted
  SaslClient p = client(Mechanism::plain, "alice", "a\0b"s);
  EXPECT_EQ(p.start().kind, Kind::failed);
}

TEST(SaslClient, RepliesOutOfTurn) {
  SaslClient before = client(Mechanism::plain, "a", "b");
  EXPECT_EQ(before.on_reply(reply_of("235 ok\r\n")).kind, Kind::failed);
  EXPECT_EQ(before.failure()->kind, SaslFailure::Kind::protocol);

  SaslClient odd = client(Mechanism::plain, "a", "b");
  sent(odd.start());
  EXPECT_EQ(odd.on_reply(reply_of("250 ok\r\n")).kind, Kind::failed);
  EXPECT_EQ(odd.failure()->kind, SaslFailure::Kind::protocol);

  SaslClient twice = client(Mechanism::plain, "a", "b");
  sent(twice.start());
  EXPECT_EQ(twice.start().kind, Kind::failed);

  SaslClient multi = client(Mechanism::login, "a", "b");
  sent(multi.start());
  EXPECT_EQ(sent(multi.on_reply(reply_of("334-VXNlcm5hbWU6\r\n334 VXNlcm5hbWU6\r\n"))), "*\r\n");
}

}  // namespace
}  // namespace mailtap::smtp
