// Dialogue: AUTH on mailtap's side. --auth-user (mailtap authenticates after the client's
// EHLO/HELO, before the client sees the reply) and --assist-auth (AUTH typed in clear), each
// scenario run whole, byte by byte and split at every position.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/dialogue.hpp"
#include "tests/unit/dialogue_harness.hpp"

namespace mailtap::smtp {
namespace {

using namespace testing;
using namespace std::string_literals;

const std::string password = "s3cret-pw";
const std::string token1 = "ya29.first-token";
const std::string token2 = "ya29.second-token";
const std::string ehlo_reply_auth =
    "250-up.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
const std::string ehlo_reply_authless = "250-up.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const std::string ehlo_reply_with_auth =
    "250-up.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
const std::string ehlo_reply_oauth =
    "250-up.example\r\n250-AUTH LOGIN XOAUTH2 OAUTHBEARER\r\n250 8BITMIME\r\n";

DialogueOptions login_options(bool with_password, bool with_token) {
  DialogueOptions o = test_options();
  o.upstream_host = "up.example";
  o.upstream_port = 587;
  UpstreamLoginOptions l;
  l.user = "alice";
  if (with_password) l.password = std::make_shared<const Secret>(Secret::copy_of(password));
  l.token_command = with_token;
  l.host = "up.example";
  l.port = 587;
  o.login = std::move(l);
  o.token_command = with_token;
  return o;
}

DialogueOptions assist_options() {
  DialogueOptions o = test_options();
  o.upstream_host = "up.example";
  o.upstream_port = 587;
  o.assist_auth = true;
  o.token_command = true;
  return o;
}

std::string xoauth2_line(const std::string& user, const std::string& token) {
  return "AUTH XOAUTH2 " +
         base64_encode("user=" + user + "\x01" + "auth=Bearer " + token + "\x01\x01") + "\r\n";
}

void expect_no_secret(const Result& r, const std::string& secret) {
  expect_secret_absent(r, secret);
  expect_secret_absent(r, base64_encode(secret));
}

TEST(DialogueAuth, MailtapAuthenticatesWithPlainBeforeTheClientSeesTheEhloReply) {
  const Result r = run_all_splits(
      {
          client(ehlo + "MAIL FROM:<a@x>\r\n"),
          upstream(ehlo_reply_auth),
          upstream("235 2.7.0 Authentication successful\r\n"),
          upstream("250 ok\r\n"),
      },
      login_options(true, false));
  EXPECT_EQ(r.upstream_per_step[0], ehlo);
  EXPECT_EQ(r.upstream_per_step[1], "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n");
  EXPECT_EQ(r.client_per_step[1], "") << "the EHLO reply waits for mailtap's AUTH";
  // No AUTH (and no STARTTLS) offered: the session is authenticated already.
  EXPECT_EQ(r.client_per_step[2], ehlo_reply_authless);
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\n");
  EXPECT_EQ(r.client_per_step[3], "250 ok\r\n");
  EXPECT_EQ(r.auth_user, "alice");
  EXPECT_EQ(r.auth_mechanism, "PLAIN");
  EXPECT_TRUE(r.by_mailtap);
  expect_no_secret(r, password);
  const auto own = find_events(r, Direction::mailtap_to_upstream, EventKind::auth);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_TRUE(own[0]->redacted);
  EXPECT_NE(own[0]->bytes.find("alice"), std::string::npos) << own[0]->bytes;
  const auto replies = find_events(r, Direction::upstream_to_mailtap, EventKind::reply);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0]->reply_code, 235);
  bool noted = false;
  for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::note))
    noted |= e->note == "authenticated by mailtap as alice (PLAIN)";
  EXPECT_TRUE(noted);
}

// --auth-user with --local-tls starttls, through a server that refuses the client's EHLO after
// its STARTTLS (smuggle2-F2): the client is greeted with the reply mailtap authenticated after,
// without AUTH (the session is authenticated already), and mailtap does not authenticate again.
TEST(DialogueAuth, ARefusedEhloAfterTheClientsStartTlsKeepsMailtapsLogin) {
  DialogueOptions o = login_options(true, false);
  o.client_tls = ClientTls::starttls;
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_auth),
          upstream("235 2.7.0 Authentication successful\r\n"),
          client("STARTTLS\r\n"),
          client_tls_up(),
          client(ehlo),
          upstream("503 5.5.1 Invalid command: Already identified\r\n"),
          client("MAIL FROM:<a@x>\r\n"),
          upstream("250 ok\r\n"),
      },
      o);
  EXPECT_EQ(r.client_per_step[6], ehlo_reply_authless);
  EXPECT_EQ(r.client_per_step[8], "250 ok\r\n");
  EXPECT_EQ(r.to_upstream, ehlo + "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n" +
                               ehlo + "MAIL FROM:<a@x>\r\n");
  EXPECT_TRUE(r.by_mailtap);
  expect_no_secret(r, password);
}

// The EHLO reply held for mailtap's login counts as taken by the client where it is written
// to it, not where it came: an owner that never writes what it took (replies_not_relayed)
// must not take off octets that were not in it.
TEST(DialogueAuth, AHeldEhloReplyIsChargedToTheTakeThatGivesIt) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(login_options(true, false), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  EXPECT_EQ(d.take_to_client(), greeting);
  EXPECT_EQ(d.upstream_octets_taken(), greeting.size());
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_auth);
  EXPECT_EQ(d.take_to_client(), "");
  EXPECT_EQ(d.upstream_octets_taken(), 0u) << "the reply is held, not in what was taken";
  d.upstream_bytes("235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(d.take_to_client(), ehlo_reply_authless);
  EXPECT_EQ(d.upstream_octets_taken(), ehlo_reply_auth.size());
}

// Credentials mailtap put in leave the dialogue as a Secret piece of their own (wiped once
// written), never inside the relayed bytes, which gather in an ordinary string.
TEST(DialogueAuth, OwnCredentialsLeaveAsASecretPiece) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(login_options(true, false), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes(ehlo);
  d.upstream_bytes(ehlo_reply_auth);
  const UpstreamOutput out = d.take_to_upstream();
  ASSERT_EQ(out.pieces().size(), 2u);
  EXPECT_FALSE(out.pieces()[0].holds_secret());
  EXPECT_EQ(out.pieces()[0].view(), ehlo);
  EXPECT_TRUE(out.pieces()[1].holds_secret());
  EXPECT_EQ(out.pieces()[1].view(), "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n");
  EXPECT_EQ(out.size(), ehlo.size() + out.pieces()[1].view().size());
}

