#include "proxy/smtp/auth_redactor.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <regex>
#include <string>
#include <vector>

#include "proxy/smtp/base64.hpp"

namespace mailtap::smtp {
namespace {

using namespace std::string_literals;

std::string b64(std::string_view s) {
  return base64_encode(s);
}

RedactionPolicy with_key(std::uint8_t fill) {
  RedactionPolicy p;
  p.fingerprint_key.emplace();
  p.fingerprint_key->fill(fill);
  return p;
}

std::string fp_of(const std::string& text) {
  std::smatch m;
  static const std::regex re("fp=([0-9a-f]{16})>");
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

// ---- PLAIN ----

TEST(AuthRedactor, PlainInitialResponse) {
  AuthRedactor r;
  const auto line = r.begin("AUTH PLAIN " + b64("\0alice@example.test\0s3cret-Pa55!"s));
  EXPECT_EQ(line.text,
            R"(AUTH PLAIN [authzid="" authcid="alice@example.test" password=<redacted 12 bytes>])");
  EXPECT_TRUE(line.redacted);
  EXPECT_EQ(line.decoded,
            R"(authzid="" authcid="alice@example.test" password=<redacted 12 bytes>)");
  EXPECT_TRUE(r.in_progress());
  EXPECT_EQ(r.mechanism(), "PLAIN");
  EXPECT_EQ(r.user(), "alice@example.test");
  EXPECT_FALSE(r.authenticated());
  r.finish(235);
  EXPECT_FALSE(r.in_progress());
  EXPECT_TRUE(r.authenticated());
  EXPECT_EQ(r.user(), "alice@example.test");
}

TEST(AuthRedactor, DisplayModesForMailtapDecode) {
  RedactionPolicy describe;
  describe.display = RedactionPolicy::Display::describe;
  AuthRedactor d(describe);
  EXPECT_EQ(d.begin("AUTH PLAIN " + b64("\0alice\0s3cret"s)).decoded,
            R"(authzid="" authcid="alice" password=<secret, 6 bytes>)");

  RedactionPolicy reveal;
  reveal.display = RedactionPolicy::Display::reveal;
  AuthRedactor r(reveal);
  EXPECT_EQ(r.begin("AUTH PLAIN " + b64("\0alice\0s3\"cr\x01t"s)).decoded,
            R"(authzid="" authcid="alice" password="s3\"cr\x01t")");
  AuthRedactor x(reveal);
  EXPECT_EQ(x.begin("AUTH XOAUTH2 " + b64("user=a\x01"
                                          "auth=Bearer ya29.t\x01\x01"))
                .decoded,
            R"(user="a" bearer="ya29.t")");
  // The record's default never changes.
  AuthRedactor plain;
  EXPECT_EQ(plain.begin("AUTH PLAIN " + b64("\0alice\0s3cret"s)).decoded,
            R"(authzid="" authcid="alice" password=<redacted 6 bytes>)");
}

TEST(AuthRedactor, PlainContinuation) {
  AuthRedactor r;
  const auto begin = r.begin("AUTH PLAIN");
  EXPECT_EQ(begin.text, "AUTH PLAIN");
  EXPECT_FALSE(begin.redacted);
  const auto ch = r.server_challenge("334 ");
  EXPECT_EQ(ch.text, "334 ");
  EXPECT_FALSE(ch.redacted);
  const auto resp = r.client_response(b64("admin\0bob\0hunter2hunter2"s));
  EXPECT_EQ(resp.text, R"([authzid="admin" authcid="bob" password=<redacted 14 bytes>])");
  EXPECT_TRUE(resp.redacted);
  EXPECT_EQ(r.user(), "bob");
  r.finish(535);
  EXPECT_FALSE(r.authenticated());
  EXPECT_FALSE(r.in_progress());
}

TEST(AuthRedactor, PlainLowerCaseVerbKeepsWireSpelling) {
  AuthRedactor r;
  const auto line = r.begin("auth plain " + b64("\0u\0pw"s));
  EXPECT_EQ(line.text, R"(auth plain [authzid="" authcid="u" password=<redacted 2 bytes>])");
  EXPECT_EQ(r.mechanism(), "PLAIN");
}

TEST(AuthRedactor, PlainEqualsIsEmptyInitialResponse) {
  AuthRedactor r;
  const auto line = r.begin("AUTH PLAIN =");
  EXPECT_EQ(line.text, "AUTH PLAIN =");
  EXPECT_FALSE(line.redacted);
  // Whatever follows is not part of PLAIN any more: default deny.
  const std::string wire = b64("\0u\0secret-after-empty"s);
  const auto next = r.client_response(wire);
  EXPECT_EQ(next.text, "[<redacted " + std::to_string(wire.size()) + " bytes>]");
  EXPECT_TRUE(next.decoded.empty());
}

// A user name that holds the password gives it away: with the length of the redacted password
// beside it, anyone reading the record finds the password among the user name's few substrings
// of that length. Such a response is redacted whole and no user is learned; a password that is
// nowhere in the user names leaves them kept.
TEST(AuthRedactor, PlainUserNameHoldingThePasswordIsRedactedWhole) {
  for (const std::string& d : {"\0alice\0alice"s, "\0alice2024\0alice"s, "\0alice\0ice"s,
                               "alice\0bob\0alice"s, "bob@alice.test\0bob\0alice"s}) {
    SCOPED_TRACE(b64(d));
    AuthRedactor r;
    const std::string wire = b64(d);
    const auto line = r.begin("AUTH PLAIN " + wire);
    EXPECT_EQ(line.text, "AUTH PLAIN [<redacted " + std::to_string(wire.size()) + " bytes>]");
    EXPECT_TRUE(line.decoded.empty());
    EXPECT_EQ(r.user(), "");
    r.finish(235);
    EXPECT_EQ(r.user(), "");
  }
  AuthRedactor r;
  EXPECT_EQ(r.begin("AUTH PLAIN " + b64("\0alice\0Alice"s)).text,
            R"(AUTH PLAIN [authzid="" authcid="alice" password=<redacted 5 bytes>])");
  EXPECT_EQ(r.begin("AUTH PLAIN " + b64("alice\0bob\0alice!"s)).text,
            R"(AUTH PLAIN [authzid="alice" authcid="bob" password=<redacted 6 bytes>])");
  EXPECT_EQ(r.user(), "bob");
}

TEST(AuthRedactor, PlainMalformedIsFullyRedacted) {
  for (const std::string& blob : {"no-nul-at-all"s, "\0only-one-nul"s, "\0a\0b\0c"s}) {
    AuthRedactor r;
    const std::string wire = b64(blob);
    const auto line = r.begin("AUTH PLAIN " + wire);
    EXPECT_EQ(line.text, "AUTH PLAIN [<redacted " + std::to_string(wire.size()) + " bytes>]");
    EXPECT_TRUE(line.redacted);
    EXPECT_TRUE(line.decoded.empty());
    EXPECT_EQ(r.user(), "");
  }
  AuthRedactor r;
  EXPECT_EQ(r.begin("AUTH PLAIN not*base64").text, "AUTH PLAIN [<redacted 10 bytes>]");
}

// The line is split as the dialogue's command parse (and the server) splits it: any run of
// SP/HTAB separates words, leading ones are allowed, a trailing one ends no response. So the
// session's user and mechanism are learned, and the secret stays out, whatever the spacing.
TEST(AuthRedactor, SeparatorsAsTheDialogueReadsThem) {
  const std::string blob = b64("\0alice@example.test\0s3cret-Pa55!"s);
  const std::string fields =
      R"([authzid="" authcid="alice@example.test" password=<redacted 12 bytes>])";
  const std::vector<std::pair<std::string, std::string>> cases{
      {"AUTH  PLAIN " + blob, "AUTH  PLAIN " + fields},
      {"AUTH PLAIN  " + blob, "AUTH PLAIN " + fields},
      {"AUTH PLAIN " + blob + " ", "AUTH PLAIN " + fields},
      {"AUTH PLAIN " + blob + " \t ", "AUTH PLAIN " + fields},
      {" AUTH PLAIN " + blob, " AUTH PLAIN " + fields},
      {"\t auth\tplain\t" + blob + "\t", "\t auth\tplain " + fields},
      {"AUTH\vPLAIN\f" + blob, "AUTH\vPLAIN " + fields},
      {"\fAUTH\f\vPLAIN\v" + blob + "\f", "\fAUTH\f\vPLAIN " + fields},
  };
  for (const auto& [line, text] : cases) {
    AuthRedactor r;
    const RedactedLine out = r.begin(line);
    EXPECT_EQ(out.text, text) << line;
    EXPECT_TRUE(out.redacted);
    EXPECT_EQ(out.text.find("s3cret"), std::string::npos);
    EXPECT_EQ(out.text.find(blob), std::string::npos);
    r.finish(235);
    EXPECT_EQ(r.mechanism(), "PLAIN") << line;
    EXPECT_EQ(r.user(), "alice@example.test") << line;
  }
  // LOGIN after a run of separators: its prompts are read as prompts, not redacted whole.
  AuthRedactor r;
  EXPECT_EQ(r.begin("auth   login").text, "auth   login");
  EXPECT_EQ(r.server_challenge("334 VXNlcm5hbWU6").decoded, "Username:");
  EXPECT_FALSE(r.client_response("YWxpY2U=").redacted);
  EXPECT_EQ(r.server_challenge("334 UGFzc3dvcmQ6").decoded, "Password:");
  EXPECT_EQ(r.client_response(b64("pw123456")).text, "[password=<redacted 8 bytes>]");
  r.finish(235);
  EXPECT_EQ(r.user(), "alice");
  EXPECT_EQ(r.mechanism(), "LOGIN");
  // An XOAUTH2 response with a trailing tab: the token is found and removed.
  AuthRedactor x;
  const RedactedLine oauth = x.begin("AUTH\tXOAUTH2 " +
                                     b64("user=bob@example.test\x01"
                                         "auth=Bearer ya29.tok\x01\x01"s) +
                                     "\t");
  EXPECT_EQ(oauth.text,
            "AUTH\tXOAUTH2 "s + R"([user="bob@example.test" bearer=<redacted 8 bytes>])");
  // Separators alone after the verb or the mechanism carry nothing to hide.
  AuthRedactor bare;
  EXPECT_EQ(bare.begin("AUTH \t").text, "AUTH \t");
  EXPECT_FALSE(bare.begin("AUTH LOGIN \t").redacted);
}

TEST(AuthRedactor, QuotedValuesAreEscaped) {
  AuthRedactor r;
  const auto line = r.begin("AUTH PLAIN " + b64("\0a\"b\\c\x1b[2J\xc3\xa9\0pw"s));
  EXPECT_EQ(
      line.text,
      R"(AUTH PLAIN [authzid="" authcid="a\"b\\c\x1b[2J\xc3\xa9" password=<redacted 2 bytes>])");
}

// ---- LOGIN ----

TEST(AuthRedactor, LoginTwoStep) {
  AuthRedactor r;
  EXPECT_EQ(r.begin("AUTH LOGIN").text, "AUTH LOGIN");
  const auto u_prompt = r.server_challenge("334 VXNlcm5hbWU6");
  EXPECT_EQ(u_prompt.text, "334 VXNlcm5hbWU6");
  EXPECT_FALSE(u_prompt.redacted);
  EXPECT_EQ(u_prompt.decoded, "Username:");
  const auto user = r.client_response("YWxpY2U=");
  EXPECT_EQ(user.text, "YWxpY2U=");
  EXPECT_FALSE(user.redacted);
  EXPECT_EQ(user.decoded, R"(user="alice")");
  const auto p_prompt = r.server_challenge("334 UGFzc3dvcmQ6");
  EXPECT_EQ(p_prompt.decoded, "Password:");
  const auto pass = r.client_response(b64("s3cret-Pa55!"));
  EXPECT_EQ(pass.text, "[password=<redacted 12 bytes>]");
  EXPECT_TRUE(pass.redacted);
  EXPECT_EQ(pass.decoded, "password=<redacted 12 bytes>");
  EXPECT_EQ(r.user(), "alice");
  r.finish(235);
  EXPECT_TRUE(r.authenticated());
  EXPECT_EQ(r.mechanism(), "LOGIN");
}

TEST(AuthRedactor, LoginInlineUser) {
  AuthRedactor r;
  const auto line = r.begin("AUTH LOGIN YWxpY2U=");
  EXPECT_EQ(line.text, "AUTH LOGIN YWxpY2U=");
  EXPECT_FALSE(line.redacted);
  EXPECT_EQ(line.decoded, R"(user="alice")");
  EXPECT_EQ(r.server_challenge("334 UGFzc3dvcmQ6").decoded, "Password:");
  EXPECT_EQ(r.client_response(b64("pw123456")).text, "[password=<redacted 8 bytes>]");
  EXPECT_EQ(r.user(), "alice");
}

TEST(AuthRedactor, LoginTrailingSpaceIsNotAnInitialResponse) {
  AuthRedactor r;
  EXPECT_EQ(r.begin("AUTH LOGIN ").text, "AUTH LOGIN ");
  r.server_challenge("334 VXNlcm5hbWU6");
  EXPECT_FALSE(r.client_response("YWxpY2U=").redacted);  // still the user, not shifted
}

// People mix up two tutorials and paste the PLAIN blob (NUL user NUL password) at LOGIN's
// Username: prompt: that "user name" holds the password, so it is the secret, not a user.
TEST(AuthRedactor, LoginUserWithControlOctetsIsTheSecret) {
  for (const std::string& pasted :
       {std::string("\0alice\0s3cret-pw", 17), std::string("al\tice")}) {
    AuthRedactor r;
    r.begin("AUTH LOGIN");
    r.server_challenge("334 VXNlcm5hbWU6");
    const auto line = r.client_response(b64(pasted));
    EXPECT_TRUE(line.redacted);
    EXPECT_EQ(line.text.find("alice"), std::string::npos) << line.text;
    EXPECT_EQ(line.decoded.find("s3cret"), std::string::npos) << line.decoded;
    EXPECT_EQ(r.user(), "");
  }
  AuthRedactor inline_blob;
  const auto line = inline_blob.begin("AUTH LOGIN " + b64(std::string("\0alice\0s3cret-pw", 17)));
  EXPECT_TRUE(line.redacted);
  EXPECT_EQ(line.text.find("s3cret"), std::string::npos) << line.text;
  EXPECT_EQ(inline_blob.user(), "");
}

TEST(AuthRedactor, LoginNonStandardPromptsUsePosition) {
  AuthRedactor r;
  r.begin("AUTH LOGIN");
  r.server_challenge("334 " + b64("Who are you?"));
  EXPECT_EQ(r.client_response("YWxpY2U=").decoded, R"(user="alice")");
  r.server_challenge("334 " + b64("And the magic word?"));
  EXPECT_EQ(r.client_response(b64("magic-word")).text, "[password=<redacted 10 bytes>]");
}

TEST(AuthRedactor, LoginPasswordPromptFirstIsRedacted) {
  AuthRedactor r;
  r.begin("AUTH LOGIN");
  r.server_challenge("334 " + b64("Password:"));
  EXPECT_EQ(r.client_response(b64("early-secret")).text, "[password=<redacted 12 bytes>]");
  // The second answer is labelled by its prompt, so replay sends the user name there; but it
  // stays hidden: a client answering by position (smtplib) sent its password at that prompt.
  r.server_challenge("334 VXNlcm5hbWU6");
  const auto late = r.client_response(b64("late-secret"));
  EXPECT_EQ(late.text, "[user=<redacted 11 bytes>]");
  EXPECT_TRUE(late.redacted);
  EXPECT_EQ(late.decoded, "user=<redacted 11 bytes>");
  EXPECT_EQ(r.user(), "");
  r.finish(235);
  EXPECT_EQ(r.user(), "");
}

// Each LOGIN answer is labelled by the prompt it answers, whatever the order; only the first
// can be kept, and only when its prompt did not ask for the password.
TEST(AuthRedactor, LoginAnswersAreLabelledByTheirOwnPrompts) {
  struct Case {
    std::string first_prompt, second_prompt, first, second;
  };
  const std::vector<Case> cases = {
      {"Username:", "Password:", R"(user="alice")", "[password=<redacted 6 bytes>]"},
      {"Password:", "Username:", "[password=<redacted 5 bytes>]", "[user=<redacted 6 bytes>]"},
      {"password", "User Name", "[password=<redacted 5 bytes>]", "[user=<redacted 6 bytes>]"},
      {"Username:", "Username:", R"(user="alice")", "[user=<redacted 6 bytes>]"},
      {"Password:", "Password:", "[password=<redacted 5 bytes>]", "[password=<redacted 6 bytes>]"},
      // Neither: the first is the user name by position, a later one the password.
      {"Who?", "Again?", R"(user="alice")", "[password=<redacted 6 bytes>]"},
      {"", "", R"(user="alice")", "[password=<redacted 6 bytes>]"},
      {"Who?", "Username:", R"(user="alice")", "[user=<redacted 6 bytes>]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.first_prompt + " / " + c.second_prompt);
    AuthRedactor r;
    r.begin("AUTH LOGIN");
    r.server_challenge("334 " + b64(c.first_prompt));
    const auto first = r.client_response(b64("alice"));
    EXPECT_EQ(first.redacted ? first.text : first.decoded, c.first);
    r.server_challenge("334 " + b64(c.second_prompt));
    const auto second = r.client_response(b64("s3cret"));
    EXPECT_EQ(second.text, c.second);
    EXPECT_EQ(second.text.find("s3cret"), std::string::npos);
  }
}

// A label comes from the prompt the line answers: a line sent ahead of a new prompt is not
// taken for the user name because an earlier prompt asked for one.
TEST(AuthRedactor, LoginPromptIsUsedOnce) {
  AuthRedactor r;
  r.begin("AUTH LOGIN");
  r.server_challenge("334 VXNlcm5hbWU6");
  EXPECT_EQ(r.client_response(b64("alice")).decoded, R"(user="alice")");
  EXPECT_EQ(r.client_response(b64("s3cret")).text, "[password=<redacted 6 bytes>]");
}

TEST(AuthRedactor, LoginPromptPredicates) {
  for (const char* p : {"Password:", "password", "PASSWORD", "Your passphrase"}) {
    EXPECT_TRUE(login_prompt_asks_for_password(p)) << p;
    EXPECT_FALSE(login_prompt_asks_for_user(p)) << p;
  }
  for (const char* p : {"Username:", "username", "User Name", "Name?"})
    EXPECT_TRUE(login_prompt_asks_for_user(p)) << p;
  // "User password" asks for a password: that decides.
  EXPECT_FALSE(login_prompt_asks_for_user("User password"));
  for (const char* p : {"", "Who are you?", "\x01"}) {
    EXPECT_FALSE(login_prompt_asks_for_user(p)) << p;
    EXPECT_FALSE(login_prompt_asks_for_password(p)) << p;
  }
}

TEST(AuthRedactor, LoginThirdResponseIsDenied) {
  AuthRedactor r;
  r.begin("AUTH LOGIN YWxpY2U=");
  r.server_challenge("334 UGFzc3dvcmQ6");
  r.client_response(b64("pw"));
  r.server_challenge("334 " + b64("Again:"));
  const std::string wire = b64("third");
  EXPECT_EQ(r.client_response(wire).text, "[<redacted 8 bytes>]");
}

TEST(AuthRedactor, LoginEmptyResponseIsKept) {
  AuthRedactor r;
  r.begin("AUTH LOGIN YWxpY2U=");
  const auto empty = r.client_response("");
  EXPECT_EQ(empty.text, "");
  EXPECT_FALSE(empty.redacted);
}

// ---- CRAM-MD5 (RFC 2195 example) ----

TEST(AuthRedactor, CramMd5) {
  AuthRedactor r;
  EXPECT_EQ(r.begin("AUTH CRAM-MD5").text, "AUTH CRAM-MD5");
  const auto ch =
      r.server_challenge("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
  EXPECT_FALSE(ch.redacted);
  EXPECT_EQ(ch.decoded, "<1896.697170952@postoffice.reston.mci.net>");
  const auto resp = r.client_response("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
  EXPECT_EQ(resp.text, R"([user="tim" digest=<redacted 32 bytes>])");
  EXPECT_TRUE(resp.redacted);
  EXPECT_EQ(r.user(), "tim");
  EXPECT_EQ(r.mechanism(), "CRAM-MD5");
}

TEST(AuthRedactor, CramMd5MalformedIsDenied) {
  for (const std::string& resp :
       {"tim"s, "tim b913a602c7eda7a495b4e6e7334d389"s, "tim b913a602c7eda7a495b4e6e7334d389z"s,
        " b913a602c7eda7a495b4e6e7334d3890"s}) {
    AuthRedactor r;
    r.begin("AUTH CRAM-MD5");
    r.server_challenge("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    const std::string wire = b64(resp);
    EXPECT_EQ(r.client_response(wire).text,
              "[<redacted " + std::to_string(wire.size()) + " bytes>]")
        << resp;
  }
  AuthRedactor r;  // CRAM-MD5 has no initial response
  EXPECT_EQ(r.begin("AUTH CRAM-MD5 " + b64("tim b913a602c7eda7a495b4e6e7334d3890")).text,
            "AUTH CRAM-MD5 [<redacted 48 bytes>]");
}

// ---- XOAUTH2 / OAUTHBEARER ----

TEST(AuthRedactor, Xoauth2WithErrorFlow) {
  AuthRedactor r;
  const std::string token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
  const auto line = r.begin("AUTH XOAUTH2 " + b64("user=someuser@example.com\x01"
                                                  "auth=Bearer " +
                                                  token + "\x01\x01"));
  EXPECT_EQ(line.text, R"(AUTH XOAUTH2 [user="someuser@example.com" bearer=<redacted )" +
                           std::to_string(token.size()) + " bytes>]");
  EXPECT_EQ(r.user(), "someuser@example.com");
  const std::string json =
      R"({"status":"401","schemes":"bearer","scope":"https://mail.google.com/"})";
  const auto err = r.server_challenge("334 " + b64(json));
  EXPECT_FALSE(err.redacted);
  EXPECT_EQ(
      err.decoded,
      R"({\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://mail.google.com/\"})");
  const auto ack = r.client_response("");
  EXPECT_EQ(ack.text, "");
  EXPECT_FALSE(ack.redacted);
  r.finish(535);
  EXPECT_FALSE(r.authenticated());
}

TEST(AuthRedactor, Xoauth2Continuation) {
  AuthRedactor r;
  r.begin("AUTH XOAUTH2");
  EXPECT_FALSE(r.server_challenge("334 ").redacted);
  const auto resp =
      r.client_response(b64("user=u@x\x01"
                            "auth=Bearer tok-tok-tok\x01\x01"));
  EXPECT_EQ(resp.text, R"([user="u@x" bearer=<redacted 11 bytes>])");
}

TEST(AuthRedactor, OauthBearerRfc7628) {
  AuthRedactor r;
  const std::string token = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";
  const std::string msg =
      "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
      "auth=Bearer " +
      token + "\x01\x01";
  const auto line = r.begin("AUTH OAUTHBEARER " + b64(msg));
  EXPECT_EQ(
      line.text,
      R"(AUTH OAUTHBEARER [user="user@example.com" host="server.example.com" port="143" bearer=<redacted 42 bytes>])");
  EXPECT_EQ(r.user(), "user@example.com");
  const auto err = r.server_challenge(
      "334 "
      "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3VyYXRp"
      "b24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=");
  EXPECT_NE(err.decoded.find("invalid_token"), std::string::npos);
  const auto ack = r.client_response("AQ==");
  EXPECT_EQ(ack.text, "AQ==");
  EXPECT_FALSE(ack.redacted);
  EXPECT_EQ(ack.decoded, "\\x01");
}

TEST(AuthRedactor, OauthBearerEscapedAuthzidAndUnknownKeys) {
  AuthRedactor r;
  const auto line = r.begin("AUTH OAUTHBEARER " + b64("n,a=a=2Cb=3Dc,\x01"
                                                      "auth=MAC abcdef\x01"
                                                      "xtra=value\x01\x01"));
  EXPECT_EQ(line.text,
            R"(AUTH OAUTHBEARER [user="a,b=c" auth=<redacted 10 bytes> xtra=<redacted 5 bytes>])");
  EXPECT_EQ(r.user(), "a,b=c");
}

TEST(AuthRedactor, OauthMalformedIsDenied) {
  for (const std::string& msg : {"n,a=u,auth=Bearer x\x01\x01"s,
                                 "n,a=u,\x01"
                                 "auth=Bearer x\x01"s,
                                 "n,a=u=ZZ,\x01"
                                 "auth=Bearer x\x01\x01"s,
                                 "q,,\x01\x01"s,
                                 "n,,\x01"
                                 "a1=b\x01\x01"s,
                                 "n,,\x01"
                                 "=b\x01\x01"s}) {
    AuthRedactor r;
    const std::string wire = b64(msg);
    EXPECT_EQ(r.begin("AUTH OAUTHBEARER " + wire).text,
              "AUTH OAUTHBEARER [<redacted " + std::to_string(wire.size()) + " bytes>]");
  }
  AuthRedactor r;  // after an error, only the dummy response is understood
  r.begin("AUTH XOAUTH2 " + b64("user=u\x01"
                                "auth=Bearer t\x01\x01"));
  r.server_challenge("334 " + b64("{}"));
  EXPECT_EQ(r.client_response(b64("user=u\x01"
                                  "auth=Bearer t2\x01\x01"))
                .text,
            "[<redacted 32 bytes>]");
}

// `msg` as an initial response of AUTH `mech` and after its 334: recorded whole as a redaction,
// and no user is learned from it (the session's auth_user is recorded too).
void expect_denied_whole(const std::string& mech, const std::string& msg) {
  const std::string wire = b64(msg);
  AuthRedactor initial;
  EXPECT_EQ(initial.begin("AUTH " + mech + " " + wire).text,
            "AUTH " + mech + " [<redacted " + std::to_string(wire.size()) + " bytes>]")
      << msg;
  initial.finish(535);
  EXPECT_EQ(initial.user(), "") << msg;
  AuthRedactor after_334;
  after_334.begin("AUTH " + mech);
  after_334.server_challenge("334 ");
  const RedactedLine resp = after_334.client_response(wire);
  EXPECT_EQ(resp.text, "[<redacted " + std::to_string(wire.size()) + " bytes>]") << msg;
  EXPECT_EQ(resp.decoded, "") << msg;
  after_334.finish(535);
  EXPECT_EQ(after_334.user(), "") << msg;
}

// A response whose separators went missing (an XOAUTH2 ^A typed as a space, another control
// octet in its place, one ^A dropped) runs the user field on into the token.
TEST(AuthRedactor, Xoauth2WithoutItsSeparatorsIsFullyRedacted) {
  const std::string token = "ya29.A0ARrdaM-missing-separator-token";
  for (const std::string& msg : {"user=alice@example.test auth=Bearer " + token,
                                 "user=alice@example.test auth=Bearer " + token + "\x01\x01",
                                 "user=alice@example.test\tauth=Bearer " + token + "\x01\x01",
                                 "user=alice@example.test\x02"
                                 "auth=Bearer " +
                                     token + "\x01\x01",
                                 "user=alice@example.test\x01"
                                 "auth=Bearer " +
                                     token + "\x01",
                                 "user=alice@example.test Bearer " + token + "\x01\x01",
                                 "user=alice " + token +
                                     "\x01"
                                     "auth=Bearer " +
                                     token + "\x01\x01",
                                 "user=alice\x01"
                                 "auth=Bearer " +
                                     token +
                                     "\x01"
                                     "host=x\x01\x01",
                                 "auth=Bearer " + token + "\x01user=alice\x01\x01"s,
                                 // A run of spaces after the scheme is still the token's
                                 // (find_bearer_token skips it): the user holding it is not kept.
                                 "user=" + token +
                                     "\x01"
                                     "auth=Bearer  " +
                                     token + "\x01\x01"}) {
    expect_denied_whole("XOAUTH2", msg);
  }
}

// RFC 7628: the GS2 header's authzid, host and port are kept only when they are nothing more
// than that; a kvpair whose ^A went missing, or a response without exactly one auth, is not
// an OAUTHBEARER message.
TEST(AuthRedactor, OauthBearerFieldsHoldingTheTokenAreFullyRedacted) {
  const std::string token = "ya29.A0ARrdaM-missing-separator-token";
  for (const std::string& msg :
       {"n,a=alice auth=3DBearer " + token + ",\x01\x01",
        "n,a=alice,\x01host=server.example.com auth=Bearer " + token + "\x01\x01",
        "n,a=alice,\x01port=587 auth=Bearer " + token + "\x01\x01",
        "n,a=alice,\x01host=server.example.com\x01port=587 auth=Bearer " + token + "\x01\x01",
        "n,a=alice,\x01host=" + token +
            "\x01"
            "auth=Bearer " +
            token + "\x01\x01",
        "n,a=" + token +
            ",\x01"
            "auth=Bearer " +
            token + "\x01\x01",
        "n,a=alice,\x01host=server.example.com\x01\x01"s,
        "n,a=alice,\x01"
        "auth=Bearer " +
            token +
            "\x01"
            "auth=Bearer " +
            token + "\x01\x01",
        "n,a=alice,\x01port=58x7\x01"
        "auth=Bearer " +
            token + "\x01\x01"}) {
    expect_denied_whole("OAUTHBEARER", msg);
  }
}

// The user fields of PLAIN, LOGIN and CRAM-MD5 take what stands before a separator; text that
// carries an OAuth credential (a bearer response pasted at the wrong prompt) is no user name.
const std::string kPastedToken = "ya29.A0ARrdaM-pasted-at-the-wrong-place";
const std::string kPastedBearer = "alice auth=Bearer " + kPastedToken;

TEST(AuthRedactor, PlainUserFieldsNeverHoldABearerCredential) {
  expect_denied_whole("PLAIN", "\0"s + kPastedBearer + "\0pw"s);
  expect_denied_whole("PLAIN", kPastedBearer + "\0alice\0pw"s);
}

TEST(AuthRedactor, LoginUserNeverHoldsABearerCredential) {
  AuthRedactor r;
  const std::string wire = b64(kPastedBearer);
  EXPECT_EQ(r.begin("AUTH LOGIN " + wire).text,
            "AUTH LOGIN [<redacted " + std::to_string(wire.size()) + " bytes>]");
  r.finish(535);
  EXPECT_EQ(r.user(), "");
}

TEST(AuthRedactor, CramMd5UserNeverHoldsABearerCredential) {
  for (const std::string& user :
       {kPastedBearer, "alice Bearer "s + kPastedToken, "alice\x01" + kPastedToken}) {
    AuthRedactor r;
    r.begin("AUTH CRAM-MD5");
    r.server_challenge("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    const std::string wire = b64(user + " b913a602c7eda7a495b4e6e7334d3890");
    EXPECT_EQ(r.client_response(wire).text,
              "[<redacted " + std::to_string(wire.size()) + " bytes>]")
        << user;
    r.finish(535);
    EXPECT_EQ(r.user(), "") << user;
  }
}

// ---- SCRAM (RFC 7677 example) ----

TEST(AuthRedactor, ScramSha256) {
  AuthRedactor r;
  const std::string first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
  const auto line = r.begin("AUTH SCRAM-SHA-256 " + b64(first));
  EXPECT_EQ(line.text, "AUTH SCRAM-SHA-256 " + b64(first));
  EXPECT_FALSE(line.redacted);
  EXPECT_EQ(line.decoded, first);
  EXPECT_EQ(r.user(), "user");
  EXPECT_EQ(r.mechanism(), "SCRAM-SHA-256");

  const std::string server_first =
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
  const auto sf = r.server_challenge("334 " + b64(server_first));
  EXPECT_FALSE(sf.redacted);
  EXPECT_EQ(sf.decoded, server_first);

  const std::string proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const auto cf = r.client_response(
      b64("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=" + proof));
  EXPECT_EQ(cf.text,
            "[c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=<redacted 44 bytes>]");
  EXPECT_TRUE(cf.redacted);

  const auto fin =
      r.server_challenge("334 " + b64("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  EXPECT_EQ(fin.text, "334 [v=<redacted 44 bytes>]");
  EXPECT_EQ(fin.decoded, "v=<redacted 44 bytes>");
  EXPECT_TRUE(fin.redacted);

  EXPECT_FALSE(r.client_response("").redacted);
  r.finish(235);
  EXPECT_TRUE(r.authenticated());
}

TEST(AuthRedactor, ScramContinuationAndServerError) {
  AuthRedactor r;
  r.begin("AUTH SCRAM-SHA-1");
  EXPECT_FALSE(r.server_challenge("334 ").redacted);
  EXPECT_FALSE(r.client_response(b64("n,,n=bob,r=abc")).redacted);
  r.server_challenge("334 " + b64("r=abcdef,s=c2FsdA==,i=4096"));
  r.client_response(b64("c=biws,r=abcdef,p=cHJvb2Y="));
  const auto e = r.server_challenge("334 " + b64("e=invalid-proof"));
  EXPECT_FALSE(e.redacted);
  EXPECT_EQ(e.decoded, "e=invalid-proof");
}

TEST(AuthRedactor, ScramUnexpectedMessagesAreDenied) {
  AuthRedactor r;
  r.begin("AUTH SCRAM-SHA-256 " + b64("n,,n=bob,r=abc"));
  // A client-final before any server-first is out of order.
  EXPECT_EQ(r.client_response(b64("c=biws,r=abcdef,p=cHJvb2Y=")).text, "[<redacted 36 bytes>]");

  AuthRedactor ext;  // extensions are not understood
  EXPECT_TRUE(ext.begin("AUTH SCRAM-SHA-256 " + b64("n,,m=x,n=bob,r=abc")).redacted);
  EXPECT_TRUE(ext.begin("AUTH SCRAM-SHA-256 " + b64("n,,n=bob,r=abc,x=1")).redacted);

  AuthRedactor srv;
  srv.begin("AUTH SCRAM-SHA-256 " + b64("n,,n=bob,r=abc"));
  EXPECT_EQ(srv.server_challenge("334 " + b64("garbage")).text, "334 [<redacted 12 bytes>]");
}

// A client-first-message is kept as it came: a user name or authzid that decodes to an OAuth
// credential ("=3D" is its "=") would be kept with it.
TEST(AuthRedactor, ScramUserNeverHoldsABearerCredential) {
  for (const std::string& first :
       {"n,,n=alice auth=3DBearer ya29.tok,r=abc"s, "n,a=alice Bearer ya29.tok,n=alice,r=abc"s}) {
    AuthRedactor r;
    const std::string wire = b64(first);
    EXPECT_EQ(r.begin("AUTH SCRAM-SHA-256 " + wire).text,
              "AUTH SCRAM-SHA-256 [<redacted " + std::to_string(wire.size()) + " bytes>]")
        << first;
    r.finish(535);
    EXPECT_EQ(r.user(), "") << first;
  }
}

TEST(AuthRedactor, ScramRedactUsers) {
  RedactionPolicy p;
  p.redact_users = true;
  AuthRedactor r(p);
  const auto line = r.begin("AUTH SCRAM-SHA-256 " + b64("n,a=admin,n=user,r=rOprNGfwEbeRWgbNEkqO"));
  EXPECT_EQ(
      line.text,
      "AUTH SCRAM-SHA-256 [n,a=<redacted 5 bytes>,n=<redacted 4 bytes>,r=rOprNGfwEbeRWgbNEkqO]");
  EXPECT_EQ(r.user(), "");
}

// ---- cancel, unknown, out of sequence ----

TEST(AuthRedactor, Cancel) {
  AuthRedactor r;
  r.begin("AUTH LOGIN");
  r.server_challenge("334 VXNlcm5hbWU6");
  const auto c = r.client_response("*");
  EXPECT_EQ(c.text, "*");
  EXPECT_FALSE(c.redacted);
  EXPECT_EQ(c.decoded, "cancel");
  EXPECT_TRUE(r.in_progress());
  EXPECT_EQ(r.client_response("YWxpY2U=").text, "[<redacted 8 bytes>]");
  r.finish(501);
  EXPECT_FALSE(r.in_progress());
  EXPECT_FALSE(r.authenticated());
}

TEST(AuthRedactor, UnknownMechanismIsDenied) {
  AuthRedactor r;
  const auto line = r.begin("AUTH GSSAPI YIIBzAYJKoZIhvcSAQICAQBuggG7MIIBt6ADAgEF");
  EXPECT_EQ(line.text, "AUTH GSSAPI [<redacted 40 bytes>]");
  EXPECT_TRUE(line.decoded.empty());
  EXPECT_EQ(r.mechanism(), "GSSAPI");
  EXPECT_EQ(r.server_challenge("334 YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEF").text,
            "334 [<redacted 32 bytes>]");
  EXPECT_EQ(r.server_challenge("334 ").text, "334 ");
  EXPECT_EQ(r.client_response("AAAAAA==").text, "[<redacted 8 bytes>]");
  EXPECT_EQ(r.client_response("").text, "");
  EXPECT_EQ(r.client_response("*").text, "*");
}

TEST(AuthRedactor, InvalidMechanismNameIsDenied) {
  AuthRedactor r;
  const auto line = r.begin("AUTH my-password-is-hunter2!");
  EXPECT_EQ(line.text, "AUTH [<redacted 23 bytes>]");
  EXPECT_EQ(r.mechanism(), "");
  EXPECT_TRUE(r.in_progress());
  EXPECT_EQ(r.begin("AUTH").text, "AUTH");
  EXPECT_EQ(r.begin("MAIL FROM:<x>").text, "[<redacted 13 bytes>]");
  EXPECT_EQ(r.begin("").text, "[<redacted 0 bytes>]");
}

// RFC 4422's sasl-mech grammar alone (up to 20 of A-Z 0-9 - _) also fits a PLAIN blob typed
// without its mechanism and a password typed in its place: only registered names are kept.
TEST(AuthRedactor, WordThatIsNoRegisteredMechanismIsTheSecret) {
  for (const std::string line :
       {"AUTH AGFsaWNlAHB3", "AUTH hunter2", "auth\tAGFsaWNlAHB3 ", "AUTH hunter2 AGFsaWNlAHB3",
        "AUTH SCRAM- x", "AUTH GS2-", "AUTH GS2-hunter2", "AUTH SCRAM-SHAhunter2"}) {
    SCOPED_TRACE(line);
    AuthRedactor r;
    const auto out = r.begin(line);
    EXPECT_TRUE(out.redacted);
    EXPECT_EQ(out.text.find("AGFsaWNlAHB3"), std::string::npos) << out.text;
    EXPECT_EQ(out.text.find("hunter2"), std::string::npos) << out.text;
    EXPECT_EQ(out.text.find("SCRAM"), std::string::npos) << out.text;
    EXPECT_EQ(out.text.find("GS2"), std::string::npos) << out.text;
    EXPECT_EQ(r.mechanism(), "");
    EXPECT_TRUE(r.in_progress());
  }
  AuthRedactor r;
  EXPECT_EQ(r.begin("AUTH AGFsaWNlAHB3").text, "AUTH [<redacted 12 bytes>]");
  EXPECT_EQ(r.begin("AUTH hunter2").text, "AUTH [<redacted 7 bytes>]");
  // The exchange goes on as one of an unknown mechanism: every non-empty line is denied.
  EXPECT_EQ(r.server_challenge("334 VXNlcm5hbWU6").text, "334 [<redacted 12 bytes>]");
  EXPECT_EQ(r.client_response("YWxpY2U=").text, "[<redacted 8 bytes>]");
}

TEST(AuthRedactor, RegisteredMechanismNamesAreKept) {
  for (const std::string mech :
       {"PLAIN", "login", "Cram-Md5", "DIGEST-MD5", "XOAUTH2", "OAUTHBEARER", "GSSAPI", "NTLM",
        "EXTERNAL", "ANONYMOUS", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "scram-sha3-512", "GS2-KRB5",
        "GS2-KRB5-PLUS", "GSS-SPNEGO"}) {
    SCOPED_TRACE(mech);
    AuthRedactor r;
    EXPECT_EQ(r.begin("AUTH " + mech).text, "AUTH " + mech);
    std::string upper = mech;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(r.mechanism(), upper);
  }
}

// One table names the registered mechanisms for the record and for mailtap's own AUTH: each
// name, in any case, is kept after AUTH as that name, is read by its family, and parses back to
// the mechanism mailtap speaks by it, if any.
TEST(AuthRedactor, EveryRegisteredNameIsKeptReadAndParsedAlike) {
  ASSERT_FALSE(registered_mechanisms().empty());
  for (const RegisteredMechanism& m : registered_mechanisms()) {
    const std::string name(m.name);
    SCOPED_TRACE(name);
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(find_registered_mechanism(lower), &m);

    AuthRedactor r;
    EXPECT_EQ(r.begin("AUTH " + lower).text, "AUTH " + lower);
    EXPECT_EQ(r.mechanism(), name);
    const bool challenge_kept = !r.server_challenge("334 " + b64("Username:")).redacted;
    if (m.family == MechanismFamily::opaque) {
      EXPECT_FALSE(challenge_kept);
    } else if (m.family == MechanismFamily::login) {
      EXPECT_TRUE(challenge_kept);
    }

    const std::optional<Mechanism> spoken = parse_mechanism(lower);
    EXPECT_EQ(spoken, spoken_mechanism(m.family));
    if (spoken) {
      EXPECT_EQ(to_string(*spoken), name);
    }
  }
  for (Mechanism m : {Mechanism::xoauth2, Mechanism::oauthbearer, Mechanism::plain,
                      Mechanism::login, Mechanism::cram_md5}) {
    const RegisteredMechanism* entry = find_registered_mechanism(to_string(m));
    ASSERT_NE(entry, nullptr) << to_string(m);
    EXPECT_EQ(spoken_mechanism(entry->family), m);
  }
}

// The dialogue's longest line (12288 octets) in the shape a search per token found slowest: a
// user name of thousands of one letter and hundreds of two-letter tokens that begin with it. The
// user name is checked against every token: kept while it holds none, and the response denied
// whole once its last token is one the user name holds.
TEST(AuthRedactor, LongestLineOfManyTokensIsCheckedAgainstEachToken) {
  const std::string authzid(4600, 'a');
  std::string password;
  while (password.size() + 2 * 15 <= 9216 - authzid.size() - 3) password += "auth=Bearer ab ";
  for (const std::string last : {"auth=Bearer ab ", "auth=Bearer aa "}) {
    SCOPED_TRACE(last);
    AuthRedactor r;
    r.begin("AUTH PLAIN");
    r.server_challenge("334 ");
    const std::string line = b64(authzid + '\0' + "u" + '\0' + password + last);
    ASSERT_LE(line.size(), 12288U);
    const std::string redacted_password =
        "<redacted " + std::to_string(password.size() + last.size()) + " bytes>";
    const std::string expected =
        last == "auth=Bearer ab "
            ? "[authzid=\"" + authzid + "\" authcid=\"u\" password=" + redacted_password + "]"
            : "[<redacted " + std::to_string(line.size()) + " bytes>]";
    EXPECT_EQ(r.client_response(line).text, expected);
    EXPECT_EQ(r.user(), last == "auth=Bearer ab " ? "u" : "");
  }
}

TEST(AuthRedactor, OutOfSequenceLinesAreDenied) {
  AuthRedactor r;
  EXPECT_EQ(r.client_response("YWxpY2U=").text, "[<redacted 8 bytes>]");
  EXPECT_EQ(r.client_response("*").text, "[<redacted 1 bytes>]");
  EXPECT_EQ(r.server_challenge("334 VXNlcm5hbWU6").text, "[<redacted 16 bytes>]");
  r.begin("AUTH LOGIN");
  EXPECT_EQ(r.server_challenge("235 2.7.0 ok").text, "[<redacted 12 bytes>]");
  EXPECT_EQ(r.server_challenge("334 not base64!").text, "334 [<redacted 11 bytes>]");
  r.finish(535);
  r.finish(235);  // no exchange in progress: ignored
  EXPECT_FALSE(r.authenticated());
}

TEST(AuthRedactor, AuthenticatedIdentityIsFrozen) {
  AuthRedactor r;
  r.begin("AUTH PLAIN " + b64("\0alice\0pw1"s));
  r.finish(235);
  r.begin("AUTH PLAIN " + b64("\0mallory\0pw2"s));
  EXPECT_EQ(r.user(), "alice");
  r.finish(503);
  EXPECT_TRUE(r.authenticated());
  EXPECT_EQ(r.user(), "alice");
  EXPECT_EQ(r.mechanism(), "PLAIN");
}

TEST(AuthRedactor, FailedThenSucceededReportsLatest) {
  AuthRedactor r;
  r.begin("AUTH PLAIN " + b64("\0alice\0wrong"s));
  r.finish(535);
  EXPECT_EQ(r.user(), "alice");
  r.begin("AUTH LOGIN " + b64("bob"));
  EXPECT_EQ(r.user(), "bob");
  EXPECT_EQ(r.mechanism(), "LOGIN");
  r.client_response(b64("right"));
  r.finish(235);
  EXPECT_TRUE(r.authenticated());
  EXPECT_EQ(r.user(), "bob");
}

// ---- policy ----

TEST(AuthRedactor, RedactUsers) {
  RedactionPolicy p;
  p.redact_users = true;
  {
    AuthRedactor r(p);
    EXPECT_EQ(r.begin("AUTH PLAIN " + b64("admin\0alice@example.test\0s3cret-Pa55!"s)).text,
              "AUTH PLAIN [authzid=<redacted 5 bytes> authcid=<redacted 18 bytes> "
              "password=<redacted 12 bytes>]");
    EXPECT_EQ(r.user(), "");
    r.finish(235);
    EXPECT_TRUE(r.authenticated());
    EXPECT_EQ(r.user(), "");
  }
  {
    AuthRedactor r(p);
    const auto inline_user = r.begin("AUTH LOGIN YWxpY2U=");
    EXPECT_EQ(inline_user.text, "AUTH LOGIN [user=<redacted 5 bytes>]");
    EXPECT_TRUE(inline_user.redacted);
    AuthRedactor r2(p);
    r2.begin("AUTH LOGIN");
    r2.server_challenge("334 VXNlcm5hbWU6");
    EXPECT_EQ(r2.client_response("YWxpY2U=").text, "[user=<redacted 5 bytes>]");
    EXPECT_EQ(r2.user(), "");
  }
  {
    AuthRedactor r(p);
    r.begin("AUTH CRAM-MD5");
    r.server_challenge("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    EXPECT_EQ(r.client_response("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw").text,
              "[user=<redacted 3 bytes> digest=<redacted 32 bytes>]");
    EXPECT_EQ(r.user(), "");
  }
  {
    AuthRedactor r(p);
    EXPECT_EQ(r.begin("AUTH XOAUTH2 " + b64("user=u@x\x01"
                                            "auth=Bearer tok\x01\x01"))
                  .text,
              "AUTH XOAUTH2 [user=<redacted 3 bytes> bearer=<redacted 3 bytes>]");
    AuthRedactor r2(p);
    EXPECT_EQ(r2.begin("AUTH OAUTHBEARER " + b64("n,a=u@x,\x01"
                                                 "auth=Bearer tok\x01\x01"))
                  .text,
              "AUTH OAUTHBEARER [user=<redacted 3 bytes> bearer=<redacted 3 bytes>]");
    EXPECT_EQ(r2.user(), "");
  }
}

TEST(AuthRedactor, FingerprintsCompareSecretsWithoutRevealingThem) {
  const RedactionPolicy p = with_key(0x42);
  auto plain_fp = [&](const RedactionPolicy& policy, std::string_view password) {
    AuthRedactor r(policy);
    return fp_of(r.begin("AUTH PLAIN " + b64("\0alice\0"s + std::string(password))).text);
  };
  auto login_fp = [&](const RedactionPolicy& policy, std::string_view password) {
    AuthRedactor r(policy);
    r.begin("AUTH LOGIN YWxpY2U=");
    r.server_challenge("334 UGFzc3dvcmQ6");
    return fp_of(r.client_response(b64(password)).text);
  };
  const std::string a = plain_fp(p, "s3cret-Pa55!");
  ASSERT_EQ(a.size(), 16u);
  EXPECT_EQ(a, plain_fp(p, "s3cret-Pa55!"));
  EXPECT_EQ(a, login_fp(p, "s3cret-Pa55!"));  // same secret, different mechanism
  EXPECT_NE(a, plain_fp(p, "s3cret-Pa55?"));
  EXPECT_NE(a, plain_fp(with_key(0x43), "s3cret-Pa55!"));  // keyed: not a plain hash

  AuthRedactor r(p);
  const auto line = r.begin("AUTH PLAIN " + b64("\0alice\0s3cret-Pa55!"s));
  EXPECT_EQ(line.text,
            R"(AUTH PLAIN [authzid="" authcid="alice" password=<redacted 12 bytes fp=)" + a + ">]");
  EXPECT_EQ(plain_fp({}, "s3cret-Pa55!"), "");  // no key, no fingerprint
}

// ---- properties ----

bool printable(const std::string& s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// Drives every mechanism with `secret` as the password/token/proof and returns all renderings.
std::vector<RedactedLine> run_all(const RedactionPolicy& p, const std::string& user,
                                  const std::string& secret, std::vector<std::string>& blobs) {
  std::vector<RedactedLine> out;
  auto add = [&](RedactedLine l) { out.push_back(std::move(l)); };
  const std::string plain = "\0"s + user + "\0"s + secret;
  const std::string xoauth = "user=" + user +
                             "\x01"
                             "auth=Bearer " +
                             secret + "\x01\x01";
  const std::string bearer = "n,a=" + user +
                             ",\x01"
                             "auth=Bearer " +
                             secret + "\x01\x01";
  const std::string scram_final = "c=biws,r=abcdef,p=" + b64(secret);
  blobs = {plain, xoauth, bearer, scram_final, user + " " + secret};
  {
    AuthRedactor r(p);
    add(r.begin("AUTH PLAIN " + b64(plain)));
  }
  {
    AuthRedactor r(p);
    add(r.begin("AUTH PLAIN"));
    add(r.server_challenge("334 "));
    add(r.client_response(b64(plain)));
  }
  for (const std::string& broken :
       {plain + "\0"s, "\0"s + secret, secret, plain + " ", b64(plain) + "x"}) {
    AuthRedactor r(p);
    add(r.begin("AUTH PLAIN " + b64(broken)));
    add(r.begin("AUTH PLAIN " + broken));
    add(r.client_response(b64(broken)));
    add(r.client_response(broken));
  }
  {
    AuthRedactor r(p);
    add(r.begin("AUTH LOGIN"));
    add(r.server_challenge("334 VXNlcm5hbWU6"));
    add(r.client_response(b64(user)));
    add(r.server_challenge("334 UGFzc3dvcmQ6"));
    add(r.client_response(b64(secret)));
    add(r.client_response(b64(secret)));
    add(r.client_response(secret));
  }
  {
    AuthRedactor r(p);
    add(r.begin("AUTH LOGIN " + b64(user)));
    add(r.client_response(b64(secret)));
  }
  {
    AuthRedactor r(p);
    add(r.begin("AUTH CRAM-MD5"));
    add(r.server_challenge("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"));
    add(r.client_response(b64(user + " " + secret)));
  }
  for (const std::string& mech : {"XOAUTH2"s, "OAUTHBEARER"s}) {
    AuthRedactor r(p);
    add(r.begin("AUTH " + mech + " " + b64(mech == "XOAUTH2" ? xoauth : bearer)));
    add(r.server_challenge("334 " + b64(R"({"status":"401"})")));
    add(r.client_response(b64(xoauth)));
  }
  {
    AuthRedactor r(p);
    add(r.begin("AUTH SCRAM-SHA-256 " + b64("n,,n=" + user + ",r=abc")));
    add(r.server_challenge("334 " + b64("r=abcdef,s=c2FsdA==,i=4096")));
    add(r.client_response(b64(scram_final)));
    add(r.server_challenge("334 " + b64("v=" + b64(secret))));
    add(r.client_response(""));
  }
  {
    AuthRedactor r(p);
    add(r.begin("AUTH GSSAPI " + b64(secret)));
    add(r.server_challenge("334 " + b64(secret)));
    add(r.client_response(b64(secret)));
  }
  {
    AuthRedactor r(p);
    add(r.begin("AUTH " + secret));
    add(r.begin(secret));
  }
  return out;
}

TEST(AuthRedactorProperty, NoSecretInAnyRendering) {
  const std::vector<std::string> secrets = {
      "s3cret-Pa55!",
      "correct horse battery staple",
      "p\xc3\xa4ssw\xc3\xb6rd-\xe2\x82\xac",
      "ya29.A0ARrdaM-very-long-oauth-token_with.dots-and_underscores-1234567890",
      "tab\there\"quote\\back",
      "b913a602c7eda7a495b4e6e7334d3890",
      "==padded==",
  };
  const std::vector<std::string> users = {"alice@example.test", "svc-mailer"};
  std::vector<RedactionPolicy> policies(4);
  policies[1].redact_users = true;
  policies[2] = with_key(7);
  policies[3] = with_key(9);
  policies[3].redact_users = true;

  for (const auto& policy : policies) {
    for (const auto& user : users) {
      for (const auto& secret : secrets) {
        std::vector<std::string> blobs;
        const auto lines = run_all(policy, user, secret, blobs);
        std::vector<std::string> forbidden = {secret, b64(secret)};
        for (const auto& blob : blobs) forbidden.push_back(b64(blob));
        if (policy.redact_users) {
          forbidden.push_back(user);
          forbidden.push_back(b64(user));
        }
        for (const auto& line : lines) {
          EXPECT_TRUE(printable(line.text)) << line.text;
          EXPECT_TRUE(printable(line.decoded)) << line.decoded;
          for (const auto& f : forbidden) {
            EXPECT_EQ(line.text.find(f), std::string::npos) << "'" << f << "' in " << line.text;
            EXPECT_EQ(line.decoded.find(f), std::string::npos)
                << "'" << f << "' in " << line.decoded;
          }
        }
      }
    }
  }
}

TEST(AuthRedactorProperty, ArbitraryBytesRenderPrintable) {
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
  for (int i = 0; i < 2000; ++i) {
    std::string junk(next() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(next() >> 24);
    AuthRedactor r(with_key(1));
    for (const auto& line :
         {r.begin("AUTH PLAIN " + b64(junk)), r.begin(junk),
          r.begin("AUTH SCRAM-SHA-1 " + b64(junk)), r.server_challenge("334 " + b64(junk)),
          r.client_response(b64(junk)), r.client_response(junk)}) {
      EXPECT_TRUE(printable(line.text));
      EXPECT_TRUE(printable(line.decoded));
    }
  }
}

}  // namespace
}  // namespace mailtap::smtp
