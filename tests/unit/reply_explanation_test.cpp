#include "tools/reply_explanation.hpp"

#include <gtest/gtest.h>

#include <utility>

#include "tools/reply_codes.hpp"

namespace mailtap::tools {
namespace {

TEST(ReplyAdvice, GmailWordingsGetGmailAdvice) {
  auto a = advise_reply(535, "5.7.8",
                        "535-5.7.8 Username and Password not accepted. For more information, go "
                        "to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - "
                        "gsmtp\r\n");
  EXPECT_EQ(a.server, "Gmail");
  EXPECT_NE(a.fix.find("app password"), std::string::npos);
  a = advise_reply(534, "5.7.9", "Application-specific password required");
  EXPECT_EQ(a.server, "Gmail");
  EXPECT_NE(a.fix.find("apppasswords"), std::string::npos);
  a = advise_reply(454, "4.7.0", "Too many login attempts, please try again later.");
  EXPECT_EQ(a.server, "Gmail");
  // The same code from another server gets the generic advice.
  a = advise_reply(535, "5.7.8", "Error: authentication failed");
  EXPECT_EQ(a.server, "");
  EXPECT_EQ(a.meaning, "authentication failed: user name or password not accepted");
  EXPECT_FALSE(a.fix.empty());
}

TEST(ReplyAdvice, AServersReplyIsNeverGivenMailtapsOwnMeaning) {
  // A server may say anything, "mailtap:" included: from the record's direction it is the
  // server's reply, not mailtap's refusal of a self-signed certificate.
  const std::string_view text = "421 4.7.0 mailtap: certificate is self-signed\r\n";
  EXPECT_EQ(advise_reply(421, "4.7.0", text, ReplyFrom::server).server, "");
  EXPECT_EQ(advise_reply(421, "4.7.0", text, ReplyFrom::mailtap).server, "mailtap");
  EXPECT_EQ(advise_reply(421, "4.7.0", text).server, "mailtap");  // typed in: by its prefix
  // A CA the server named "Self-Signed Root" does not make a missing intermediate self-signed.
  const auto chain = advise_reply(
      421, "4.7.0",
      "421 4.7.0 mailtap: certificate for mx.example did not send and mailtap does not trust "
      "its issuer (CN=Self-Signed Root)\r\n",
      ReplyFrom::mailtap);
  EXPECT_NE(chain.meaning.find("without the CA certificate that issued it"), std::string::npos);
}

TEST(ReplyAdvice, MicrosoftWordingsTellTheThreeCasesApart) {
  const auto tenant = advise_reply(
      535, "5.7.139",
      "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.");
  const auto basic = advise_reply(535, "5.7.139",
                                  "Authentication unsuccessful, basic authentication is disabled.");
  const auto wrong = advise_reply(
      535, "5.7.139", "Authentication unsuccessful, the user credentials were incorrect.");
  for (const auto* a : {&tenant, &basic, &wrong}) EXPECT_EQ(a->server, "Microsoft 365");
  EXPECT_NE(tenant.fix.find("Set-TransportConfig"), std::string::npos);
  EXPECT_NE(basic.fix.find("XOAUTH2"), std::string::npos);
  EXPECT_NE(wrong.meaning.find("user name and password"), std::string::npos);
  // Without text the code alone is still Microsoft's.
  EXPECT_EQ(advise_reply(535, "5.7.139").server, "Microsoft 365");
  EXPECT_EQ(advise_reply(550, "5.7.30",
                         "Basic authentication is not supported for Client "
                         "Submission.")
                .server,
            "Microsoft 365");
  // 5.7.30 without Microsoft's words keeps its registered meaning, advice covers both.
  const auto requiretls = advise_reply(550, "5.7.30");
  EXPECT_EQ(requiretls.server, "");
  EXPECT_NE(requiretls.meaning.find("REQUIRETLS"), std::string::npos);
  EXPECT_NE(requiretls.fix.find("Microsoft 365"), std::string::npos);
}

// intl18-F5: Postfix's refusals of a non-ASCII address sent without SMTPUTF8, and of octets
// that are not UTF-8, got the advice for a mistyped address or an overlong line.
TEST(ReplyAdvice, PostfixUtf8RefusalsNameTheirCause) {
  const auto undeclared =
      advise_reply(553, "5.6.7", "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
  EXPECT_EQ(undeclared.server, "Postfix");
  EXPECT_NE(undeclared.meaning.find("without the SMTPUTF8 parameter"), std::string::npos);
  EXPECT_NE(undeclared.fix.find("SMTPUTF8"), std::string::npos) << undeclared.fix;
  EXPECT_EQ(undeclared.fix.find("<user@example.com>"), std::string::npos) << undeclared.fix;
  // The status alone (another server's words) points at SMTPUTF8 too.
  EXPECT_NE(advise_reply(550, "5.6.7").fix.find("SMTPUTF8"), std::string::npos);
  const auto bad_utf8 = advise_reply(500, "5.5.2", "500 5.5.2 Error: bad UTF-8 syntax\r\n");
  EXPECT_EQ(bad_utf8.server, "Postfix");
  EXPECT_NE(bad_utf8.meaning.find("not UTF-8"), std::string::npos) << bad_utf8.meaning;
  EXPECT_NE(bad_utf8.fix.find("UTF-8"), std::string::npos) << bad_utf8.fix;
  EXPECT_EQ(bad_utf8.fix.find("512"), std::string::npos) << bad_utf8.fix;
}

// Exim 4.96 refuses bare-LF header lines in a BDAT message with a 552, the code most servers
// give a message too big: the advice must be about line ends, not size.
TEST(ReplyAdvice, A552ThatIsNotAboutSizeGetsNoSizeAdvice) {
  const auto crlf = advise_reply(552, "", "552 Message header not CRLF terminated\r\n");
  EXPECT_EQ(crlf.server, "Exim");
  EXPECT_NE(crlf.fix.find("CRLF"), std::string::npos) << crlf.fix;
  EXPECT_EQ(crlf.fix.find("smaller"), std::string::npos) << crlf.fix;
  EXPECT_NE(crlf.meaning.find("bare LF"), std::string::npos) << crlf.meaning;
  const auto other = advise_reply(552, "", "552 Message rejected by content policy");
  EXPECT_EQ(other.fix.find("smaller"), std::string::npos) << other.fix;
  EXPECT_NE(other.fix.find("not the message's size"), std::string::npos) << other.fix;
  // Size refusals, and a 552 with no text, keep the size advice.
  for (const char* text : {"", "552", "552 Message size exceeds maximum permitted",
                           "552 5.3.4 Message size exceeds fixed limit", "552 Too much mail data"})
    EXPECT_NE(advise_reply(552, "", text).fix.find("smaller"), std::string::npos) << text;
}

TEST(ReplyAdvice, MailtapReasonsOnlyInMailtapReplies) {
  EXPECT_EQ(advise_reply(421, "4.7.0",
                         "mailtap: 127.0.0.1:25 does not offer STARTTLS; refusing to continue")
                .server,
            "mailtap");
  EXPECT_EQ(advise_reply(421, "4.7.0", "server.example timed out").server, "");
}

// mailtap's own answers between the chunks of a BDAT message: the generic 503/504 advice
// ("commands out of order", "use a parameter the EHLO reply lists") does not say that the
// message is still open, nor how to end or drop it.
TEST(ReplyAdvice, MailtapRefusalsBetweenBdatChunksSayHowToEndOrDropTheMessage) {
  const std::pair<int, const char*> replies[] = {
      {503,
       "5.5.1 mailtap: only BDAT, RSET, NOOP or QUIT, without arguments (NOOP's may be printable "
       "ASCII words, one SP before each), may come between the chunks of a message (RFC 3030); "
       "not forwarded: end the message with BDAT <size> LAST, or drop it with RSET"},
      {504,
       "5.5.4 mailtap: BDAT 0 without LAST between the chunks of a message; not forwarded: end "
       "the message with BDAT <size> LAST, or drop it with RSET"},
      {503,
       "5.5.1 mailtap: DATA after BDAT in one transaction (RFC 3030); not forwarded: end the "
       "message with BDAT <size> LAST, or RSET"},
  };
  for (const auto& [code, reply] : replies) {
    SCOPED_TRACE(reply);
    const std::string text = std::string(reply).substr(6);
    const auto advice = advise_reply(code, std::string_view(reply).substr(0, 5), text);
    EXPECT_EQ(advice.server, "mailtap");
    EXPECT_NE(advice.meaning.find("not forwarded"), std::string::npos) << advice.meaning;
    EXPECT_NE(advice.fix.find("BDAT <size> LAST"), std::string::npos) << advice.fix;
    EXPECT_NE(advice.fix.find("RSET"), std::string::npos) << advice.fix;
    // The same words from a server are the server's.
    EXPECT_NE(
        advise_reply(code, std::string_view(reply).substr(0, 5), text, ReplyFrom::server).server,
        "mailtap");
  }
}

// The same refusals once a chunk of the message was refused: only RSET is advised, as a BDAT
// then ends the session.
TEST(ReplyAdvice, MailtapRefusalsBetweenChunksAfterARefusedChunkAdviseOnlyRset) {
  for (const char* text :
       {"mailtap: only BDAT, RSET, NOOP or QUIT, without arguments (NOOP's may be printable ASCII "
        "words, one SP before each), may come between the chunks of a message (RFC 3030); not "
        "forwarded: a chunk of this message was refused, so drop it with RSET (a BDAT now would "
        "end the session)",
        "mailtap: DATA after BDAT in one transaction (RFC 3030); not forwarded: a chunk of this "
        "message was refused, so drop it with RSET (a BDAT now would end the session)"}) {
    SCOPED_TRACE(text);
    const auto advice = advise_reply(503, "5.5.1", text);
    EXPECT_EQ(advice.server, "mailtap");
    EXPECT_NE(advice.meaning.find("a BDAT now would end the session"), std::string::npos)
        << advice.meaning;
    EXPECT_EQ(advice.fix.find("BDAT <size> LAST"), std::string::npos) << advice.fix;
    EXPECT_EQ(advice.fix.rfind("Send RSET", 0), 0u) << advice.fix;
  }
}

// servers-F1: mailtap's own 552 to a chunk that would pass the server's SIZE; the generic 552
// advice does not say that the server never saw the chunk, nor to send RSET.
TEST(ReplyAdvice, MailtapRefusalOfAChunkPastTheServersSizeReadsAsMailtaps) {
  const std::string text =
      "mailtap: this chunk would take the message to 30129 octets, past the server's SIZE 20480 "
      "less 8192 for the header fields it adds; not forwarded, as a server may stop reading a "
      "chunk at its limit and take the rest as commands; BDAT chunk discarded: send RSET, then a "
      "smaller message";
  const auto advice = advise_reply(552, "5.3.4", text);
  EXPECT_EQ(advice.server, "mailtap");
  EXPECT_NE(advice.meaning.find("not forwarded"), std::string::npos) << advice.meaning;
  EXPECT_NE(advice.fix.find("RSET"), std::string::npos) << advice.fix;
  EXPECT_NE(advise_reply(552, "5.3.4", text, ReplyFrom::server).server, "mailtap");
}

// The same refusal under a SIZE mailtap cannot read: the advice is DATA, not a smaller message.
TEST(ReplyAdvice, MailtapRefusalOfAChunkUnderAnUnreadableSizeReadsAsMailtaps) {
  const std::string text =
      "mailtap: the server's EHLO reply gives a SIZE that mailtap cannot read as a number, so no "
      "chunk is forwarded, as a server may stop reading a chunk at its limit and take the rest "
      "as commands; BDAT chunk discarded: send RSET, then the message with DATA";
  const auto advice = advise_reply(552, "5.3.4", text);
  EXPECT_EQ(advice.server, "mailtap");
  EXPECT_NE(advice.meaning.find("SIZE line without a number"), std::string::npos) << advice.meaning;
  EXPECT_NE(advice.fix.find("DATA"), std::string::npos) << advice.fix;
  EXPECT_NE(advise_reply(552, "5.3.4", text, ReplyFrom::server).server, "mailtap");
}

// The same refusal under a SIZE within mailtap's margin: the advice is DATA, not a smaller
// message, which no message could be.
TEST(ReplyAdvice, MailtapRefusalOfAChunkUnderASizeWithinTheMarginAdvisesData) {
  const std::string text =
      "mailtap: the server's SIZE 1000 leaves no room for BDAT through mailtap, which keeps 8192 "
      "octets below it for the header fields the server adds; not forwarded, as a server may "
      "stop reading a chunk at its limit and take the rest as commands; BDAT chunk discarded: "
      "send RSET, then the message with DATA";
  const auto advice = advise_reply(552, "5.3.4", text);
  EXPECT_EQ(advice.server, "mailtap");
  EXPECT_NE(advice.meaning.find("no chunk can go through mailtap"), std::string::npos)
      << advice.meaning;
  EXPECT_NE(advice.fix.find("with DATA"), std::string::npos) << advice.fix;
  EXPECT_EQ(advice.fix.find("smaller"), std::string::npos) << advice.fix;
}

// mailtap's 500 to a line it would not relay is mailtap's, not a server's unknown command.
TEST(ReplyAdvice, MailtapRefusalsOfALineItWouldNotRelayReadAsMailtaps) {
  const auto nul = advise_reply(500, "5.5.2", "mailtap: NUL byte in command line; not forwarded");
  EXPECT_EQ(nul.server, "mailtap");
  EXPECT_NE(nul.meaning.find("mailtap refused this command line itself"), std::string::npos)
      << nul.meaning;
  EXPECT_NE(nul.fix.find("without the NUL byte"), std::string::npos) << nul.fix;
  const auto long_line =
      advise_reply(500, "5.5.2", "mailtap: line too long (limit 2048 octets); not forwarded");
  EXPECT_EQ(long_line.server, "mailtap");
  EXPECT_NE(long_line.fix.find("shorter line"), std::string::npos) << long_line.fix;
  EXPECT_NE(
      advise_reply(500, "5.5.2", "mailtap: NUL byte in command line", ReplyFrom::server).server,
      "mailtap");
}

// mailtap's 501 to an AUTH line with a user name and a password in clear says how to type them.
TEST(ReplyAdvice, MailtapRefusalOfAnAuthLineInClearSaysHowToTypeIt) {
  const auto refused = advise_reply(
      501, "5.5.4",
      "mailtap: AUTH takes one argument after the mechanism, in base64 (RFC 4954), so no server "
      "takes this line; not forwarded. To type the user name and password as they are, restart "
      "mailtap proxy with --assist-auth; or type what mailtap encode plain USER prints");
  EXPECT_EQ(refused.server, "mailtap");
  EXPECT_NE(refused.fix.find("--assist-auth"), std::string::npos) << refused.fix;
  EXPECT_NE(refused.fix.find("mailtap encode plain USER"), std::string::npos) << refused.fix;
  EXPECT_NE(advise_reply(501, "5.5.4", "Syntax: AUTH mechanism").server, "mailtap");
}

// mailtap's refusals of the client's own commands: the generic advice for the code told the user
// to fix the order of commands, or to connect through the proxy they were connected through.
TEST(ReplyAdvice, MailtapOwnRefusalsGetMailtapsAdvice) {
  const auto authenticated =
      advise_reply(503, "5.5.1", "mailtap: already authenticated as alice (by mailtap)");
  EXPECT_EQ(authenticated.server, "mailtap");
  EXPECT_NE(authenticated.fix.find("auth off"), std::string::npos) << authenticated.fix;
  EXPECT_EQ(authenticated.fix.find("order"), std::string::npos) << authenticated.fix;

  const auto local_tls = advise_reply(
      530, "5.7.0",
      "mailtap: Must issue a STARTTLS command first (--local-tls starttls: AUTH only inside TLS)");
  EXPECT_EQ(local_tls.server, "mailtap");
  EXPECT_NE(local_tls.fix.find("STARTTLS to mailtap"), std::string::npos) << local_tls.fix;
  EXPECT_EQ(local_tls.fix.find("connect through mailtap proxy"), std::string::npos);

  // Its refusal of STARTTLS without --local-tls, as it words it now and as older records have
  // it: the way to TLS for a client that requires it, not "the server does not know this
  // command".
  for (const char* text :
       {"mailtap: STARTTLS is not offered: mailtap already encrypts the link to "
        "smtp.gmail.com:587 (TLSv1.3); a client that requires TLS needs mailtap run with "
        "--local-tls starttls (or implicit)",
        "mailtap: STARTTLS is not needed: mailtap already encrypts the link to "
        "smtp.gmail.com:587 (TLSv1.3)"}) {
    const auto starttls = advise_reply(502, "5.5.1", text);
    EXPECT_EQ(starttls.server, "mailtap") << text;
    EXPECT_NE(starttls.fix.find("--local-tls starttls"), std::string::npos) << starttls.fix;
    EXPECT_EQ(starttls.fix.find("EHLO"), std::string::npos) << starttls.fix;
  }
  // Its refusal under --tls none, and mailtap mock's (its 502, its 421 at a STARTTLS the
  // recording does not have): what to do, not "the server does not know this command".
  const auto plain_relay =
      advise_reply(502, "5.5.1",
                   "mailtap: STARTTLS is not available: this session is relayed in plain text "
                   "(--tls none); a client that requires TLS needs mailtap run with --local-tls "
                   "starttls (or implicit)");
  EXPECT_EQ(plain_relay.server, "mailtap");
  EXPECT_NE(plain_relay.fix.find("--local-tls starttls"), std::string::npos) << plain_relay.fix;
  for (const auto& [code, text] :
       {std::pair{502, "mailtap: STARTTLS is not available: mailtap mock answers in plain text"},
        std::pair{421,
                  "mailtap mock: command 2: the client sent `STARTTLS` where the recording has "
                  "`MAIL FROM:<a@b>`; mailtap mock answers in plain text only: point the client "
                  "at it without STARTTLS; closing"}}) {
    const auto mock = advise_reply(code, code == 502 ? "5.5.1" : "4.3.0", text);
    EXPECT_EQ(mock.server, "mailtap") << text;
    EXPECT_NE(mock.fix.find("without STARTTLS"), std::string::npos) << mock.fix;
  }
  EXPECT_EQ(
      advise_reply(454, "4.7.0", "mailtap: no access token for AUTH: command exited 1").server,
      "mailtap");
  // mailtap's own AUTH failed: its 454 to the client's MAIL, whatever the server answered, is
  // explained as mailtap's (the mail deferred, the configuration to fix), also when the server's
  // quoted words are a known server's.
  for (const char* text :
       {"454 4.7.0 mailtap: 127.0.0.1 refused AUTH PLAIN as alice: 535 5.7.8 Error: "
        "authentication failed; the user name or the password is wrong",
        "454 4.7.0 mailtap: smtp.gmail.com refused AUTH PLAIN as a@gmail.com: 454 4.7.0 Too "
        "many login attempts, please try again later; the server is limiting sign-in attempts",
        "454 4.7.0 mailtap: cannot AUTH XOAUTH2 as alice to mx: --oauth2-token-cmd printed "
        "nothing; run the token command yourself",
        "454 4.7.0 mailtap: mx broke off AUTH LOGIN as alice: the server asked for the user name "
        "twice, then answered 501 5.7.0 no",
        "454 4.7.0 mailtap: mx refused mailtap's EHLO, so mailtap could not authenticate: 550 "
        "no"}) {
    const auto own = advise_reply(454, "4.7.0", text);
    EXPECT_EQ(own.server, "mailtap") << text;
    EXPECT_NE(own.meaning.find("--auth-user"), std::string::npos) << text;
    EXPECT_NE(own.fix.find("restart the proxy"), std::string::npos) << text;
  }
  EXPECT_EQ(advise_reply(454, "4.7.0", "Too many login attempts, please try again later").server,
            "Gmail");
  EXPECT_EQ(advise_reply(421, "4.3.0",
                         "mailtap: recording failed (cannot commit: database or disk is full); "
                         "not accepting sessions")
                .server,
            "mailtap");
  // The same words from a server are the server's.
  EXPECT_EQ(advise_reply(503, "5.5.1", "already authenticated as alice").server, "");
  EXPECT_EQ(advise_reply(530, "5.7.0", "Must issue a STARTTLS command first").server, "");
  EXPECT_EQ(advise_reply(502, "5.5.1", "mailtap already encrypts the link to x", ReplyFrom::server)
                .server,
            "");
}

TEST(ReplyAdvice, SuccessNeedsNoFixFailuresAlwaysGetOne) {
  EXPECT_EQ(advise_reply(250, "2.1.0").fix, "");
  EXPECT_EQ(advise_reply(235, "2.7.0").fix, "");
  EXPECT_FALSE(advise_reply(354, "").fix.empty());
  for (int code : {421, 450, 451, 452, 454, 500, 501, 502, 503, 504, 530, 534,
                   535, 538, 550, 551, 552, 553, 554, 555, 556, 499, 599})
    EXPECT_FALSE(advise_reply(code, "").fix.empty()) << code;
}

TEST(ReplyQueryParse, CodesStatusesAndPastedLines) {
  std::string error;
  auto q = parse_reply_query("535 5.7.8", error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->code, 535);
  EXPECT_EQ(q->enhanced, "5.7.8");
  EXPECT_EQ(q->text, "");
  q = parse_reply_query("535-5.7.8 Username and Password not accepted.", error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->code, 535);
  EXPECT_EQ(q->enhanced, "5.7.8");
  EXPECT_EQ(q->text, "Username and Password not accepted.");
  q = parse_reply_query("  5.7.0 ", error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->code, 0);
  EXPECT_EQ(q->enhanced, "5.7.0");
  q = parse_reply_query("421 Service not available", error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->enhanced, "");
  EXPECT_EQ(q->text, "Service not available");
}

// The reply's text ends where SMTP ends it: blanks (spaces, tabs) and the pasted line end go,
// as everywhere else mailtap reads reply text (trim_blanks); any other control character is
// part of the text, kept to be shown escaped rather than dropped unseen.
TEST(ReplyQueryParse, TextLosesBlanksAndTheLineEndOnly) {
  std::string error;
  auto q = parse_reply_query("535 5.7.8 \tBad credentials \t\r\n", error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->text, "Bad credentials");
  q = parse_reply_query("550 5.1.1 No such user\f", error);
  ASSERT_TRUE(q) << error;
  EXPECT_EQ(q->text, "No such user\f");
  EXPECT_NE(render_explanation_json(*q).find(R"("text":"No such user\u000c")"), std::string::npos)
      << render_explanation_json(*q);
}

TEST(ReplyQueryParse, TwoFailuresOfDifferentKindsAreStillAReply) {
  // Servers do mix a permanent code with a temporary status (and the other way round).
  std::string error;
  for (const char* mixed : {"535 4.7.0", "450 5.7.1 Client host rejected"}) {
    auto q = parse_reply_query(mixed, error);
    ASSERT_TRUE(q) << mixed << ": " << error;
    EXPECT_NE(q->enhanced, "") << mixed;
  }
}

TEST(ReplyQueryParse, RejectsWhatIsNoReply) {
  std::string error;
  for (const char* bad : {"", "hello", "999", "5350", "42", "535 5.7", "535 6.0.0", "250 5.7.1",
                          "535 2.0.0", "354 4.0.0", "1.2"}) {
    error.clear();
    EXPECT_FALSE(parse_reply_query(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(ReplyQueryParse, QuotesWhatItRefusesEscaped) {
  // The error goes to a terminal: a pasted escape sequence must not reach it as one.
  std::string error;
  EXPECT_FALSE(parse_reply_query("x\x1b[31m", error));
  EXPECT_NE(error.find("(got \"x\\x1b[31m\")"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(parse_reply_query("5.9\x1b.1", error));
  EXPECT_EQ(error.find('\x1b'), std::string::npos) << error;
}

TEST(ReplyExplanationText, SaysMeaningHalvesAndFix) {
  std::string error;
  auto q = parse_reply_query("534 5.7.9 Application-specific password required", error);
  ASSERT_TRUE(q);
  const std::string text = render_explanation_text(*q);
  EXPECT_EQ(text.rfind("534 5.7.9: Gmail needs an app password", 0), 0u) << text;
  EXPECT_NE(text.find("authentication mechanism is too weak"), std::string::npos);
  EXPECT_NE(text.find("as Gmail uses this reply"), std::string::npos);
  EXPECT_NE(text.find("What usually fixes it:"), std::string::npos);
  for (std::size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos;
       start = end + 1)
    EXPECT_LE(end - start, 78u) << text.substr(start, end - start);
  const std::string json = render_explanation_json(*q);
  EXPECT_NE(json.find(R"("code":534,"enhanced_status":"5.7.9")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("server":"Gmail")"), std::string::npos) << json;
}

// explain.md: `fix` is "" for success replies only; 334 and 354 are no failure, and their
// advice is the next step a person at telnet takes, headed so in the plain output.
TEST(ReplyExplanationText, AnIntermediateReplySaysWhatToSendNext) {
  for (const char* reply : {"354", "334 VXNlcm5hbWU6"}) {
    std::string error;
    auto q = parse_reply_query(reply, error);
    ASSERT_TRUE(q) << error;
    const std::string text = render_explanation_text(*q);
    EXPECT_NE(text.find("\nWhat to send next:\n  "), std::string::npos) << text;
    EXPECT_EQ(text.find("fixes"), std::string::npos) << text;
    EXPECT_EQ(render_explanation_json(*q).find(R"("fix":"")"), std::string::npos);
  }
  std::string error;
  auto q = parse_reply_query("250 2.0.0", error);
  ASSERT_TRUE(q) << error;
  EXPECT_NE(render_explanation_json(*q).find(R"("fix":"")"), std::string::npos);
  EXPECT_EQ(render_explanation_text(*q).find("What"), std::string::npos);
}

}  // namespace
}  // namespace mailtap::tools