TEST(DialogueAuth, LoginAnswersBothPrompts) {
  const std::string only_login = "250-up.example\r\n250 AUTH LOGIN\r\n";
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(only_login),
          upstream("334 VXNlcm5hbWU6\r\n"),
          upstream("334 UGFzc3dvcmQ6\r\n"),
          upstream("235 2.7.0 ok\r\n"),
      },
      login_options(true, false));
  EXPECT_EQ(r.upstream_per_step[1], "AUTH LOGIN\r\n");
  EXPECT_EQ(r.upstream_per_step[2], base64_encode("alice") + "\r\n");
  EXPECT_EQ(r.upstream_per_step[3], base64_encode(password) + "\r\n");
  EXPECT_EQ(r.client_per_step[4], "250 up.example\r\n");
  EXPECT_EQ(r.auth_mechanism, "LOGIN");
  expect_no_secret(r, password);
}

TEST(DialogueAuth, RejectedCachedTokenIsFetchedAgainOnce) {
  const std::string error_json =
      base64_encode(R"({"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"})");
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_oauth),
          cached_token(token1),
          upstream("334 " + error_json + "\r\n"),
          upstream("535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 BadCredentials\r\n"),
          token(token2),
          upstream("235 2.7.0 Accepted\r\n"),
      },
      login_options(false, true));
  EXPECT_EQ(r.token_needed_per_step[1], 1) << "a cached token will do";
  EXPECT_EQ(r.upstream_per_step[2], xoauth2_line("alice", token1));
  EXPECT_EQ(r.upstream_per_step[3], "\r\n") << "the empty line after an error challenge";
  EXPECT_EQ(r.token_needed_per_step[4], 2) << "the token was refused: run the command again";
  EXPECT_EQ(r.upstream_per_step[5], xoauth2_line("alice", token2));
  EXPECT_EQ(r.client_per_step[6],
            "250-up.example\r\n250 8BITMIME\r\n");  // AUTH removed once authenticated
  EXPECT_EQ(r.auth_mechanism, "XOAUTH2");
  expect_no_secret(r, token1);
  expect_no_secret(r, token2);
}

// A token the command made for this session is refused for good: running the command again
// would only keep the client waiting for its EHLO reply.
TEST(DialogueAuth, RejectedFreshTokenIsTheFailure) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_oauth),
          token(token1),
          upstream("535 5.7.3 Authentication unsuccessful\r\n"),
          client("MAIL FROM:<a@b>\r\n"),
      },
      login_options(false, true));
  EXPECT_EQ(r.token_needed_per_step[3], 0) << "no second run of the command";
  EXPECT_EQ(r.client_per_step[3], ehlo_reply_oauth) << "kept for an AUTH by hand";
  EXPECT_EQ(r.client_per_step[4].rfind("454 4.7.0 mailtap: up.example refused AUTH XOAUTH2 as "
                                       "alice: 535 5.7.3 Authentication unsuccessful",
                                       0),
            0u)
      << r.client_per_step[4];
  expect_no_secret(r, token1);
}

// The server's refusal of mailtap's own AUTH is mailtap's configuration's failure, not the
// message's: the client's MAIL gets a 4xx (a relaying MTA defers, where a 5xx would make it
// bounce the mail), the server's 5xx quoted in the text.
TEST(DialogueAuth, FailureIsTheNextMailsReplyAndTheSessionStaysUsable) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_auth),
          upstream("535 5.7.8 Error: authentication failed: bad password\r\n"),
          client("MAIL FROM:<a@x>\r\n"),
          client("MAIL FROM:<a@x>\r\n"),
          upstream("530 5.7.0 Authentication required\r\n"),
      },
      login_options(true, false));
  // The client may still AUTH by hand: the reply keeps its AUTH line.
  EXPECT_EQ(r.client_per_step[2], ehlo_reply_with_auth);
  EXPECT_EQ(r.upstream_per_step[3], "") << "the first MAIL is answered by mailtap";
  EXPECT_EQ(r.client_per_step[3],
            "454 4.7.0 mailtap: up.example refused AUTH PLAIN as alice: 535 5.7.8 Error: "
            "authentication failed: bad password; the user name or the password is wrong\r\n");
  EXPECT_EQ(r.upstream_per_step[4], "MAIL FROM:<a@x>\r\n");
  EXPECT_FALSE(r.by_mailtap);
  EXPECT_EQ(r.auth_user, "");
  expect_no_secret(r, password);
}

// A user name outside ASCII (intl18-F4) is quoted in mailtap's notes and replies as the relayed
// AUTH's notes quote it, every such octet as \xHH, so "jörg" and "jürg" stay two names.
TEST(DialogueAuth, ANonAsciiOwnUserNameIsEscapedNotBlurred) {
  DialogueOptions o = login_options(true, false);
  o.login->user = "j\xc3\xb6rg\\x";
  const Result ok = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_auth),
          upstream("235 2.7.0 Authentication successful\r\n"),
      },
      o);
  std::vector<std::string> notes;
  for (const Event& e : ok.events) notes.push_back(e.note);
  const std::string name = "j\\xc3\\xb6rg\\\\x";
  EXPECT_THAT(notes, ::testing::Contains("authenticated by mailtap as " + name + " (PLAIN)"));
  EXPECT_THAT(notes, ::testing::Contains(::testing::HasSubstr("has authenticated as " + name)));
  const Result refused = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_auth),
          upstream("535 5.7.8 Error: authentication failed\r\n"),
          client("MAIL FROM:<a@x>\r\n"),
      },
      o);
  EXPECT_THAT(refused.client_per_step[3],
              ::testing::HasSubstr("refused AUTH PLAIN as " + name + ": 535 5.7.8"));
}

// mailtap's own user name that holds its password (most often: is it) would give the password
// away wherever it is named: the note, sessions.auth_user, the user line of AUTH LOGIN, the 454
// after a failure. It is named nowhere; the note says why.
DialogueOptions login_options_as(const std::string& user) {
  DialogueOptions o = login_options(true, false);
  o.login->user = user;
  return o;
}

