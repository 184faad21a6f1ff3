// The one-line replies that explain why mailtap's own AUTH failed, for the failures people meet
// at Gmail and Microsoft 365.
#include "proxy/smtp/auth_explanation.hpp"

#include <gtest/gtest.h>

#include "proxy/smtp/base64.hpp"
#include "reply_of.hpp"

namespace mailtap::smtp {
namespace {

using test_support::reply_of;

SaslFailure refused(std::string_view raw) {
  SaslFailure f;
  f.kind = SaslFailure::Kind::refused;
  f.reply = reply_of(raw);
  return f;
}

SaslFailure token_refused(std::string_view json, std::string_view raw) {
  SaslFailure f = refused(raw);
  f.error_challenge = reply_of("334 " + base64_encode(json) + "\r\n");
  f.oauth_error = parse_oauth_error(json);
  return f;
}

AuthAttempt gmail(Mechanism m) {
  return {m, "alice@gmail.com", "smtp.gmail.com"};
}
AuthAttempt microsoft(Mechanism m) {
  return {m, "bob@contoso.com", "smtp.office365.com"};
}

void expect_well_formed(const std::string& line) {
  EXPECT_LE(line.size(), kMaxExplanation) << line;
  for (char c : line) EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << line;
  // One code for every failure of mailtap's own AUTH, whatever the server answered: a relaying
  // client defers its mail rather than bounce it for mailtap's configuration.
  EXPECT_EQ(line.rfind("454 4.7.0 mailtap: ", 0), 0u) << line;
}

std::string explain(const AuthAttempt& a, const SaslFailure& f) {
  std::string line = explain_auth_failure(a, f);
  expect_well_formed(line);
  return line;
}

constexpr std::string_view kGmailAppPassword =
    "534-5.7.9 Application-specific password required. For more information, go to\r\n"
    "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor a1-2 - gsmtp\r\n";
constexpr std::string_view kGmailBadCredentials =
    "535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
    "535 5.7.8  https://support.google.com/mail/?p=BadCredentials a1-2 - gsmtp\r\n";

TEST(AuthExplanation, GmailAppPasswordRequired) {
  EXPECT_EQ(explain(gmail(Mechanism::plain), refused(kGmailAppPassword)),
            "454 4.7.0 mailtap: smtp.gmail.com refused AUTH PLAIN as alice@gmail.com: 534-5.7.9 "
            "Application-specific password required (see "
            "https://support.google.com/mail/?p=InvalidSecondFactor); create an app password at "
            "your Google account's security page (https://myaccount.google.com/apppasswords) and "
            "give it with --password-cmd, or use --oauth2-token-cmd");
}

TEST(AuthExplanation, GmailBadCredentials) {
  EXPECT_EQ(explain(gmail(Mechanism::login), refused(kGmailBadCredentials)),
            "454 4.7.0 mailtap: smtp.gmail.com refused AUTH LOGIN as alice@gmail.com: 535-5.7.8 "
            "Username and Password not accepted (see "
            "https://support.google.com/mail/?p=BadCredentials); the user name or password is "
            "wrong (Gmail wants the full address, and an app password when 2-Step Verification "
            "is on)");
}

TEST(AuthExplanation, GmailSuspiciousSignIn) {
  const std::string line = explain(
      gmail(Mechanism::plain),
      refused(
          "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbs>\r\n"
          "534-5.7.14 Please log in via your web browser and then try again.\r\n"
          "534 5.7.14  Learn more at https://support.google.com/mail/answer/78754 - gsmtp\r\n"));
  EXPECT_NE(line.find(": 534-5.7.14 "), std::string::npos) << line;
  EXPECT_NE(line.find("sign in once with a web browser"), std::string::npos) << line;
}

TEST(AuthExplanation, GmailAuthenticationRequiredAndRateLimit) {
  std::string line = explain(
      gmail(Mechanism::plain),
      refused(
          "530-5.7.0 Authentication Required. For more information, "
          "go to\r\n530 5.7.0  https://support.google.com/mail/?p=WantAuthError x - gsmtp\r\n"));
  EXPECT_NE(line.find(": 530-5.7.0 Authentication Required"), std::string::npos) << line;
  EXPECT_NE(line.find("requires authentication"), std::string::npos) << line;
  line =
      explain(gmail(Mechanism::plain),
              refused("454 4.7.0 Too many login attempts, please try again later. x - gsmtp\r\n"));
  EXPECT_NE(line.find(": 454 4.7.0 Too many login attempts"), std::string::npos) << line;
  EXPECT_NE(line.find("wait several minutes"), std::string::npos) << line;
  line = explain({Mechanism::plain, "alice", "mx.example"},
                 refused("530 5.7.0 Must issue a STARTTLS command first\r\n"));
  EXPECT_NE(line.find("do not use --tls none"), std::string::npos) << line;
}

TEST(AuthExplanation, MicrosoftBasicAuthDisabledVariants) {
  std::string line = explain(
      microsoft(Mechanism::login),
      refused("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
              "the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
              "[SN4PR0201CA0047.namprd02.prod.outlook.com]\r\n"));
  EXPECT_EQ(line.substr(0, 38), "454 4.7.0 mailtap: smtp.office365.com ");
  EXPECT_NE(line.find(": 535 5.7.139 Authentication unsuccessful"), std::string::npos) << line;
  EXPECT_NE(line.find("Set-CASMailbox -SmtpClientAuthenticationDisabled $false"), std::string::npos)
      << line;
  line = explain(microsoft(Mechanism::login),
                 refused("535 5.7.139 Authentication unsuccessful, basic authentication is "
                         "disabled. [AM0PR02CA0001.eurprd02.prod.outlook.com]\r\n"));
  EXPECT_NE(line.find("use XOAUTH2 with --oauth2-token-cmd and a token for "
                      "https://outlook.office.com/SMTP.Send"),
            std::string::npos)
      << line;
  line = explain(microsoft(Mechanism::login),
                 refused("535 5.7.139 Authentication unsuccessful, the user credentials were "
                         "incorrect. [x.prod.outlook.com]\r\n"));
  EXPECT_NE(line.find("the user name (the full address) or the password is wrong"),
            std::string::npos)
      << line;
}

TEST(AuthExplanation, Microsoft573And5730) {
  std::string line = explain(microsoft(Mechanism::login),
                             refused("535 5.7.3 Authentication unsuccessful [x.outlook.com]\r\n"));
  EXPECT_NE(line.find(": 535 5.7.3 Authentication unsuccessful"), std::string::npos) << line;
  EXPECT_NE(line.find("Security Defaults"), std::string::npos) << line;
  line = explain(microsoft(Mechanism::xoauth2),
                 refused("535 5.7.3 Authentication unsuccessful [x.outlook.com]\r\n"));
  EXPECT_NE(line.find("refused AUTH XOAUTH2 as bob@contoso.com"), std::string::npos) << line;
  EXPECT_NE(line.find("with scope https://outlook.office.com/SMTP.Send"), std::string::npos)
      << line;
  EXPECT_NE(line.find("SMTP AUTH must be enabled for the mailbox"), std::string::npos) << line;
  line = explain(microsoft(Mechanism::login),
                 refused("550 5.7.30 Basic authentication is not supported for Client "
                         "Submission.\r\n"));
  EXPECT_NE(line.find(": 550 5.7.30 Basic authentication"), std::string::npos) << line;
  EXPECT_NE(line.find("no longer accepts passwords"), std::string::npos) << line;
}

TEST(AuthExplanation, TokenExpiredOrRevoked) {
  const SaslFailure f = token_refused(
      "{\"status\":\"401\",\"schemes\":\"bearer mac\",\"scope\":\"https://mail.google.com/\"}\n",
      kGmailBadCredentials);
  std::string line = explain(gmail(Mechanism::xoauth2), f);
  EXPECT_EQ(line,
            "454 4.7.0 mailtap: smtp.gmail.com refused AUTH XOAUTH2 as alice@gmail.com: 535-5.7.8 "
            "Username and Password not accepted (see "
            "https://support.google.com/mail/?p=BadCredentials) (error challenge: status 401, "
            "schemes bearer mac, scope https://mail.google.com/); the token has expired or was "
            "revoked: --oauth2-token-cmd must print a fresh one");
  AuthAttempt fresh = gmail(Mechanism::xoauth2);
  fresh.fresh_token = true;
  line = explain(fresh, f);
  EXPECT_NE(line.find("authorize it again"), std::string::npos) << line;
}

TEST(AuthExplanation, TokenWrongScopeNamesTheScope) {
  const std::string json =
      R"({"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"})";
  std::string line = explain(gmail(Mechanism::xoauth2), token_refused(json, kGmailBadCredentials));
  EXPECT_NE(line.find("the token lacks the scope this needs (https://mail.google.com/)"),
            std::string::npos)
      << line;
  line = explain(microsoft(Mechanism::oauthbearer),
                 token_refused(R"({"status":"insufficient_scope"})", "535 5.7.3 no\r\n"));
  EXPECT_NE(line.find("(https://outlook.office.com/SMTP.Send)"), std::string::npos) << line;
  // Unknown provider: the scope the server named.
  line = explain({Mechanism::xoauth2, "u", "mx.example.org"},
                 token_refused(R"({"status":"400","scope":"mail.send"})", "535 5.7.8 no\r\n"));
  EXPECT_NE(line.find("(mail.send)"), std::string::npos) << line;
}

TEST(AuthExplanation, ServerClosedAfterTheErrorChallenge) {
  SaslFailure f;
  f.kind = SaslFailure::Kind::refused;
  f.oauth_error = parse_oauth_error(R"({"status":"401"})");
  f.error_challenge = reply_of("334 e30=\r\n");
  EXPECT_EQ(explain(gmail(Mechanism::xoauth2), f),
            "454 4.7.0 mailtap: smtp.gmail.com refused AUTH XOAUTH2 as alice@gmail.com: (error "
            "challenge: status 401); the token has expired or was revoked: --oauth2-token-cmd "
            "must print a fresh one");
}

TEST(AuthExplanation, LocalFailures) {
  SaslFailure f;
  f.kind = SaslFailure::Kind::no_token;
  f.detail = "--oauth2-token-cmd exited with status 1";
  EXPECT_EQ(explain(gmail(Mechanism::xoauth2), f),
            "454 4.7.0 mailtap: cannot AUTH XOAUTH2 as alice@gmail.com to smtp.gmail.com: "
            "--oauth2-token-cmd exited with status 1; run the token command yourself to see what "
            "it prints (its error output is in mailtap's log)");
  f.detail = "--oauth2-token-cmd printed nothing";
  EXPECT_NE(explain(gmail(Mechanism::xoauth2), f).find("printed nothing"), std::string::npos);

  f.kind = SaslFailure::Kind::no_mechanism;
  f.detail =
      "the server offers AUTH PLAIN LOGIN: no XOAUTH2 or OAUTHBEARER for an OAuth token; "
      "give a password instead";
  EXPECT_EQ(explain({std::nullopt, "alice", "mx.example"}, f),
            "454 4.7.0 mailtap: cannot AUTH as alice to mx.example: the server offers AUTH PLAIN "
            "LOGIN: no XOAUTH2 or OAUTHBEARER for an OAuth token; give a password instead");

  f.kind = SaslFailure::Kind::too_long;
  f.detail = "too long";
  EXPECT_EQ(explain(gmail(Mechanism::xoauth2), f),
            "454 4.7.0 mailtap: cannot AUTH XOAUTH2 as alice@gmail.com to smtp.gmail.com: too "
            "long");
  f.kind = SaslFailure::Kind::unusable;
  EXPECT_EQ(explain(gmail(Mechanism::xoauth2), f),
            "454 4.7.0 mailtap: cannot AUTH XOAUTH2 as alice@gmail.com to smtp.gmail.com: too "
            "long; fix the user name or the secret mailtap was given");
}

TEST(AuthExplanation, ProtocolFailureQuotesTheServersReply) {
  SaslFailure f;
  f.kind = SaslFailure::Kind::protocol;
  f.detail = "the server asked for the user name twice";
  f.reply = reply_of("501 5.7.0 Authentication aborted\r\n");
  EXPECT_EQ(explain({Mechanism::login, "alice", "mx.example"}, f),
            "454 4.7.0 mailtap: mx.example broke off AUTH LOGIN as alice: the server asked for "
            "the user name twice, then answered 501 5.7.0 Authentication aborted");
  f.reply = reply_of("250 ok\r\n");
  EXPECT_EQ(explain({Mechanism::login, "alice", "mx.example"}, f),
            "454 4.7.0 mailtap: mx.example broke off AUTH LOGIN as alice: the server asked for "
            "the user name twice, then answered 250 ok");
}

TEST(AuthExplanation, GenericAndUnknownServers) {
  std::string line = explain({Mechanism::plain, "alice", "127.0.0.1"},
                             refused("535 5.7.8 Error: authentication failed: authentication "
                                     "failure\r\n"));
  EXPECT_EQ(line,
            "454 4.7.0 mailtap: 127.0.0.1 refused AUTH PLAIN as alice: 535 5.7.8 Error: "
            "authentication failed: authentication failure; the user name or the password is "
            "wrong");
  line = explain({Mechanism::plain, "alice", "mx"}, refused("535 Authentication failed\r\n"));
  EXPECT_EQ(line,
            "454 4.7.0 mailtap: mx refused AUTH PLAIN as alice: 535 Authentication failed; "
            "the user name or the password is wrong");
  line = explain({Mechanism::plain, "alice", "mx"}, refused("421 4.4.2 timeout\r\n"));
  EXPECT_NE(line.find("try again later"), std::string::npos);
}

TEST(AuthExplanation, HostileTextStaysOneBoundedPrintableLine) {
  std::string raw = "535-5.7.8 \x1b[31mred\x07 " + std::string(3000, 'x') + "\r\n535 5.7.8 end\r\n";
  SaslFailure f = refused(raw);
  const std::string user = "eve\x01\r\n" + std::string(400, 'u');
  const std::string line = explain({Mechanism::plain, user, std::string(300, 'h')}, f);
  EXPECT_EQ(line.size() <= kMaxExplanation, true);
}

// Where the line is cut to fit, the cut falls between escapes: a quoted name or server text
// ends in a whole \xHH (or \" or \\), never in a stray "\x4" that reads as other text.
bool ends_inside_an_escape(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\\') continue;
    const std::size_t length = i + 1 < line.size() && line[i + 1] == 'x' ? 4 : 2;
    if (i + length > line.size()) return true;
    i += length - 1;
  }
  return false;
}

TEST(AuthExplanation, ALineCutToFitIsNeverCutInsideAnEscape) {
  const auto expect_whole_escapes_at_each_cut = [](const std::string& line) {
    std::size_t cuts = 0;
    for (std::size_t at = line.find("..."); at != std::string::npos;
         at = line.find("...", at + 3), ++cuts)
      EXPECT_FALSE(ends_inside_an_escape(std::string_view(line).substr(0, at))) << line;
    EXPECT_GT(cuts, 0u) << line;
  };
  for (std::size_t n = 1; n <= 100; ++n) {
    SCOPED_TRACE(n);
    // A long head (host and name): with the longest, the whole line is cut.
    expect_whole_escapes_at_each_cut(
        explain({Mechanism::plain, std::string(200, '\xe9'), std::string(n, 'h')},
                refused("535 5.7.8 no\r\n")));
    // The server's text is cut, the advice kept.
    const std::string text = std::string(n, 's') + std::string(300, '\xe9');
    expect_whole_escapes_at_each_cut(
        explain({Mechanism::plain, "alice", "mx"}, refused("535 5.7.8 " + text + "\r\n")));
  }
}

}  // namespace
}  // namespace mailtap::smtp