TEST(DialogueAuth, OwnUserNameHoldingThePasswordIsNamedNowhere) {
  const std::string only_login = "250-up.example\r\n250 AUTH LOGIN\r\n";
  for (const std::string& user : {password, "bob." + password + "@up.example"}) {
    SCOPED_TRACE(user);
    const Result plain = run_all_splits(
        {
            client(ehlo + "AUTH PLAIN\r\n"),
            upstream(ehlo_reply_auth),
            upstream("235 2.7.0 Authentication successful\r\n"),
        },
        login_options_as(user));
    EXPECT_TRUE(plain.by_mailtap);
    EXPECT_EQ(plain.auth_user, "");
    EXPECT_EQ(plain.auth_mechanism, "PLAIN");
    bool noted = false;
    for (const Event* e : find_events(plain, Direction::mailtap_note, EventKind::note))
      noted |= e->note ==
               "authenticated by mailtap as <withheld: the user name contains the password> "
               "(PLAIN)";
    EXPECT_TRUE(noted);
    expect_no_secret(plain, password);
    const Result login = run_all_splits(
        {
            client(ehlo),
            upstream(only_login),
            upstream("334 VXNlcm5hbWU6\r\n"),
            upstream("334 UGFzc3dvcmQ6\r\n"),
            upstream("235 2.7.0 ok\r\n"),
        },
        login_options_as(user));
    EXPECT_EQ(login.auth_mechanism, "LOGIN");
    expect_no_secret(login, password);
    const Result failed = run_all_splits(
        {
            client(ehlo),
            upstream(ehlo_reply_auth),
            upstream("535 5.7.8 Error: authentication failed\r\n"),
            client("MAIL FROM:<a@x>\r\n"),
        },
        login_options_as(user));
    EXPECT_NE(failed.client_per_step[3].find(
                  "refused AUTH PLAIN as <withheld: the user name contains the password>"),
              std::string::npos)
        << failed.client_per_step[3];
    expect_no_secret(failed, password);
  }
}

// Held for mailtap's AUTH and then relayed unchanged (no STARTTLS to remove, AUTH kept after a
// failure), the EHLO reply's event still has the time the server sent it: a note, recorded when
// the client gets the reply, says it waited.
TEST(DialogueAuth, AHeldReplyReleasedUnchangedIsNotedWhenTheClientGetsIt) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_with_auth),
          upstream("535 5.7.8 Error: authentication failed: bad password\r\n"),
      },
      login_options(true, false));
  EXPECT_EQ(r.client_per_step[2], ehlo_reply_with_auth);
  std::vector<std::string> notes;
  for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::note))
    notes.push_back(e->note);
  ASSERT_GE(notes.size(), 2u);
  EXPECT_EQ(notes.back(),
            "the EHLO reply above, held while mailtap authenticated, reaches the client only "
            "now, unchanged");
  EXPECT_EQ(notes[notes.size() - 2].rfind("mailtap could not authenticate", 0), 0u)
      << notes[notes.size() - 2];
}

TEST(DialogueAuth, AClientAuthIsAnsweredLocallyOnceMailtapAuthenticated) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_auth),
          upstream("235 2.7.0 ok\r\n"),
          client("AUTH PLAIN " + base64_encode("\0bob\0other-pw"s) + "\r\nNOOP\r\n"),
          upstream("250 ok\r\n"),
      },
      login_options(true, false));
  EXPECT_EQ(r.upstream_per_step[3], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[3],
            "503 5.5.1 mailtap: already authenticated as alice (by mailtap)\r\n");
  expect_no_secret(r, "other-pw");
}

// The 503 quotes mailtap's user name escaped (\xHH, four octets for each non-ASCII one): a long
// one is cut, between escapes, so that the reply stays one SMTP reply line (RFC 5321 §4.5.3.1.5:
// 512 octets with its CRLF).
TEST(DialogueAuth, TheAlreadyAuthenticatedReplyStaysOneReplyLineForALongUserName) {
  DialogueOptions o = login_options(true, false);
  std::string user;
  while (user.size() < 400) user += "\xc3\xa9";
  o.login->user = user;
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_auth),
          upstream("235 2.7.0 ok\r\n"),
          client("AUTH PLAIN " + base64_encode("\0bob\0other-pw"s) + "\r\n"),
      },
      o);
  const std::string& reply = r.client_per_step[3];
  const std::string head = "503 5.5.1 mailtap: already authenticated as ";
  const std::string tail = "... (by mailtap)\r\n";
  ASSERT_EQ(reply.rfind(head, 0), 0u) << reply;
  ASSERT_TRUE(reply.ends_with(tail)) << reply;
  EXPECT_LE(reply.size(), 512u);
  // Whole escapes only: the name's first octets, each as \xHH.
  const std::string quoted = reply.substr(head.size(), reply.size() - head.size() - tail.size());
  EXPECT_EQ(quoted.size() % 4, 0u) << quoted;
  std::string escaped_user;
  for (const char c : user) escaped_user += c == '\xc3' ? "\\xc3" : "\\xa9";
  EXPECT_EQ(escaped_user.rfind(quoted, 0), 0u) << quoted;
}

TEST(DialogueAuth, HeloClientsAreAuthenticatedThroughMailtapsOwnEhlo) {
  const Result r = run_all_splits(
      {
          client("HELO client.example\r\n"),
          upstream("250 up.example\r\n"),
          upstream(ehlo_reply_auth),
          upstream("235 2.7.0 ok\r\n"),
      },
      login_options(true, false));
  EXPECT_EQ(r.upstream_per_step[1], "EHLO client.example\r\n");
  EXPECT_EQ(r.upstream_per_step[2], "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n");
  EXPECT_EQ(r.client_per_step[3], "250 up.example\r\n");
  EXPECT_TRUE(r.by_mailtap);
}

// mailtap's own EHLO after a client's HELO refused: mailtap could not authenticate, which the
// client's MAIL is told with the same 4xx as any failure of mailtap's own AUTH.
TEST(DialogueAuth, HeloClientsMailIsToldWhenTheServerRefusesMailtapsEhlo) {
  const Result r = run_all_splits(
      {
          client("HELO client.example\r\n"),
          upstream("250 up.example\r\n"),
          upstream("550 5.7.1 EHLO refused\r\n"),
          client("MAIL FROM:<a@x>\r\n"),
      },
      login_options(true, false));
  EXPECT_EQ(r.client_per_step[2], "250 up.example\r\n");
  EXPECT_EQ(r.upstream_per_step[3], "") << "the MAIL is answered by mailtap";
  EXPECT_EQ(r.client_per_step[3],
            "454 4.7.0 mailtap: up.example refused mailtap's EHLO, so mailtap could not "
            "authenticate: 550 5.7.1 EHLO refused\r\n");
  EXPECT_FALSE(r.by_mailtap);
}

TEST(DialogueAuth, PipelinedCommandsBehindEhloWaitAndAreAnsweredInOrder) {
  const Result r = run_all_splits(
      {
          client(ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
          upstream(ehlo_reply_auth),
          upstream("235 2.7.0 ok\r\n"),
          upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
      },
      login_options(true, false));
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  EXPECT_EQ(r.to_client, ehlo_reply_authless + "250 ok\r\n250 ok\r\n354 go\r\n");
}

TEST(DialogueAuth, AFailingTokenCommandIsExplained) {
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream(ehlo_reply_oauth),
          token_error("--oauth2-token-cmd exited with status 1"),
          client("MAIL FROM:<a@x>\r\n"),
      },
      login_options(false, true));
  EXPECT_EQ(r.upstream_per_step[2], "");
  EXPECT_NE(r.client_per_step[3].find("exited with status 1"), std::string::npos)
      << r.client_per_step[3];
}

TEST(DialogueAuth, NothingHappensWithoutTls) {
  DialogueOptions o = login_options(true, false);
  o.phase = Phase::plain;
  const Result r = run_all_splits({client(ehlo), upstream(ehlo_reply_auth)}, o);
  EXPECT_EQ(r.client_per_step[1], ehlo_reply_with_auth);
  EXPECT_FALSE(r.by_mailtap);
}

// ---- --assist-auth -------------------------------------------------------------------------

TEST(DialogueAssist, PlainTypedAsUserAndPassword) {
  const Result r = run_all_splits(
      {
          client("AUTH PLAIN alice s3cret-pw\r\n"),
          upstream("235 2.7.0 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.upstream_per_step[0], "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n");
  EXPECT_EQ(r.auth_user, "alice");
  expect_no_secret(r, password);
  bool noted = false;
  for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
    noted |= e->verb == "AUTH" && e->note.find("--assist-auth") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(DialogueAssist, EncodedCredentialsLeaveAsASecretPiece) {
  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  Dialogue d(assist_options(), events, messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  d.client_bytes("AUTH PLAIN alice s3cret-pw\r\n");
  const UpstreamOutput out = d.take_to_upstream();
  ASSERT_EQ(out.pieces().size(), 1u);
  EXPECT_TRUE(out.pieces()[0].holds_secret());
  EXPECT_EQ(out.pieces()[0].view(), "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n");
  // The client's own base64 passes as it came: relayed bytes, as any line the client wrote.
  Dialogue plain(assist_options(), events, messages);
  plain.relay_greeting(reply_of(greeting), Phase::tls);
  plain.client_bytes("AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n");
  const UpstreamOutput relayed = plain.take_to_upstream();
  ASSERT_EQ(relayed.pieces().size(), 1u);
  EXPECT_FALSE(relayed.pieces()[0].holds_secret());
}

TEST(DialogueAssist, PlainAtThePrompt) {
  const Result r = run_all_splits(
      {
          client("AUTH PLAIN\r\n"),
          upstream("334 \r\n"),
          client("alice s3cret-pw\r\n"),
          upstream("235 2.7.0 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.upstream_per_step[2], base64_encode("\0alice\0s3cret-pw"s) + "\r\n");
  expect_no_secret(r, password);
}

TEST(DialogueAssist, LoginPromptsAreDecodedAndAnswersEncoded) {
  const Result r = run_all_splits(
      {
          client("AUTH LOGIN\r\n"),
          upstream("334 VXNlcm5hbWU6\r\n"),
          client("alice\r\n"),
          upstream("334 UGFzc3dvcmQ6\r\n"),
          client("s3cret-pw\r\n"),
          upstream("235 2.7.0 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.client_per_step[1], "334 Username:\r\n");
  EXPECT_EQ(r.upstream_per_step[2], base64_encode("alice") + "\r\n");
  EXPECT_EQ(r.client_per_step[3], "334 Password:\r\n");
  EXPECT_EQ(r.upstream_per_step[4], base64_encode(password) + "\r\n");
  EXPECT_EQ(r.auth_user, "alice");
  expect_no_secret(r, password);
}

// A client that negotiated telnet options (here `^]` `mode line`: IAC WILL LINEMODE) gets IAC
// WILL ECHO after "334 Password:", so that telnet stops echoing the password typed; its answer
// (IAC DO ECHO, sent ahead of the password) is removed, not refused, and never password octets;
// once the password line is in, IAC WONT ECHO turns the echo back on. Each is recorded as the
// octets mailtap wrote to the client. Split at every position, the IAC answer included.
TEST(DialogueAssist, ATelnetClientsPasswordIsNotEchoed) {
  const Result r = run_all_splits(
      {
          client("\xff\xfb\x22NOOP\r\n"),
          upstream("250 ok\r\n"),
          client("AUTH LOGIN\r\n"),
          upstream("334 VXNlcm5hbWU6\r\n"),
          client("alice\r\n"),
          upstream("334 UGFzc3dvcmQ6\r\n"),
          client("\xff\xfd\x01s3cret-pw\r\n"),
          upstream("235 2.7.0 ok\r\n"),
          client("\xff\xfe\x01NOOP\r\n"),
          upstream("250 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.client_per_step[0], "\xff\xfe\x22");  // the LINEMODE refused, as ever
  EXPECT_EQ(r.client_per_step[3], "334 Username:\r\n");
  EXPECT_EQ(r.client_per_step[5], "334 Password:\r\n\xff\xfb\x01");
  EXPECT_EQ(r.client_per_step[6], "\xff\xfc\x01") << "the DO ECHO is not refused";
  EXPECT_EQ(r.upstream_per_step[6], base64_encode(password) + "\r\n");
  EXPECT_EQ(r.client_per_step[7], "235 2.7.0 ok\r\n");
  EXPECT_EQ(r.client_per_step[8], "") << "telnet's DONT ECHO (the answer to WONT) is unanswered";
  EXPECT_EQ(r.upstream_per_step[8], "NOOP\r\n");
  EXPECT_EQ(r.auth_user, "alice");
  expect_no_secret(r, password);
  const auto notes = find_events(r, Direction::mailtap_to_client, EventKind::note);
  std::vector<std::string> echo;
  for (const Event* e : notes)
    if (e->note.starts_with("telnet echo")) echo.push_back(e->bytes);
  EXPECT_EQ(echo, (std::vector<std::string>{"\xff\xfb\x01", "\xff\xfc\x01"}));
}

// nc, socat and mail clients never negotiated telnet: IAC octets would be text on their screen.
TEST(DialogueAssist, APasswordPromptToAClientThatIsNotTelnetHoldsNoIac) {
  const Result r = run_all_splits(
      {
          client("AUTH PLAIN alice\r\n"),
          upstream("334 \r\n"),
          client("s3cret-pw\r\n"),
          upstream("235 2.7.0 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.client_per_step[1], "334 Password:\r\n");
  EXPECT_EQ(r.client_per_step[2], "");
  EXPECT_EQ(r.to_client.find('\xff'), std::string::npos);
}

// Whatever leaves the prompt turns the echo back on: the cancel typed, the server ending the
// exchange on its own, the client closing.
TEST(DialogueAssist, TelnetsEchoComesBackHoweverThePasswordPromptIsLeft) {
  const Result cancel = run_all_splits(
      {
          client("\xff\xfd\x03"
                 "AUTH PLAIN alice\r\n"),
          upstream("334 \r\n"),
          client("\xff\xfd\x01*\r\n"),
          upstream("501 5.7.0 Authentication aborted\r\n"),
      },
      assist_options());
  EXPECT_EQ(cancel.client_per_step[1], "334 Password:\r\n\xff\xfb\x01");
  EXPECT_EQ(cancel.client_per_step[2], "\xff\xfc\x01");
  EXPECT_EQ(cancel.upstream_per_step[2], "*\r\n");

  const Result server = run_all_splits(
      {
          client("\xff\xfd\x03"
                 "AUTH PLAIN alice\r\n"),
          upstream("334 \r\n"),
          upstream("421 4.4.2 timeout\r\n"),
      },
      assist_options());
  EXPECT_EQ(server.client_per_step[2], "421 4.4.2 timeout\r\n\xff\xfc\x01");

  const Result closed = run_all_splits(
      {
          client("\xff\xfd\x03"
                 "AUTH PLAIN alice\r\n"),
          upstream("334 \r\n"),
          client_eof(),
          upstream("501 5.7.0 Authentication aborted\r\n221 2.0.0 Bye\r\n"),
      },
      assist_options());
  ASSERT_TRUE(closed.finished);
  const auto notes = find_events(closed, Direction::mailtap_to_client, EventKind::note);
  ASSERT_FALSE(notes.empty());
  EXPECT_EQ(notes.back()->bytes, "\xff\xfc\x01");
  EXPECT_EQ(notes.back()->note, "telnet echo turned back on (IAC WONT ECHO): the session ended");
}

// Ctrl-C at the password prompt (line-mode telnet: IAC IP IAC DO TM, glued to what is typed
// next): the person aborting. mailtap sends the RFC 4954 cancel "*" in place of the line, whose
// octets (the start of a password, or a QUIT) go nowhere, the record included; the DO TM is
// refused at once so that telnet shows the server's 501.
TEST(DialogueAssist, CtrlCAtThePasswordPromptCancelsTheExchange) {
  const Result r = run_all_splits(
      {
          client("AUTH LOGIN\r\n"),
          upstream("334 VXNlcm5hbWU6\r\n"),
          client("alice\r\n"),
          upstream("334 UGFzc3dvcmQ6\r\n"),
          client("s3cret\xff\xf4\xff\xfd\x06-pwQUIT\r\n"),
          upstream("501 5.7.0 Authentication aborted\r\n"),
          client("NOOP\r\n"),
          upstream("250 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.upstream_per_step[4], "*\r\n");
  EXPECT_EQ(r.client_per_step[4], "\xff\xfc\x06");
  EXPECT_EQ(r.client_per_step[5], "501 5.7.0 Authentication aborted\r\n");
  EXPECT_EQ(r.upstream_per_step[6], "NOOP\r\n");
  EXPECT_EQ(r.client_per_step[7], "250 ok\r\n");
  EXPECT_EQ(r.auth_user, "");
  expect_no_secret(r, "s3cret");
  expect_no_secret(r, "pwQUIT");
  const auto own = find_events(r, Direction::mailtap_to_upstream, EventKind::auth);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0]->bytes, "*\r\n");
  EXPECT_TRUE(
      own[0]->note.starts_with("telnet interrupt (Ctrl-C) at the SASL prompt: sent as "
                               "the cancel *"))
      << own[0]->note;
}

// The same without --assist-auth (the client's own base64 at a 334), and for Ctrl-\ (IAC BRK).
// Other telnet commands on the line (IAC NOP, IAC AO) are removed as ever: the line goes.
TEST(DialogueAuth, ATelnetInterruptInASaslResponseSendsTheCancel) {
  for (const std::string interrupt : {"\xff\xf4", "\xff\xf3"}) {
    const Result r = run_all_splits({
        client("AUTH LOGIN\r\n"),
        upstream("334 VXNlcm5hbWU6\r\n"),
        client(interrupt + "\xff\xfd\x06" + base64_encode("alice") + "\r\n"),
        upstream("501 5.7.0 Authentication aborted\r\n"),
    });
    EXPECT_EQ(r.upstream_per_step[2], "*\r\n");
    EXPECT_EQ(r.client_per_step[2], "\xff\xfc\x06");
    EXPECT_EQ(r.client_per_step[3], "501 5.7.0 Authentication aborted\r\n");
    expect_no_secret(r, "alice");
  }
  const Result nop = run_all_splits({
      client("AUTH LOGIN\r\n"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client("\xff\xf1" + base64_encode("alice") + "\xff\xf5\r\n"),
      upstream("334 UGFzc3dvcmQ6\r\n"),
  });
  EXPECT_EQ(nop.upstream_per_step[2], base64_encode("alice") + "\r\n");
}

TEST(DialogueAssist, Xoauth2UserTakesTheTokenCommandsToken) {
  const Result r = run_all_splits(
      {
          client("AUTH XOAUTH2 alice@example.com\r\nNOOP\r\n"),
          token(token1),
          upstream("235 2.7.0 ok\r\n"),
          upstream("250 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.upstream_per_step[0], "");
  EXPECT_EQ(r.token_needed_per_step[0], 1);
  EXPECT_EQ(r.upstream_per_step[1], xoauth2_line("alice@example.com", token1));
  EXPECT_EQ(r.upstream_per_step[2], "NOOP\r\n");
  expect_no_secret(r, token1);
}

// While the AUTH waits for its token nothing is upstream awaiting a reply: a reply then is no
// answer to the AUTH the client sent (the server has not seen it), though the client would
// take it for one.
TEST(DialogueAssist, AReplyWhileAnAuthWaitsForItsTokenEndsTheSession) {
  const Result r = run_all_splits(
      {
          client("AUTH XOAUTH2 alice@example.com\r\nNOOP\r\n"),
          upstream("235 2.7.0 ok\r\n"),
          token(token1),
      },
      assist_options());
  EXPECT_EQ(r.client_per_step[1].rfind("421 4.5.0 mailtap: up.example:587 replied 235 when no "
                                       "command awaited a reply",
                                       0),
            0u)
      << r.client_per_step[1];
  EXPECT_EQ(r.to_upstream, "");
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::error);
  expect_no_secret(r, token1);
}

// Without --oauth2-token-cmd mailtap refuses the AUTH itself (504); what the client pasted
// behind it (a token, say) is read as commands and kept out of the record, as after any refused
// AUTH. The AUTH line itself is recorded through the redactor, as every refused AUTH line is.
TEST(DialogueAssist, LinesAfterAnAuthRefusedForWantOfATokenCommandStayOutOfTheRecord) {
  DialogueOptions o = assist_options();
  o.token_command = false;
  o.redaction.redact_users = true;
  const Result r = run_all_splits(
      {
          client("AUTH XOAUTH2 alice@example.com\r\nya29.s3cret-token\r\nNOOP\r\n"),
          upstream("250 ok\r\n"),
      },
      o);
  EXPECT_EQ(r.client_per_step[0].rfind("504 5.5.4 mailtap: AUTH XOAUTH2/OAUTHBEARER USER", 0), 0u)
      << r.client_per_step[0];
  EXPECT_EQ(r.to_upstream, "NOOP\r\n");
  expect_secret_absent(r, "s3cret-token");
  expect_secret_absent(r, "alice@example.com");
}

// The token command failed (454): mailtap ends the AUTH exchange itself, as with the 504
// above, so what the client pipelined behind the AUTH (its token, say) is read as commands and
// kept out of the record the same way, however the bytes were split and whenever the line came
// before the client could see the 454.
TEST(DialogueAssist, LinesAfterAnAuthWhoseTokenCommandFailedStayOutOfTheRecord) {
  DialogueOptions o = assist_options();
  o.redaction.redact_users = true;
  const Result r = run_all_splits(
      {
          client("AUTH XOAUTH2 alice@example.com\r\nya29.s3cret-token\r\n"),
          client("ya29.more-s3cret\r\nNOOP\r\n"),
          token_error("--oauth2-token-cmd exited with status 1"),
          upstream("250 ok\r\n"),
      },
      o);
  EXPECT_EQ(r.client_per_step[2].rfind("454 4.7.0 mailtap: no access token for AUTH", 0), 0u)
      << r.client_per_step[2];
  EXPECT_EQ(r.to_upstream, "NOOP\r\n");
  expect_secret_absent(r, "s3cret-token");
  expect_secret_absent(r, "more-s3cret");
  expect_secret_absent(r, "alice@example.com");
  std::size_t distrusted = 0;
  for (const Event& e : r.events)
    if (e.direction == Direction::client_to_mailtap && e.kind == EventKind::command && e.redacted &&
        e.verb.empty())
      ++distrusted;
  EXPECT_EQ(distrusted, 2u) << r.describe();
  // The AUTH line mailtap answered is recorded through the redactor, as the 504's is.
  const auto refused = find_events(r, Direction::client_to_mailtap, EventKind::auth);
  ASSERT_EQ(refused.size(), 1u) << r.describe();
  EXPECT_EQ(refused[0]->wire_size, std::string("AUTH XOAUTH2 alice@example.com\r\n").size());
}

// The session ends (a shutdown's 421, or any other end) while the AUTH line waits for its
// token: the line was received all the same, and is in the record, redacted as a refused one
// is, before the 421.
TEST(DialogueAssist, AnAuthLineStillWaitingForItsTokenWhenTheSessionEndsIsRecorded) {
  const std::string line = "AUTH XOAUTH2 alice@example.com\r\n";
  for (const bool aborted : {true, false}) {
    SCOPED_TRACE(aborted ? "aborted" : "ended");
    DialogueOptions o = assist_options();
    o.redaction.redact_users = true;
    std::vector<RecordedEvent> events;
    std::vector<Message> messages;
    Dialogue d(o, events, messages);
    d.relay_greeting(reply_of(greeting), Phase::tls);
    d.client_bytes(line);
    ASSERT_NE(d.token_needed(), Dialogue::TokenNeed::none);
    if (aborted)
      d.abort("4.3.2 mailtap: shutting down", {Ending::Kind::shutdown, "mailtap shut down"});
    else
      d.end({Ending::Kind::client_closed, "client left"});
    ASSERT_GE(events.size(), 2u);
    const Event& auth = *events[1];
    EXPECT_EQ(auth.direction, Direction::client_to_mailtap);
    EXPECT_EQ(auth.kind, EventKind::auth);
    EXPECT_EQ(auth.wire_size, line.size());
    EXPECT_TRUE(auth.redacted);
    EXPECT_EQ(auth.bytes.find("alice@example.com"), std::string::npos) << auth.bytes;
    if (aborted) {
      EXPECT_EQ(events.back()->reply_code, 421);
    }
  }
}

// Between the chunks of a message an AUTH is refused by mailtap like any other command (Exim
// answers it 503 and then takes the next BDAT's chunk as commands): with --assist-auth too, so
// the assistant never translates it and nothing of it goes upstream, not even after a token.
// The line is recorded through the redactor, as every refused AUTH line is.
TEST(DialogueAssist, AnAuthBetweenBdatChunksIsRefusedByMailtapNotTranslated) {
  for (const std::string line : {"AUTH PLAIN alice s3cret-pw\r\n", "AUTH LOGIN alice\r\n",
                                 "AUTH XOAUTH2 alice@example.com\r\n"}) {
    SCOPED_TRACE(line);
    const Result r = run_all_splits(
        {
            client(ehlo),
            upstream(ehlo_reply_chunking),
            client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + line +
                   "s3cret-pw\r\nNOOP\r\n"),
            upstream("250 ok\r\n250 ok\r\n250 3 octets\r\n"),
            token(token1),
            upstream("250 noop\r\n"),
        },
        assist_options());
    // The password pasted behind it is a line like any other there: refused too.
    EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabcNOOP\r\n");
    const std::string refusal =
        "503 5.5.1 mailtap: only BDAT, RSET, NOOP or QUIT, without arguments (NOOP's may be "
        "printable ASCII words, one SP before each), may come between the chunks of a message "
        "(RFC 3030); not forwarded: end the message with BDAT <size> LAST, or drop it with "
        "RSET\r\n";
    EXPECT_EQ(r.client_per_step[3], "250 ok\r\n250 ok\r\n250 3 octets\r\n" + refusal + refusal);
    EXPECT_EQ(r.client_per_step[5], "250 noop\r\n");
    const auto refused = find_events(r, Direction::client_to_mailtap, EventKind::auth);
    ASSERT_EQ(refused.size(), 1u) << r.describe();
    EXPECT_TRUE(refused[0]->redacted);
    EXPECT_EQ(refused[0]->wire_size, line.size());
    expect_no_secret(r, password);
    expect_no_secret(r, token1);
  }
}

// An AUTH the client pipelined behind a chunk mailtap refused itself (a first chunk, under a SIZE
// mailtap cannot read), with the MAIL and RCPT replies still to come: between chunks, though no
// chunk reached the server (its transaction waits for the refused one), so mailtap answers it
// 503 and translates nothing; the password pasted behind it is a line behind a failed AUTH,
// recorded redacted and refused too. The replies to the commands ahead of the chunk do not end
// mailtap's refusal: the BDAT 0 LAST after it ends the session.
TEST(DialogueAssist, AnAuthBehindAChunkMailtapRefusedKeepsItsSecretsAndTheRefusal) {
  const std::string auth = "AUTH PLAIN alice s3cret-pw\r\n";
  const std::string blob = base64_encode("\0alice\0s3cret-pw"s);
  const Result r = run_all_splits(
      {
          client(ehlo),
          upstream("250-up.example\r\n250-PIPELINING\r\n250-SIZE none\r\n250 CHUNKING\r\n"),
          client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 3\r\nabc" + auth +
                 "s3cret-pw\r\nBDAT 0 LAST\r\n"),
          upstream("250 ok\r\n250 ok\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.to_upstream, ehlo + "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  EXPECT_EQ(r.client_per_step[3].rfind("250 ok\r\n250 ok\r\n552 5.3.4 mailtap: ", 0), 0u)
      << r.client_per_step[3];
  const auto refused = find_events(r, Direction::client_to_mailtap, EventKind::auth);
  ASSERT_EQ(refused.size(), 1u) << r.describe();
  EXPECT_TRUE(refused[0]->redacted);
  EXPECT_NE(r.client_per_step[3].find("421 4.5.4 mailtap: BDAT refused (mailtap refused an "
                                      "earlier chunk of this message, under a SIZE it cannot "
                                      "read"),
            std::string::npos)
      << r.client_per_step[3];
  EXPECT_TRUE(r.finished);
  EXPECT_TRUE(r.messages.empty());
  expect_no_secret(r, password);
  expect_no_secret(r, blob);
}

TEST(DialogueAssist, TutorialBase64PassesUnchanged) {
  const std::string typed = "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw"s) + "\r\n";
  const Result r = run_all_splits({client(typed), upstream("235 2.7.0 ok\r\n")}, assist_options());
  EXPECT_EQ(r.upstream_per_step[0], typed);
}

// Without --assist-auth nothing is translated: a line in clear the server can take goes as it
// is (a LOGIN user name, which the server takes for base64).
TEST(DialogueAssist, OffByDefault) {
  const Result r = run_all_splits(
      {client("AUTH LOGIN alice\r\n"), upstream("535 5.7.8 another step is needed\r\n")});
  EXPECT_EQ(r.upstream_per_step[0], "AUTH LOGIN alice\r\n");
}

// ---- AUTH typed in clear: mailtap's help, not the server's bare refusal ----------------------

const std::string kTooManyArguments =
    "501 5.5.4 mailtap: AUTH takes one argument after the mechanism, in base64 (RFC 4954), so no "
    "server takes this line; not forwarded. ";

void expect_refused_auth_line_recorded(const Result& r) {
  const auto lines = find_events(r, Direction::client_to_mailtap, EventKind::auth);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0]->redacted);
  const auto replies = find_events(r, Direction::mailtap_to_client, EventKind::local_reply);
  ASSERT_FALSE(replies.empty());
  EXPECT_EQ(replies[0]->reply_code, 501);
}

// RFC 4954 allows one argument after the mechanism: every server refuses a user name and a
// password typed in clear (Postfix: "501 5.5.4 Syntax: AUTH mechanism"), which tells the person
// nothing. mailtap answers it, says what to do, and keeps the password off the wire and out of
// the record; what the person sends behind it is read as after any refused AUTH.
TEST(DialogueAuthInClear, UserAndPasswordAreRefusedWithTheWayToTypeThem) {
  const Result r = run_all_splits({
      client("AUTH PLAIN alice s3cret-pw\r\ns3cret-pw\r\nNOOP\r\n"),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.to_client,
            kTooManyArguments +
                "To type the user name and password as they are, restart mailtap proxy with "
                "--assist-auth; or type what mailtap encode plain USER prints\r\n" +
                "500 5.5.2 mailtap: line taken for a SASL response after a refused AUTH; not "
                "forwarded (send a command, or AUTH again)\r\n" +
                "250 ok\r\n");
  EXPECT_EQ(r.to_upstream, "NOOP\r\n");
  expect_no_secret(r, password);
  expect_refused_auth_line_recorded(r);
}

TEST(DialogueAuthInClear, EveryMechanismAndSeparatorIsCounted) {
  for (const std::string& typed :
       std::vector<std::string>{"AUTH LOGIN alice s3cret-pw", "auth\tlogin alice\ts3cret-pw",
                                "AUTH XOAUTH2 alice s3cret-pw", "AUTH FOO alice s3cret-pw",
                                "AUTH PLAIN alice s3cret-pw and more "}) {
    const Result r = run_all_splits({client(typed + "\r\n")});
    EXPECT_EQ(r.to_client.rfind(kTooManyArguments, 0), 0u) << typed << ": " << r.to_client;
    EXPECT_EQ(r.to_upstream, "") << typed;
    expect_no_secret(r, password);
  }
}

// One argument, with or without the separators after it that servers ignore, is the server's
// to judge.
TEST(DialogueAuthInClear, OneArgumentAfterTheMechanismIsForwarded) {
  const std::string blob = base64_encode("\0alice\0s3cret-pw"s);
  for (const std::string& typed :
       std::vector<std::string>{"AUTH PLAIN " + blob + " ", "AUTH PLAIN =", "AUTH LOGIN",
                                "AUTH PLAIN \t" + blob + "\t "}) {
    const Result r =
        run_all_splits({client(typed + "\r\n"), upstream("535 5.7.8 Authentication failed\r\n")});
    EXPECT_EQ(r.to_upstream, typed + "\r\n");
    EXPECT_EQ(r.to_client, "535 5.7.8 Authentication failed\r\n");
  }
}

// With --assist-auth a LOGIN line with both is no translation the assistant makes: refused the
// same way, with what --assist-auth does take.
TEST(DialogueAuthInClear, WithAssistAuthTheReplySaysWhatToTypeInstead) {
  const Result r = run_all_splits(
      {client("AUTH LOGIN alice s3cret-pw\r\nNOOP\r\n"), upstream("250 ok\r\n")}, assist_options());
  EXPECT_EQ(r.client_per_step[0], kTooManyArguments +
                                      "With --assist-auth type AUTH PLAIN USER PASSWORD, or AUTH "
                                      "LOGIN and then the user name and the password at its "
                                      "prompts\r\n");
  EXPECT_EQ(r.to_upstream, "NOOP\r\n");
  expect_no_secret(r, password);
  expect_refused_auth_line_recorded(r);
}

// The password forgotten on the AUTH PLAIN line: a word that cannot be base64 is a user name.
// AUTH PLAIN goes alone, its empty 334 reaches the person as a password prompt, and the
// password typed there goes with the name.
TEST(DialogueAssist, PlainWithAUserNameAloneAsksForThePassword) {
  for (const std::string& user : std::vector<std::string>{"alice", "alice@example.com"}) {
    const Result r = run_all_splits(
        {
            client("AUTH PLAIN " + user + "\r\n"),
            upstream("334 \r\n"),
            client("s3cret-pw\r\n"),
            upstream("235 2.7.0 ok\r\n"),
        },
        assist_options());
    EXPECT_EQ(r.upstream_per_step[0], "AUTH PLAIN\r\n");
    EXPECT_EQ(r.client_per_step[1], "334 Password:\r\n");
    EXPECT_EQ(r.upstream_per_step[2], base64_encode("\0"s + user + "\0s3cret-pw"s) + "\r\n");
    EXPECT_EQ(r.client_per_step[3], "235 2.7.0 ok\r\n");
    EXPECT_EQ(r.auth_user, user);
    expect_no_secret(r, password);
    expect_no_secret(r, "\0"s + user + "\0s3cret-pw"s);
    int notes = 0;
    for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
      notes += e->verb == "AUTH" && e->note.find("--assist-auth") != std::string::npos;
    EXPECT_EQ(notes, 2);  // the AUTH line and the password
    bool prompt_noted = false;
    for (const Event* e : find_events(r, Direction::mailtap_to_client, EventKind::rewrite))
      prompt_noted |= e->note.find("password prompt") != std::string::npos;
    EXPECT_TRUE(prompt_noted);
  }
}

// A word that could be base64 is the tutorials' initial response, as it always was; so is "=".
TEST(DialogueAssist, PlainWithOneWordThatCouldBeBase64PassesUnchanged) {
  for (const std::string& typed : std::vector<std::string>{"AUTH PLAIN bob1", "AUTH PLAIN ="}) {
    const Result r =
        run_all_splits({client(typed + "\r\n"), upstream("535 5.7.8 another step is needed\r\n")},
                       assist_options());
    EXPECT_EQ(r.upstream_per_step[0], typed + "\r\n");
  }
}

// A refused AUTH PLAIN leaves no user name waiting: the next exchange starts afresh.
TEST(DialogueAssist, PlainUserNameRefusedByTheServerIsForgotten) {
  const Result r = run_all_splits(
      {
          client("AUTH PLAIN alice\r\n"),
          upstream("504 5.5.4 mechanism not available\r\n"),
          client("AUTH LOGIN\r\n"),
          upstream("334 VXNlcm5hbWU6\r\n"),
      },
      assist_options());
  EXPECT_EQ(r.client_per_step[1], "504 5.5.4 mechanism not available\r\n");
  EXPECT_EQ(r.client_per_step[3], "334 Username:\r\n");
}

// The password is the rest of the line, a trailing space included (it is sent), which nothing
// on the screen shows: the rewrite note says so, never more of the password.
TEST(DialogueAssist, APasswordEndingInASpaceIsNoted) {
  auto rewrite_notes = [](const Result& r) {
    std::string all;
    for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
      all += e->note + "\n";
    return all;
  };
  const std::string ends = "the password ends in a space, sent as part of it";
  const Result on_the_line =
      run_all_splits({client("AUTH PLAIN alice s3cret-pw \r\n"), upstream("535 5.7.8 failed\r\n")},
                     assist_options());
  EXPECT_EQ(on_the_line.upstream_per_step[0],
            "AUTH PLAIN " + base64_encode("\0alice\0s3cret-pw "s) + "\r\n");
  EXPECT_NE(rewrite_notes(on_the_line).find(ends), std::string::npos) << rewrite_notes(on_the_line);
  const Result at_the_prompt = run_all_splits(
      {
          client("AUTH LOGIN\r\n"),
          upstream("334 VXNlcm5hbWU6\r\n"),
          client("alice\r\n"),
          upstream("334 UGFzc3dvcmQ6\r\n"),
          client("s3cret-pw \r\n"),
          upstream("535 5.7.8 failed\r\n"),
      },
      assist_options());
  EXPECT_NE(rewrite_notes(at_the_prompt).find(ends), std::string::npos)
      << rewrite_notes(at_the_prompt);
  const Result without = run_all_splits(
      {client("AUTH PLAIN alice s3cret-pw\r\n"), upstream("235 2.7.0 ok\r\n")}, assist_options());
  EXPECT_EQ(rewrite_notes(without).find("ends in"), std::string::npos);
}

// A Backspace typed in raw mode or telnet's mode character goes as an octet (DEL, or BS from
// PuTTY and Windows telnet): the rewrite note says which of the user name and password held
// one, never where, for the 535 that follows.
TEST(DialogueAssist, ABackspaceOctetInTheUserNameOrPasswordIsNoted) {
  auto rewrite_notes = [](const Result& r) {
    std::string all;
    for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
      all += e->note + "\n";
    return all;
  };
  const Result login = run_all_splits(
      {
          client("AUTH LOGIN\r\n"),
          upstream("334 VXNlcm5hbWU6\r\n"),
          client("alicx\x7f"
                 "e\r\n"),
          upstream("334 UGFzc3dvcmQ6\r\n"),
          client("s3cret-pw-2\x08"
                 "1\r\n"),
          upstream("535 5.7.8 failed\r\n"),
      },
      assist_options());
  const std::string notes = rewrite_notes(login);
  EXPECT_NE(notes.find("user name typed in clear; sent as base64 (--assist-auth); the user name "
                       "holds a Backspace octet (0x7f, DEL), sent as part of it (a terminal in "
                       "raw mode or telnet's mode character sends Backspace as an octet, not as "
                       "an edit)"),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("; the password holds a Backspace octet (0x08, BS), sent as part of it"),
            std::string::npos)
      << notes;
  expect_no_secret(login,
                   "s3cret-pw-2\x08"
                   "1");
  const Result plain = run_all_splits(
      {client("AUTH PLAIN alice s3cret\x7fpw\r\n"), upstream("535 5.7.8 failed\r\n")},
      assist_options());
  EXPECT_NE(rewrite_notes(plain).find("; the password holds a Backspace octet (0x7f, DEL)"),
            std::string::npos)
      << rewrite_notes(plain);
  EXPECT_EQ(rewrite_notes(plain).find("the user name holds"), std::string::npos);
  const Result without = run_all_splits(
      {client("AUTH PLAIN alice s3cret-pw\r\n"), upstream("235 2.7.0 ok\r\n")}, assist_options());
  EXPECT_EQ(rewrite_notes(without).find("Backspace"), std::string::npos);
}

}  // namespace
}  // namespace mailtap::smtp
