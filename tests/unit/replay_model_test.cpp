// The sans-IO side of `mailtap replay`: reading a recording into flights and replies, filling
// redacted AUTH lines, and acting the client out through a Dialogue.
#include <gtest/gtest.h>

#include <algorithm>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/upstream_login.hpp"
#include "tests/unit/event_rows.hpp"
#include "tests/unit/upstream_text.hpp"
#include "tools/recorded_dialogue.hpp"
#include "tools/replay_credentials.hpp"
#include "tools/replay_driver.hpp"
#include "tools/replay_report.hpp"

namespace mailtap::tools {
namespace {

using smtp::Direction;
using smtp::EventKind;
using smtp::upstream_text;

// swaks-like session: EHLO, AUTH PLAIN, pipelined MAIL/RCPT/DATA, body, QUIT.
std::vector<storage::EventRow> plain_session() {
  return {
      ev(Direction::mailtap_to_upstream, EventKind::command, "EHLO", "EHLO proxy\r\n"),
      ev(Direction::upstream_to_mailtap, EventKind::reply, "EHLO", "250 STARTTLS\r\n", 250),
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 6 bytes>]\r\n", 0, true),
      reply("AUTH", 235, "235 2.7.0 Authentication successful\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      client("DATA", "DATA\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      reply("DATA", 354, "354 End data with <CR><LF>.<CR><LF>\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: t\r\n\r\nhi\r\n.\r\n"),
      reply("DATA", 250, "250 2.0.0 Ok: queued as ABC\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  };
}

// plain_session() with an earlier AUTH PLAIN (its password `password_size` octets) answered by
// `failure`, before the one that succeeds.
std::vector<storage::EventRow> plain_session_after_failed_auth(int password_size, int code,
                                                               const std::string& failure) {
  auto events = plain_session();
  const std::vector<storage::EventRow> failed = {
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted " +
             std::to_string(password_size) + " bytes>]\r\n",
         0, true),
      reply("AUTH", code, failure),
  };
  events.insert(events.begin() + 5, failed.begin(), failed.end());
  for (std::size_t i = 0; i < events.size(); ++i) events[i].seq = i + 1;  // in recorded order
  return events;
}

TEST(RecordedDialogue, GroupsPipelinedClientBytesIntoFlights) {
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(plain_session(), d, error)) << error;
  ASSERT_TRUE(d.greeting);
  EXPECT_EQ(d.greeting->code, 220);  // mailtap's own pre-TLS EHLO is not the client's
  ASSERT_EQ(d.flights.size(), 5u);
  EXPECT_EQ(d.flights[0].steps.size(), 1u);  // EHLO
  EXPECT_EQ(d.flights[2].steps.size(), 3u);  // MAIL RCPT DATA went together
  EXPECT_EQ(d.flights[2].reply_count, 3u);
  FlightCursor at;
  smtp::Secret piece;
  ASSERT_TRUE(d.next_flight_piece(d.flights[2], at, piece, error)) << error;
  EXPECT_EQ(piece.view(), "MAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  EXPECT_TRUE(at.done(d.flights[2]));  // a small flight goes in one piece
  EXPECT_EQ(d.replies.size(), 7u);
  EXPECT_TRUE(d.client_quit);
}

TEST(RecordedDialogue, KeepsTheEhloReplyTheClientSaw) {
  auto events = plain_session();
  auto rewrite = ev(Direction::mailtap_to_client, EventKind::rewrite, "EHLO", "250 mx\r\n");
  events.insert(events.begin() + 5, rewrite);
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  EXPECT_EQ(d.replies[0].client_view, "250 mx\r\n");
  EXPECT_EQ(d.replies[0].first_line(), "250 mx");
}

TEST(RecordedDialogue, RefusesABodyNotRecordedInFull) {
  auto events = plain_session();
  events[13].event.wire_size = 100000;
  RecordedDialogue d;
  std::string error;
  EXPECT_FALSE(build_recorded_dialogue(events, d, error));
  EXPECT_NE(error.find("body octets"), std::string::npos) << error;
}

// mailtap answered a BDAT itself (the upstream did not advertise CHUNKING) and read and dropped
// its chunk unrecorded: the replay has no chunk to send behind the line, and a Dialogue given the
// line would wait for one for ever. Refused before anything is sent, naming the event; a
// `BDAT 0 LAST` there has no chunk to miss.
TEST(RecordedDialogue, RefusesABdatChunkMailtapDiscardedUnrecorded) {
  auto bdat_session = [](const std::string& bdat_line) {
    return std::vector<storage::EventRow>{
        ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
        client("EHLO", "EHLO client.test\r\n"),
        reply("EHLO", 250, "250 mx\r\n"),
        client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
        reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
        ev(Direction::client_to_mailtap, EventKind::command, "BDAT", bdat_line),
        ev(Direction::mailtap_to_client, EventKind::local_reply, "BDAT",
           "502 5.5.1 mailtap: the upstream did not advertise CHUNKING; BDAT chunk discarded\r\n",
           502),
        client("QUIT", "QUIT\r\n"),
        reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
    };
  };
  const std::vector<storage::EventRow> discarded = bdat_session("BDAT 12 LAST\r\n");
  RecordedDialogue d;
  std::string error;
  EXPECT_FALSE(build_recorded_dialogue(discarded, d, error));
  EXPECT_NE(error.find("event " + std::to_string(discarded[5].seq) + ": "), std::string::npos)
      << error;
  EXPECT_NE(error.find("12 octets"), std::string::npos) << error;
  // The mock only counts a chunk: it reads and drops the client's as mailtap did.
  EXPECT_TRUE(build_recorded_dialogue(discarded, d, error, RefusedLines::answered_again)) << error;
  EXPECT_TRUE(build_recorded_dialogue(bdat_session("BDAT 0 LAST\r\n"), d, error)) << error;
  // An older mailtap read lenient spellings as BDAT and discarded their chunk too; the strict
  // parse cannot say how many octets that was, so such a line is not sent again either.
  for (const std::string line : {"BDAT\t10\r\n", " BDAT 10\r\n", "BDAT  10 LAST\r\n"}) {
    const std::vector<storage::EventRow> lenient = bdat_session(line);
    EXPECT_FALSE(build_recorded_dialogue(lenient, d, error)) << line;
    EXPECT_NE(error.find("event " + std::to_string(lenient[5].seq) + ": "), std::string::npos)
        << error;
    EXPECT_NE(error.find("cannot be sent again"), std::string::npos) << error;
  }
}

// The dialogue `events` rebuild into, which must succeed.
RecordedDialogue built(const std::vector<storage::EventRow>& events) {
  RecordedDialogue d;
  std::string error;
  EXPECT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  return d;
}

// The client's steps, each with the reply mailtap answered it with, and the flights.
void expect_same_dialogue(const RecordedDialogue& got, const RecordedDialogue& want) {
  ASSERT_EQ(got.client.size(), want.client.size());
  for (std::size_t i = 0; i < want.client.size(); ++i) {
    EXPECT_EQ(got.client[i].bytes, want.client[i].bytes) << "step " << i;
    EXPECT_EQ(got.client[i].local_answer, want.client[i].local_answer) << "step " << i;
  }
  ASSERT_EQ(got.flights.size(), want.flights.size());
  for (std::size_t i = 0; i < want.flights.size(); ++i) {
    EXPECT_EQ(got.flights[i].steps, want.flights[i].steps) << "flight " << i;
    EXPECT_EQ(got.flights[i].reply_count, want.flights[i].reply_count) << "flight " << i;
  }
  EXPECT_EQ(got.replies.size(), want.replies.size());
}

// The server refused the message inside its body: what mailtap still had queued of it was
// dropped, and a note says so. All the body the client sent is recorded; the note is no step.
TEST(RecordedDialogue, ANoteOfBodyOctetsNeverSentUpstreamIsNoClientStep) {
  std::vector<storage::EventRow> events = plain_session();
  events.pop_back();  // QUIT and its reply: the session ended at the refusal
  events.pop_back();
  events.back() = ev(Direction::upstream_to_client, EventKind::reply, "",
                     "552 5.3.4 Message size exceeds fixed limit\r\n", 552);
  const RecordedDialogue without_note = built(events);
  events.push_back(unsent_note(EventKind::data, 30, 1));
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  expect_same_dialogue(d, without_note);
}

// Replies out of step with the pipelined MAIL and RCPT: mailtap dropped the RCPT it still had
// queued, noted it, and closed with its own 421, which answers no line of the client's.
TEST(RecordedDialogue, ANoteOfALineNeverSentUpstreamIsNoClientStep) {
  std::vector<storage::EventRow> events = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 PIPELINING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      ev(Direction::upstream_to_mailtap, EventKind::reply, "RCPT", "354 go ahead\r\n", 354),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "",
         "421 4.5.0 mailtap: out of step; closing\r\n", 421),
  };
  const RecordedDialogue without_note = built(events);
  events.insert(events.end() - 1, unsent_note(EventKind::command, 30));
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  expect_same_dialogue(d, without_note);
  EXPECT_FALSE(d.client.back().local_answer);  // the RCPT went upstream: the 421 is not its
}

// OpenSMTPD and a body line "." NUL: the client's "." reached the server, which answered 250
// (taken as the end of data's reply), then 500 to what followed. No command awaited the 500, so
// mailtap refused it and closed with its 421. That refused reply came after the body's reply: it
// is no reply refused inside a body, which the mock would hand to the client's next command.
TEST(RecordedDialogue, AReplyRefusedAfterTheBodysReplyIsNotOneRefusedInsideTheBody) {
  const std::vector<storage::EventRow> events = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: t\r\n\r\n.\r\n"),
      reply("DATA", 250, "250 2.0.0 Message accepted for delivery\r\n"),
      ev(Direction::upstream_to_mailtap, EventKind::reply, "", "500 5.5.1 Invalid command\r\n",
         500),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "",
         "421 4.5.0 mailtap: out of step; closing\r\n", 421),
  };
  const RecordedDialogue d = built(events);
  EXPECT_FALSE(d.refused_chunk_reply);
  // Like any reply mailtap refused outside a body, the client never read it: what it read
  // after the body's 250 is mailtap's 421.
  ASSERT_FALSE(d.replies.empty());
  EXPECT_TRUE(d.replies.back().local);
  EXPECT_EQ(d.replies.back().code, 421);
  EXPECT_EQ(d.replies[d.replies.size() - 2].code, 250);
}

TEST(ReplayCredentials, RebuildsAuthPlainAndNeverShowsIt) {
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(plain_session(), d, error)) << error;
  AuthNeeds needs = auth_needs(d);
  EXPECT_TRUE(needs.password);
  EXPECT_FALSE(needs.user);
  EXPECT_EQ(needs.mechanism, "PLAIN");
  ASSERT_TRUE(fill_secrets(d, "", "s3cret", error)) << error;
  EXPECT_EQ(d.client[1].wire(),
            "AUTH PLAIN " + smtp::base64_encode(std::string("\0alice\0s3cret", 13)) + "\r\n");
  EXPECT_EQ(d.client[1].summary().find(smtp::base64_encode(std::string("\0alice\0s3cret", 13))),
            std::string::npos);
  ASSERT_TRUE(fill_secrets(d = {}, "", "", error));  // an empty dialogue needs nothing
}

// An AUTH between BDAT chunks that mailtap refused itself (503) never went upstream: the replay
// needs no password for it, and sends it as recorded for its own mailtap to refuse again.
TEST(ReplayCredentials, AuthMailtapAnsweredNeedsNoPassword) {
  const std::string rendering =
      "AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 11 bytes>]\r\n";
  const std::vector<storage::EventRow> events = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      ev(Direction::client_to_upstream, EventKind::command, "MAIL", "MAIL FROM:<a@b>\r\n"),
      ev(Direction::client_to_upstream, EventKind::command, "BDAT", "BDAT 5\r\n"),
      ev(Direction::client_to_upstream, EventKind::bdat_chunk, "BDAT", "hello"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      reply("BDAT", 250, "250 2.0.0 5 octets\r\n"),
      ev(Direction::client_to_mailtap, EventKind::auth, "AUTH", rendering, 0, true),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "",
         "503 5.5.1 mailtap: only BDAT, RSET, NOOP or QUIT\r\n", 503),
      ev(Direction::client_to_upstream, EventKind::command, "BDAT", "BDAT 3 LAST\r\n"),
      ev(Direction::client_to_upstream, EventKind::bdat_chunk, "BDAT", "abc"),
      reply("BDAT", 250, "250 2.0.0 queued\r\n"),
  };
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  const AuthNeeds needs = auth_needs(d);
  EXPECT_TRUE(needs.refusal.empty()) << needs.refusal;
  EXPECT_FALSE(needs.password);
  EXPECT_FALSE(needs.user);
  ASSERT_TRUE(fill_secrets(d, "", "", error)) << error;
  // Even given one, the password goes nowhere the client's did not.
  ASSERT_TRUE(fill_secrets(d, "", "s3cret", error)) << error;
  const auto auth = std::find_if(d.client.begin(), d.client.end(),
                                 [](const ClientStep& s) { return s.verb == "AUTH"; });
  ASSERT_NE(auth, d.client.end());
  EXPECT_FALSE(auth->filled);
  EXPECT_EQ(auth->wire(), rendering);
}

TEST(ReplayCredentials, AuthUserReplacesTheRecordedOne) {
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(plain_session(), d, error)) << error;
  ASSERT_TRUE(fill_secrets(d, "bob", "pw", error)) << error;
  EXPECT_EQ(d.client[1].wire(),
            "AUTH PLAIN " + smtp::base64_encode(std::string("\0bob\0pw", 7)) + "\r\n");
  // The C: line shows what was sent (bob, 2 octets), not what was recorded (alice, 6).
  EXPECT_EQ(d.client[1].summary(),
            "AUTH PLAIN [authzid=\"\" authcid=\"bob\" password=<redacted 2 bytes>]");
}

TEST(ReplayCredentials, RebuildsAuthLogin) {
  std::vector<storage::EventRow> events = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "AUTH LOGIN\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 VXNlcm5hbWU6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "Ym9i\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 UGFzc3dvcmQ6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "[password=<redacted 3 bytes>]\r\n", 0, true),
      reply("AUTH", 235, "235 ok\r\n"),
  };
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  ASSERT_TRUE(fill_secrets(d, "", "pw!", error)) << error;
  EXPECT_EQ(d.client[0].wire(), "AUTH LOGIN\r\n");
  EXPECT_EQ(d.client[1].wire(), "Ym9i\r\n");  // the user line was kept on the wire
  EXPECT_EQ(d.client[2].wire(), smtp::base64_encode("pw!") + "\r\n");
  EXPECT_EQ(d.client[2].summary(), "[password=<redacted 3 bytes>]");

  RecordedDialogue other;
  ASSERT_TRUE(build_recorded_dialogue(events, other, error)) << error;
  ASSERT_TRUE(fill_secrets(other, "alice", "pw", error)) << error;
  EXPECT_EQ(other.client[1].summary(), smtp::base64_encode("alice"));  // not the recorded Ym9i
  EXPECT_EQ(other.client[2].summary(), "[password=<redacted 2 bytes>]");
}

// A server whose first LOGIN prompt asks for the password: the client answered it with the
// password, so the renderer must go by the recorded prompt, not by position.
std::vector<storage::EventRow> login_password_first_session() {
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "AUTH LOGIN\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 UGFzc3dvcmQ6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "[password=<redacted 11 bytes>]\r\n", 0, true),
      reply("AUTH", 235, "235 ok\r\n"),
  };
}

TEST(ReplayCredentials, NeverShowsALoginPasswordAskedForFirst) {
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(login_password_first_session(), d, error)) << error;
  ASSERT_TRUE(fill_secrets(d, "", "hunter2pass", error)) << error;
  ASSERT_EQ(d.client[1].wire(), smtp::base64_encode("hunter2pass") + "\r\n");
  EXPECT_EQ(d.client[1].summary(), "[password=<redacted 11 bytes>]");

  std::vector<smtp::RecordedEvent> events;
  std::vector<smtp::Message> messages;
  const ReplayReport report = ReplayDriver(d, {}, events, messages).report();
  const std::vector<std::string> shown = {d.client[1].summary(),
                                          format_replay_text({1, 2, "mx:587"}, report),
                                          format_replay_json({1, 2, "mx:587"}, report)};
  for (const std::string& out : shown) {
    EXPECT_EQ(out.find("hunter2pass"), std::string::npos) << out;
    EXPECT_EQ(out.find(smtp::base64_encode("hunter2pass")), std::string::npos) << out;
    EXPECT_EQ(out.find(smtp::base64_encode(std::string("\0user\0hunter2pass", 17))),
              std::string::npos)
        << out;
  }
}

// A server that asks "Password:", then "Username:", and a client that followed the prompts;
// `second` is how the record holds the second answer.
std::vector<storage::EventRow> login_password_then_user_session(const std::string& second) {
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH LOGIN\r\n"),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "AUTH LOGIN\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 UGFzc3dvcmQ6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "[password=<redacted 11 bytes>]\r\n", 0, true),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 VXNlcm5hbWU6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", second + "\r\n", 0, true),
      reply("AUTH", 235, "235 ok\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 bye\r\n"),
  };
}

// The record holds the answer to "Username:" as a password ([password=<redacted>] twice) or
// labelled by its prompt ([user=<redacted>]): either way the user name goes to "Username:", the
// password only to "Password:".
TEST(ReplayCredentials, FillsEachLoginAnswerWithWhatItsPromptAskedFor) {
  for (const std::string second : {"[user=<redacted 3 bytes>]", "[password=<redacted 3 bytes>]"}) {
    SCOPED_TRACE(second);
    RecordedDialogue d;
    std::string error;
    ASSERT_TRUE(build_recorded_dialogue(login_password_then_user_session(second), d, error))
        << error;
    const AuthNeeds needs = auth_needs(d);
    EXPECT_EQ(needs.refusal, "");
    EXPECT_TRUE(needs.password);
    EXPECT_TRUE(needs.user);  // the record does not hold it
    EXPECT_EQ(needs.user_why,
              "event " + std::to_string(d.client[3].seq) +
                  ": the server asked for the user name after the password, and the record "
                  "keeps that answer hidden (a client answering by position sends its password "
                  "there)");
    ASSERT_TRUE(fill_secrets(d, "bob", "hunter2pass", error)) << error;
    EXPECT_EQ(d.client[2].wire(), smtp::base64_encode("hunter2pass") + "\r\n");
    EXPECT_EQ(d.client[3].wire(), smtp::base64_encode("bob") + "\r\n");
    EXPECT_EQ(d.client[2].summary(), "[password=<redacted 11 bytes>]");
    EXPECT_EQ(d.client[3].summary(), "[user=<redacted 3 bytes>]");
  }
}

TEST(ReplayCredentials, RefusesALoginUserNameItCannotKnow) {
  // Without --auth-user, nothing can go to "Username:": the password must not stand in.
  for (const std::string second : {"[user=<redacted 3 bytes>]", "[password=<redacted 3 bytes>]"}) {
    SCOPED_TRACE(second);
    RecordedDialogue d;
    std::string error;
    ASSERT_TRUE(build_recorded_dialogue(login_password_then_user_session(second), d, error))
        << error;
    EXPECT_FALSE(fill_secrets(d, "", "hunter2pass", error));
    EXPECT_NE(error.find("event " + std::to_string(d.client[3].seq) +
                         ": the server asked for "
                         "the user name after the password"),
              std::string::npos)
        << error;
    EXPECT_NE(error.find("give --auth-user"), std::string::npos) << error;
    EXPECT_FALSE(d.client[3].filled);
  }
}

TEST(ReplayCredentials, AStepRecordedRedactedIsNeverShownInFull) {
  // Recorded with --redact-users: the user name was a secret then, so it stays hidden even
  // though the renderer (which keeps user names) would show the one --auth-user gave.
  std::vector<storage::EventRow> events = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "AUTH LOGIN\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 VXNlcm5hbWU6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "[user=<redacted 5 bytes>]\r\n", 0,
         true),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 UGFzc3dvcmQ6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "[password=<redacted 3 bytes>]\r\n", 0, true),
      reply("AUTH", 235, "235 ok\r\n"),
  };
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  ASSERT_TRUE(fill_secrets(d, "alice", "pw", error)) << error;
  EXPECT_EQ(d.client[1].wire(), smtp::base64_encode("alice") + "\r\n");
  EXPECT_EQ(d.client[1].summary(), "[user=<redacted 5 bytes>]");
  EXPECT_EQ(d.client[2].summary(), "[password=<redacted 2 bytes>]");
}

TEST(ReplayCredentials, RefusesOtherMechanismsAndRedactedUsersWithoutAuthUser) {
  std::vector<storage::EventRow> cram = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "AUTH CRAM-MD5\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 PDE+\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "[user=\"bob\" digest=<redacted 32 bytes>]\r\n", 0, true),
  };
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(cram, d, error)) << error;
  EXPECT_NE(auth_needs(d).refusal.find("CRAM-MD5"), std::string::npos);

  // A word after AUTH that is no mechanism is recorded as a secret: it names no mechanism.
  const std::vector<storage::EventRow> pasted = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "AUTH [<redacted 12 bytes>]\r\n",
         0, true),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "504 5.5.4 no\r\n", 504),
  };
  ASSERT_TRUE(build_recorded_dialogue(pasted, d, error)) << error;
  EXPECT_NE(auth_needs(d).refusal.find("AUTH (unknown mechanism)"), std::string::npos)
      << auth_needs(d).refusal;
  EXPECT_EQ(auth_mechanism_at(d, d.client.back().seq), "");

  auto events = plain_session();
  events[5].event.bytes =
      "AUTH PLAIN [authzid=<redacted 0 bytes> authcid=<redacted 5 bytes> password=<redacted 6 "
      "bytes>]\r\n";
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  EXPECT_TRUE(auth_needs(d).user);
  EXPECT_FALSE(fill_secrets(d, "", "pw", error));
  EXPECT_NE(error.find("--auth-user"), std::string::npos) << error;
  RecordedDialogue again;
  ASSERT_TRUE(build_recorded_dialogue(events, again, error));
  EXPECT_TRUE(fill_secrets(again, "alice", "pw", error)) << error;
}

TEST(ReplayCredentials, RefusesALineRedactedOutsideAuth) {
  // A PLAIN blob pasted outside AUTH is recorded as a placeholder: sending the placeholder
  // would not replay the session.
  auto events = plain_session();
  auto pasted = ev(Direction::client_to_upstream, EventKind::command, "",
                   "[<redacted 30 bytes>]\r\n", 0, true);
  pasted.event.note = "shaped like an AUTH credential";
  events.insert(events.begin() + 5, pasted);
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  const std::string refusal = auth_needs(d).refusal;
  EXPECT_NE(refusal.find("event " + std::to_string(pasted.seq) + ": "), std::string::npos);
  EXPECT_NE(refusal.find("(shaped like an AUTH credential); it cannot be sent again"),
            std::string::npos)
      << refusal;
}

TEST(ReplayCredentials, RefusesAFailedAuthFollowedByAnotherOne) {
  // A wrong password, then the right one: replay has one password for both AUTHs.
  const auto events =
      plain_session_after_failed_auth(5, 535, "535 5.7.8 Error: authentication failed\r\n");
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  const std::string refusal = auth_needs(d).refusal;
  EXPECT_NE(refusal.find("event 6: an AUTH with a password failed (535)"), std::string::npos)
      << refusal;
  // A single AUTH, failed or not, is replayable.
  ASSERT_TRUE(build_recorded_dialogue(plain_session(), d, error)) << error;
  EXPECT_EQ(auth_needs(d).refusal, "");
}

TEST(ReplayCredentials, ReplaysATemporaryAuthFailureTriedAgain) {
  // 454: the server could not check then; the client sent the same password again.
  const auto events =
      plain_session_after_failed_auth(6, 454, "454 4.7.0 Temporary authentication failure\r\n");
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(events, d, error)) << error;
  const AuthNeeds needs = auth_needs(d);
  EXPECT_EQ(needs.refusal, "");
  EXPECT_TRUE(needs.password);
  ASSERT_TRUE(fill_secrets(d, "", "s3cret", error)) << error;
  const std::string wire =
      "AUTH PLAIN " + smtp::base64_encode(std::string("\0alice\0s3cret", 13)) + "\r\n";
  EXPECT_EQ(d.client[1].wire(), wire);
  EXPECT_EQ(d.client[2].wire(), wire);
}

TEST(ReplayCredentials, ParsesRenderedFields) {
  std::vector<RenderedField> f;
  ASSERT_TRUE(parse_rendered_fields(
      R"(authzid="" authcid="a\"b\\c\x01" password=<redacted 12 bytes fp=0123456789abcdef>)", f));
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[1].value, std::string("a\"b\\c\x01"));
  EXPECT_TRUE(f[2].redacted);
  EXPECT_EQ(f[2].redacted_size, 12u);
  EXPECT_FALSE(parse_rendered_fields(R"(user="unterminated)", f));
}

TEST(ReplayDriver, ContinuesOnlyWhereTheNextBytesMeanTheSame) {
  EXPECT_TRUE(safe_to_continue(250, 251, "RCPT"));
  EXPECT_TRUE(safe_to_continue(250, 550, "RCPT"));   // a refused recipient: go on, report it
  EXPECT_FALSE(safe_to_continue(354, 554, "DATA"));  // the body would be read as commands
  EXPECT_FALSE(safe_to_continue(550, 354, "DATA"));
  EXPECT_FALSE(safe_to_continue(334, 535, "AUTH"));
  EXPECT_FALSE(safe_to_continue(235, 535, "AUTH"));  // never send the mail unauthenticated
  EXPECT_FALSE(safe_to_continue(250, 421, "MAIL"));
}

struct DriverHarness {
  RecordedDialogue recording;
  std::vector<smtp::RecordedEvent> events;
  std::vector<smtp::Message> messages;
  std::unique_ptr<ReplayDriver> driver;

  // `outcome`: the session row's, noted as load_recorded_dialogue notes it.
  explicit DriverHarness(std::vector<storage::EventRow> rows, smtp::DialogueOptions options = {},
                         std::optional<storage::Outcome> outcome = std::nullopt) {
    std::string error;
    EXPECT_TRUE(build_recorded_dialogue(rows, recording, error)) << error;
    if (outcome) note_session_outcome(recording, outcome);
    EXPECT_TRUE(fill_secrets(recording, "", "s3cret", error)) << error;
    driver = std::make_unique<ReplayDriver>(recording, std::move(options), events, messages);
    smtp::ReplyParser p;
    p.feed("220 new ESMTP\r\n");
    driver->start(*p.next(), smtp::Phase::tls);
  }
};

TEST(ReplayDriver, SendsFlightsWhenTheOriginalDidAndComparesReplies) {
  DriverHarness h(plain_session());
  ReplayDriver& d = *h.driver;
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "EHLO client.test\r\n");
  d.upstream_bytes("250-new\r\n250 AUTH PLAIN\r\n");
  const std::string auth = upstream_text(d.take_to_upstream());
  EXPECT_EQ(auth.substr(0, 11), "AUTH PLAIN ");
  d.upstream_bytes("235 2.7.0 ok\r\n");
  // The pipelined flight goes out in one piece, before any of its replies.
  EXPECT_EQ(upstream_text(d.take_to_upstream()),
            "MAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "Subject: t\r\n\r\nhi\r\n.\r\n");
  d.upstream_bytes("250 queued as XYZ\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
  d.upstream_bytes("221 bye\r\n");
  EXPECT_TRUE(d.finished());
  ReplayReport r = d.report();
  EXPECT_TRUE(r.all_match());
  EXPECT_EQ(r.replies.size(), 8u);
  EXPECT_EQ(r.replies[6].replay_line, "250 queued as XYZ");
  // Each reply of the pipelined flight names the command it answers; the flight's lines are
  // all on its first reply's `sent`.
  EXPECT_EQ(r.replies[3].sent.size(), 3u);
  EXPECT_EQ(r.replies[3].command, "MAIL FROM:<a@client.test>");
  EXPECT_EQ(r.replies[4].command, "RCPT TO:<alice@example.test>");
  EXPECT_TRUE(r.replies[4].sent.empty());
  EXPECT_EQ(r.replies[5].command, "DATA");
  EXPECT_EQ(r.replies[6].command, "<21 octets of message body>");
  EXPECT_EQ(r.replies[0].command, "");  // the greeting answers nothing
  // Every line of a multi-line reply is kept, for --json (its first alone for the table).
  EXPECT_EQ(r.replies[1].replay_lines, (std::vector<std::string>{"250-new", "250 AUTH PLAIN"}));
  EXPECT_EQ(r.replies[6].replay_lines, std::vector<std::string>{"250 queued as XYZ"});
  EXPECT_FALSE(r.replies[1].original_lines.empty());
  const std::string json = format_replay_json({7, 9, "mx:587"}, r);
  EXPECT_NE(json.find("\"text\":\"250-new\",\"lines\":[\"250-new\",\"250 AUTH PLAIN\"]"),
            std::string::npos)
      << json;
  // The recorded side of the replay never holds the password.
  for (const auto& e : h.events) EXPECT_EQ(e->bytes.find("czNjcmV0"), std::string::npos);
}

TEST(ReplayDriver, StopsWhenAuthFailsAndReportsTheDifference) {
  DriverHarness h(plain_session());
  ReplayDriver& d = *h.driver;
  d.take_to_upstream();
  d.upstream_bytes("250-new\r\n250 AUTH PLAIN\r\n");
  d.take_to_upstream();
  d.upstream_bytes("535 5.7.8 Error: authentication failed\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()),
            "QUIT\r\n");  // no MAIL: the original was authenticated
  d.upstream_bytes("221 bye\r\n");
  EXPECT_TRUE(d.finished());
  ReplayReport r = d.report();
  EXPECT_FALSE(r.all_match());
  EXPECT_EQ(r.replies[2].original_code, 235);
  EXPECT_EQ(r.replies[2].replay_code, 535);
  EXPECT_FALSE(r.replies[3].replay_code);
  EXPECT_NE(r.stopped.find("535 instead of 235"), std::string::npos) << r.stopped;
  const std::string text = format_replay_text({7, 9, "mx:587"}, r);
  EXPECT_NE(text.find("DIFFERENT"), std::string::npos) << text;
  EXPECT_NE(text.find("(not replayed)"), std::string::npos) << text;
  // A changed reply that fits its column is not repeated; one cut to it is shown whole below.
  EXPECT_EQ(text.find("   replay: "), std::string::npos) << text;
  const std::string narrow = format_replay_text({7, 9, "mx:587"}, r, 60);
  EXPECT_NE(narrow.find("DIFFERENT\n   replay: 535 5.7.8 Error: authentication failed\n"),
            std::string::npos)
      << narrow;
  const std::string json = format_replay_json({7, std::nullopt, "mx:587"}, r);
  EXPECT_NE(json.find("\"match\":false"), std::string::npos) << json;
  EXPECT_NE(json.find("\"replay_session\":null"), std::string::npos) << json;
}

// A LOGIN exchange recorded as "Username:" then "Password:", replayed to a server that asks
// for the password first: the filled password must not go out as the answer to a prompt the
// recording answered with the user name (the server would take it, and the replay's record
// keep it, as the user name).
std::vector<storage::EventRow> login_session() {
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH LOGIN\r\n"),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "AUTH LOGIN\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 VXNlcm5hbWU6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH", "Ym9i\r\n"),
      ev(Direction::upstream_to_client, EventKind::auth, "AUTH", "334 UGFzc3dvcmQ6\r\n", 334),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "[password=<redacted 6 bytes>]\r\n", 0, true),
      reply("AUTH", 235, "235 ok\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 bye\r\n"),
  };
}

TEST(ReplayDriver, CancelsAuthWhenTheServerAsksForTheOtherLoginField) {
  DriverHarness h(login_session());
  ReplayDriver& d = *h.driver;
  std::string sent = upstream_text(d.take_to_upstream());
  d.upstream_bytes("250-new\r\n250 AUTH LOGIN\r\n");
  sent += upstream_text(d.take_to_upstream());
  d.upstream_bytes("334 UGFzc3dvcmQ6\r\n");  // "Password:" where the recording had "Username:"
  sent += upstream_text(d.take_to_upstream());
  d.upstream_bytes("501 5.7.0 cancelled\r\n");
  sent += upstream_text(d.take_to_upstream());
  d.upstream_bytes("221 bye\r\n");
  sent += upstream_text(d.take_to_upstream());
  EXPECT_TRUE(d.finished());
  EXPECT_EQ(sent, "EHLO client.test\r\nAUTH LOGIN\r\n*\r\nQUIT\r\n");
  EXPECT_EQ(sent.find("s3cret"), std::string::npos) << sent;
  EXPECT_EQ(sent.find(smtp::base64_encode("s3cret")), std::string::npos) << sent;
  const ReplayReport r = d.report();
  EXPECT_FALSE(r.all_match());
  EXPECT_NE(r.stopped.find("the server asked for a password where the recording asked for a "
                           "user name"),
            std::string::npos)
      << r.stopped;
  EXPECT_NE(r.stopped.find("nothing more was sent"), std::string::npos) << r.stopped;
  for (const auto& e : h.events) EXPECT_EQ(e->bytes.find("czNjcmV0"), std::string::npos);
}

TEST(ReplayDriver, GoesOnWhenTheLoginPromptsAskTheSameInOtherWords) {
  DriverHarness h(login_session());
  ReplayDriver& d = *h.driver;
  d.take_to_upstream();
  d.upstream_bytes("250-new\r\n250 AUTH LOGIN\r\n");
  d.take_to_upstream();
  d.upstream_bytes("334 " + smtp::base64_encode("username") + "\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "Ym9i\r\n");
  d.upstream_bytes("334 " + smtp::base64_encode("PASSWORD") + "\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), smtp::base64_encode("s3cret") + "\r\n");
  d.upstream_bytes("235 ok\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
  d.upstream_bytes("221 bye\r\n");
  EXPECT_TRUE(d.finished());
  EXPECT_TRUE(d.report().all_match()) << d.report().stopped;
}

// --assist-auth: the client read "334 Username:" (mailtap decoded the server's challenge), but
// the replay compares with the server's own challenge, so that is what its original column
// shows (table and --json alike), not two different texts side by side.
TEST(ReplayDriver, ComparesADecodedChallengeAsTheServerSentIt) {
  auto rows = login_session();
  rows.insert(rows.begin() + 7,
              ev(Direction::mailtap_to_client, EventKind::rewrite, "AUTH", "334 Password:\r\n"));
  rows.insert(rows.begin() + 5,
              ev(Direction::mailtap_to_client, EventKind::rewrite, "AUTH", "334 Username:\r\n"));
  DriverHarness h(rows);
  const ReplayReport r = h.driver->report();
  std::vector<std::string> challenges;
  for (const ReplyComparison& c : r.replies)
    if (c.original_code == 334) {
      challenges.push_back(c.original_line);
      EXPECT_EQ(c.original_lines, std::vector<std::string>{c.original_line});
    }
  EXPECT_EQ(challenges, (std::vector<std::string>{"334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"}));
}

TEST(ReplayDriver, AnswersAPasswordFirstServerAsItsRecordingDid) {
  RecordedDialogue recording;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(
      login_password_then_user_session("[password=<redacted 3 bytes>]"), recording, error))
      << error;
  ASSERT_TRUE(fill_secrets(recording, "bob", "s3cret", error)) << error;
  std::vector<smtp::RecordedEvent> events;
  std::vector<smtp::Message> messages;
  ReplayDriver d(recording, {}, events, messages);
  smtp::ReplyParser p;
  p.feed("220 new ESMTP\r\n");
  d.start(*p.next(), smtp::Phase::tls);
  d.take_to_upstream();
  d.upstream_bytes("250-new\r\n250 AUTH LOGIN\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "AUTH LOGIN\r\n");
  d.upstream_bytes("334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), smtp::base64_encode("s3cret") + "\r\n");
  d.upstream_bytes("334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), smtp::base64_encode("bob") + "\r\n");
  d.upstream_bytes("235 ok\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
  d.upstream_bytes("221 bye\r\n");
  EXPECT_TRUE(d.finished());
  EXPECT_TRUE(d.report().all_match()) << d.report().stopped;
  // The replay's own record labels the second answer by the live prompt, and hides it.
  for (const auto& e : events) {
    EXPECT_EQ(e->bytes.find(smtp::base64_encode("s3cret")), std::string::npos) << e->bytes;
    EXPECT_EQ(e->bytes.find(smtp::base64_encode("bob")), std::string::npos) << e->bytes;
  }
}

TEST(ReplayCredentials, ComparesChallengesByWhatTheyAsk) {
  EXPECT_EQ(challenge_mismatch("LOGIN", "334 VXNlcm5hbWU6", "334 dXNlcm5hbWU="), "");
  EXPECT_EQ(challenge_mismatch("LOGIN", "334 UGFzc3dvcmQ6", "334 VXNlcm5hbWU6"),
            "the server asked for a user name where the recording asked for a password");
  EXPECT_EQ(challenge_mismatch("PLAIN", "334 ", "334"), "");
  EXPECT_NE(challenge_mismatch("CRAM-MD5", "334 PDE+", "334 PDI+"), "");
}

// proxy --auth-user: mailtap authenticated upstream itself; the client never typed AUTH.
std::vector<storage::EventRow> mailtap_login_session() {
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
      ev(Direction::mailtap_to_upstream, EventKind::auth, "AUTH",
         "AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 6 bytes>]\r\n", 0, true),
      ev(Direction::upstream_to_mailtap, EventKind::reply, "AUTH", "235 2.7.0 ok\r\n", 235),
      ev(Direction::mailtap_to_client, EventKind::rewrite, "EHLO", "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  };
}

smtp::DialogueOptions login_options(std::shared_ptr<const smtp::Secret> password) {
  smtp::DialogueOptions o;
  smtp::UpstreamLoginOptions login;
  login.user = "alice";
  login.password = std::move(password);
  o.login = std::move(login);
  return o;
}

TEST(RecordedDialogue, NotesAnAuthMailtapMadeItself) {
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(mailtap_login_session(), d, error)) << error;
  ASSERT_TRUE(d.mailtap_login);
  EXPECT_EQ(d.mailtap_login->mechanism, "PLAIN");
  EXPECT_TRUE(d.mailtap_login->succeeded);
  EXPECT_EQ(d.mailtap_login->held_reply, 0u);  // the EHLO reply waited for it
  EXPECT_EQ(d.client.size(), 3u);              // not a client step
  EXPECT_FALSE(auth_needs(d).password);        // the client's lines hold none

  EXPECT_NE(mailtap_login_refusal(d, "", true).find("--auth-user"), std::string::npos);
  d.mailtap_login->user = "alice";  // load_recorded_dialogue takes it from the session row
  EXPECT_EQ(mailtap_login_refusal(d, "", true), "");
  EXPECT_NE(mailtap_login_refusal(d, "bob", false).find("--tls none"), std::string::npos);
  d.mailtap_login->mechanism = "XOAUTH2";
  EXPECT_NE(mailtap_login_refusal(d, "bob", true).find("token"), std::string::npos);
}

TEST(ReplayDriver, AuthenticatesAsMailtapDidBeforeTheClientGoesOn) {
  auto password = std::make_shared<const smtp::Secret>(smtp::Secret::copy_of("s3cret"));
  DriverHarness h(mailtap_login_session(), login_options(password));
  ReplayDriver& d = *h.driver;
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "EHLO client.test\r\n");
  d.upstream_bytes("250-new\r\n250 AUTH PLAIN LOGIN\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()),
            "AUTH PLAIN " + smtp::base64_encode(std::string("\0alice\0s3cret", 13)) + "\r\n");
  d.upstream_bytes("235 2.7.0 ok\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "MAIL FROM:<a@client.test>\r\n");
  d.upstream_bytes("250 ok\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
  d.upstream_bytes("221 bye\r\n");
  ReplayReport r = d.report();
  EXPECT_TRUE(r.all_match()) << r.stopped;
  ASSERT_TRUE(r.login);
  EXPECT_EQ(r.login->replay, "authenticated (PLAIN)");
  const std::string text = format_replay_text({7, 9, "mx:587"}, r);
  EXPECT_NE(text.find("C: EHLO client.test\nM: mailtap's own AUTH as alice (--auth-user)\n"
                      "M: authenticated (PLAIN)"),
            std::string::npos)
      << text;
  EXPECT_NE(format_replay_json({7, 9, "mx:587"}, r).find("\"mailtap_auth\":{\"user\":\"alice\""),
            std::string::npos);
}

// A BDAT chunk carries its line's verb, but no reply answers it: with `BDAT 3`, its chunk,
// `BDAT 3 LAST` and its chunk pipelined, the second BDAT reply is `BDAT 3 LAST`'s.
TEST(ReplayDriver, NamesTheBdatLineEachPipelinedBdatReplyAnswers) {
  const std::vector<storage::EventRow> rows{
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("BDAT", "BDAT 3\r\n"),
      ev(Direction::client_to_upstream, EventKind::bdat_chunk, "BDAT", "abc"),
      client("BDAT", "BDAT 3 LAST\r\n"),
      ev(Direction::client_to_upstream, EventKind::bdat_chunk, "BDAT", "def"),
      reply("BDAT", 250, "250 2.0.0 3 octets\r\n"),
      reply("BDAT", 250, "250 2.0.0 Ok: queued as B\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  };
  DriverHarness h(rows);
  const ReplayReport r = h.driver->report();
  const auto row_of = [&r](std::string_view original) {
    return std::find_if(r.replies.begin(), r.replies.end(),
                        [&](const ReplyComparison& c) { return c.original_line == original; });
  };
  ASSERT_NE(row_of("250 2.0.0 3 octets"), r.replies.end());
  ASSERT_NE(row_of("250 2.0.0 Ok: queued as B"), r.replies.end());
  EXPECT_EQ(row_of("250 2.0.0 3 octets")->command, "BDAT 3");
  EXPECT_EQ(row_of("250 2.0.0 Ok: queued as B")->command, "BDAT 3 LAST");
}

// A user name that holds the password (user+password typed into --auth-user) is withheld in
// the report, as the proxy withholds it: the report goes to a terminal and to files.
TEST(ReplayDriver, ReportWithholdsALoginUserThatHoldsThePassword) {
  auto password = std::make_shared<const smtp::Secret>(smtp::Secret::copy_of("s3cret"));
  smtp::DialogueOptions options = login_options(password);
  options.login->user = "alice+s3cret";
  DriverHarness h(mailtap_login_session(), std::move(options));
  const ReplayReport r = h.driver->report();
  ASSERT_TRUE(r.login);
  EXPECT_EQ(r.login->user, smtp::kUserWithheld);
  const std::string text = format_replay_text({7, 9, "mx:587"}, r);
  const std::string json = format_replay_json({7, 9, "mx:587"}, r);
  EXPECT_EQ(text.find("s3cret"), std::string::npos) << text;
  EXPECT_EQ(json.find("s3cret"), std::string::npos) << json;
  EXPECT_NE(text.find("<withheld"), std::string::npos) << text;
}

TEST(ReplayDriver, StopsWhenMailtapsOwnAuthFails) {
  auto password = std::make_shared<const smtp::Secret>(smtp::Secret::copy_of("wrong"));
  DriverHarness h(mailtap_login_session(), login_options(password));
  ReplayDriver& d = *h.driver;
  d.take_to_upstream();
  d.upstream_bytes("250-new\r\n250 AUTH PLAIN LOGIN\r\n");
  d.take_to_upstream();
  d.upstream_bytes("535 5.7.8 Error: authentication failed\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");  // no MAIL unauthenticated
  d.upstream_bytes("221 bye\r\n");
  ReplayReport r = d.report();
  EXPECT_FALSE(r.all_match());
  EXPECT_NE(r.stopped.find("mailtap's own AUTH failed"), std::string::npos) << r.stopped;
  EXPECT_FALSE(r.login->matches());
}

// proxy --local-tls implicit: the client's handshake is noted before the greeting, while the
// session row says TLS only once the session ends. A cut or still recorded session (mock
// --unfinished) is known as TLS from its events alone; a STARTTLS note is not this.
TEST(RecordedDialogue, KnowsAClientThatSpokeTlsFromTheFirstByteFromItsEvents) {
  auto session = [](std::string verb, std::string note) {
    storage::EventRow tls = ev(Direction::mailtap_note, EventKind::tls, std::move(verb), "");
    tls.event.note = std::move(note);
    return std::vector<storage::EventRow>{
        tls,
        ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
        client("EHLO", "EHLO client.test\r\n"),
        reply("EHLO", 250, "250 mx\r\n"),
    };
  };
  EXPECT_TRUE(built(session("",
                            "client side: TLS established (TLSv1.3 TLS_AES_256_GCM_SHA384, "
                            "--local-tls implicit)"))
                  .client_implicit_tls);
  EXPECT_FALSE(built(session("STARTTLS",
                             "client side: TLS established (TLSv1.3); the client "
                             "must send EHLO again"))
                   .client_implicit_tls);
  EXPECT_FALSE(built(plain_session()).client_implicit_tls);
}

// proxy --local-tls starttls: the client's STARTTLS was answered by mailtap itself.
std::vector<storage::EventRow> local_starttls_session() {
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH PLAIN\r\n"),
      ev(Direction::mailtap_to_client, EventKind::rewrite, "EHLO", "250-mx\r\n250 STARTTLS\r\n"),
      ev(Direction::client_to_mailtap, EventKind::command, "STARTTLS", "STARTTLS\r\n"),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "",
         "220 2.0.0 Ready to start TLS\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH PLAIN\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  };
}

TEST(ReplayDriver, MakesMailtapsOwnStarttlsReplyAgain) {
  RecordedDialogue model;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(local_starttls_session(), model, error)) << error;
  EXPECT_TRUE(model.client_starttls);

  smtp::DialogueOptions options;
  options.client_tls = smtp::ClientTls::starttls;  // as replay sets it for such a session
  DriverHarness h(local_starttls_session(), std::move(options));
  ReplayDriver& d = *h.driver;
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "EHLO client.test\r\n");
  d.upstream_bytes("250-new\r\n250 AUTH PLAIN\r\n");
  // STARTTLS is answered by mailtap again; the second EHLO goes to the server.
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "EHLO client.test\r\n");
  d.upstream_bytes("250-new\r\n250 AUTH PLAIN\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "QUIT\r\n");
  d.upstream_bytes("221 bye\r\n");
  ReplayReport r = d.report();
  EXPECT_TRUE(r.all_match()) << format_replay_text({7, 9, "mx:587"}, r);
  EXPECT_EQ(r.replies[2].replay_line, "220 2.0.0 Ready to start TLS");
  // The replay's record says what happened on the client side: no handshake, not TLS.
  std::vector<std::string> tls_notes;
  for (const smtp::RecordedEvent& e : h.events)
    if (e->kind == EventKind::tls && e->note.rfind("client side: ", 0) == 0)
      tls_notes.push_back(e->note);
  ASSERT_EQ(tls_notes.size(), 1u);
  EXPECT_EQ(tls_notes[0].find("TLS established"), std::string::npos) << tls_notes[0];
  EXPECT_NE(tls_notes[0].find("no TLS handshake"), std::string::npos) << tls_notes[0];
}

TEST(ReplayDriver, AFaithfulReplayOfAClientThatHungUpMidDataMatches) {
  std::vector<storage::EventRow> rows = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: half\r\n"),
  };
  DriverHarness h(rows);
  ReplayDriver& d = *h.driver;
  d.take_to_upstream();
  d.upstream_bytes("250 mx\r\n");
  d.take_to_upstream();
  d.upstream_bytes("354 go\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "Subject: half\r\n");
  EXPECT_TRUE(d.finished());                     // hung up as the original did
  EXPECT_TRUE(d.dialogue().abandon_upstream());  // no end of data: nothing is delivered
  ReplayReport r = d.report();
  EXPECT_EQ(r.differences(), 0u);
  EXPECT_TRUE(r.all_match()) << format_replay_text({7, 9, "mx:587"}, r);
}

// Recorded since mailtap tells a client that closes inside a body that the message was not
// sent: the replay makes the same 421 and compares it as the recorded one of mailtap's.
TEST(ReplayDriver, AClientThatHungUpMidDataGetsMailtapsOwn421AsRecorded) {
  const std::string told =
      "421 4.4.2 mailtap: the client closed its sending side inside the message body (no end of "
      "data: a line with a single \".\" was missing); the message was not sent: send it again, "
      "ending it with a line holding only \".\"\r\n";
  std::vector<storage::EventRow> rows = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: half\r\n"),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "", told, 421),
  };
  DriverHarness h(rows);
  ReplayDriver& d = *h.driver;
  d.take_to_upstream();
  d.upstream_bytes("250 mx\r\n");
  d.take_to_upstream();
  d.upstream_bytes("354 go\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "Subject: half\r\n");
  EXPECT_TRUE(d.finished());
  ReplayReport r = d.report();
  EXPECT_EQ(r.differences(), 0u);
  EXPECT_TRUE(r.all_match()) << format_replay_text({7, 9, "mx:587"}, r);
  ASSERT_FALSE(r.replies.empty());
  EXPECT_EQ(r.replies.back().replay_code, 421);
}

TEST(ReplayDriver, MailtapsOwn421IsNotShownAsTheServersReply) {
  DriverHarness closed(plain_session());
  ReplayDriver& d = *closed.driver;
  d.take_to_upstream();
  d.upstream_bytes("250-new\r\n250 AUTH PLAIN\r\n");
  d.take_to_upstream();
  d.upstream_closed();  // the server hung up instead of answering AUTH
  ReplayReport r = d.report();
  EXPECT_EQ(r.stopped, "the server closed the connection");
  EXPECT_FALSE(r.replies[2].replay_code);  // not mailtap's "421 ... closed"
  EXPECT_EQ(r.replies[2].replay_line, "(sent; no reply)");
  EXPECT_EQ(r.replies[3].replay_line, "");  // MAIL was never sent
  const std::string text = format_replay_text({7, 9, "mx:587"}, r);
  EXPECT_EQ(text.find("421"), std::string::npos) << text;
  EXPECT_NE(text.find("| (not replayed)"), std::string::npos) << text;

  DriverHarness quiet(plain_session());
  ReplayDriver& q = *quiet.driver;
  q.take_to_upstream();
  q.abort("4.4.2 mailtap: no reply from mx; closing",
          {smtp::Ending::Kind::timeout, "no reply from the server within 5m (--timeout-command)"});
  r = q.report();
  EXPECT_EQ(r.stopped, "no reply from the server within 5m (--timeout-command)");
  EXPECT_FALSE(r.replies[1].replay_code);
}

std::vector<storage::EventRow> server_closed_session() {
  return server_closed_rows("mx:587");
}

// A server that closes where the original's did ends the replay the same way: mailtap's 421 is
// made again and compared like a reply, and nothing stopped early.
TEST(ReplayDriver, TheSameServerCloseIsTheSameEnding) {
  DriverHarness h(server_closed_session());
  note_session_outcome(h.recording, storage::Outcome::upstream_closed);
  ReplayDriver& d = *h.driver;
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "EHLO client.test\r\n");
  d.upstream_bytes("250 new\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "NOOP\r\n.\r\nNOOP\r\n");
  d.upstream_bytes("250 2.0.0 Ok\r\n");
  d.upstream_closed();
  EXPECT_TRUE(d.finished());
  ReplayReport r = d.report();
  EXPECT_TRUE(r.all_match()) << format_replay_text({7, 9, "mx:587"}, r);
  EXPECT_EQ(r.stopped, "");
  ASSERT_EQ(r.replies.size(), 4u);
  EXPECT_EQ(r.replies[3].replay_code, 421);

  // Closed sooner than the original's server: that is no same ending.
  DriverHarness sooner(server_closed_session());
  note_session_outcome(sooner.recording, storage::Outcome::upstream_closed);
  ReplayDriver& s = *sooner.driver;
  s.take_to_upstream();
  s.upstream_bytes("250 new\r\n");
  s.take_to_upstream();
  s.upstream_closed();
  r = s.report();
  EXPECT_EQ(r.stopped, "the server closed the connection");
  EXPECT_FALSE(r.all_match());
}

// A record an older mailtap made of Postfix's 221 to a lone "." has its own 421 for the close
// after that 221. Today's mailtap ends the session on the 221 and records nothing after it, so
// the same server answering the same way again is the same ending: the 421 is shown as not
// expected, not counted as a reply the replay did not get.
TEST(ReplayDriver, AnOlderRecordsCloseNoticeAfterA221IsNotExpectedAgain) {
  DriverHarness h(older_break_rules_rows("mx:587"), {}, storage::Outcome::upstream_closed);
  ReplayDriver& d = *h.driver;
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "EHLO client.test\r\n");
  d.upstream_bytes("250 new\r\n");
  EXPECT_EQ(upstream_text(d.take_to_upstream()), "NOOP\r\n.\r\nNOOP\r\n");
  d.upstream_bytes("250 2.0.0 Ok\r\n221 2.7.0 Error: I can break rules, too. Goodbye.\r\n");
  d.upstream_closed();
  EXPECT_TRUE(d.finished());
  ReplayReport r = d.report();
  const std::string text = format_replay_text({7, 9, "mx:587"}, r, 200);  // lines not cut
  EXPECT_TRUE(r.all_match()) << text;
  EXPECT_EQ(r.stopped, "");
  EXPECT_NE(text.find("421 4.4.2 mailtap: mx:587 closed the connection"), std::string::npos)
      << text;
  const std::size_t notice = text.find("(recorded by an older mailtap; not expected)");
  ASSERT_NE(notice, std::string::npos) << text;
  EXPECT_TRUE(text.substr(notice, text.find('\n', notice) - notice).ends_with("  same")) << text;
  EXPECT_NE(text.find("result: every reply class matches (4 replies)"), std::string::npos) << text;
  const std::string json = format_replay_json({7, 9, "mx:587"}, r);
  EXPECT_NE(json.find("\"note\":\"recorded by an older mailtap; not expected\""), std::string::npos)
      << json;

  // A server that goes on after the dot is another ending: its replies are compared, and the
  // older record's 421 is not one of them.
  DriverHarness on(older_break_rules_rows("mx:587"), {}, storage::Outcome::upstream_closed);
  ReplayDriver& o = *on.driver;
  o.take_to_upstream();
  o.upstream_bytes("250 new\r\n");
  o.take_to_upstream();
  o.upstream_bytes("250 2.0.0 Ok\r\n502 5.5.2 Error: command not recognized\r\n250 Ok\r\n");
  r = o.report();
  EXPECT_FALSE(r.all_match());
  EXPECT_EQ(r.replies[3].replay_code, 502);
  for (const ReplyComparison& c : r.replies) {
    if (c.original_code == 421) {
      EXPECT_FALSE(c.replay_code) << format_replay_text({7, 9, "mx"}, r);
    }
  }
}

// The client sent a line once it had read the 221, which the older mailtap read before it saw
// the close (and answered with its 421): today's record ends at the 221, without that line.
TEST(RecordedDialogue, AnOlderRecordsCloseNoticeAfterA221IsReadAsTodaysRecord) {
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(older_break_rules_rows("mx:587", "QUIT\r\n"), d, error))
      << error;
  note_session_outcome(d, storage::Outcome::upstream_closed);
  EXPECT_FALSE(d.server_closed);
  ASSERT_EQ(d.replies.size(), 3u);
  EXPECT_EQ(d.replies.back().code, 221);
  ASSERT_TRUE(d.older_close_notice);
  EXPECT_EQ(d.older_close_notice->first_line(), "421 4.4.2 mailtap: mx:587 closed the connection");
  EXPECT_EQ(d.client.size(), 4u);  // EHLO, NOOP, ".", NOOP: not the QUIT
  EXPECT_FALSE(d.client_quit);
  ASSERT_EQ(d.flights.size(), 2u);
  EXPECT_EQ(d.flights.back().reply_count, 2u);

  // Today's record of a server that closed without a reply that ends the session keeps its 421.
  RecordedDialogue today;
  ASSERT_TRUE(build_recorded_dialogue(server_closed_rows("mx:587"), today, error)) << error;
  note_session_outcome(today, storage::Outcome::upstream_closed);
  EXPECT_TRUE(today.server_closed);
  EXPECT_FALSE(today.older_close_notice);
  EXPECT_EQ(today.replies.back().code, 421);
}

// A session whose message body (`body`, terminator included) is in the body file, as
// load_recorded_dialogue leaves it (BodyOctets::leave_past_inline), at `offset` there.
std::vector<storage::EventRow> stored_body_session(std::size_t body_octets, std::int64_t offset) {
  storage::EventRow body = ev(Direction::client_to_upstream, EventKind::data, "DATA", "");
  body.file_offset = offset;
  body.file_length = static_cast<std::int64_t>(body_octets);
  body.event.wire_size = body_octets;
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 PIPELINING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      client("DATA", "DATA\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      body,
      client("QUIT", "QUIT\r\n"),
      reply("DATA", 250, "250 2.0.0 Ok: queued\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  };
}

// A body of `octets` with its terminator: CRLF lines, some dot-stuffed.
std::string large_body(std::size_t octets) {
  std::string body = "Subject: large\r\n\r\n";
  for (int i = 0; body.size() < octets - 3; ++i)
    body += (i % 5 == 0 ? ".." : "") + std::to_string(i) + std::string(70, 'x') + "\r\n";
  body.resize(octets - 5);
  return body + "\r\n.\r\n";
}

// The replay reads a stored body a piece at a time from where the record has it, so no piece
// it holds (nor what it gives the dialogue at once) is larger than kFlightPieceOctets.
TEST(RecordedDialogue, ReadsAStoredBodyInPiecesFromTheBodyFile) {
  const std::string body = large_body(1000 * 1000);
  const std::string file = std::string(4096, '#') + body;  // the session's body file
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(build_recorded_dialogue(stored_body_session(body.size(), 4096), d, error)) << error;
  EXPECT_FALSE(d.partial_body);
  std::size_t reads = 0;
  d.read_stored = [&](const ClientStep& step, std::size_t at, std::size_t length, std::string& out,
                      std::string&) {
    EXPECT_LE(length, RecordedDialogue::kFlightPieceOctets);
    ++reads;
    out = file.substr(static_cast<std::size_t>(*step.file_offset) + at, length);
    return true;
  };
  const Flight& f = d.flights[2];  // the body and the QUIT pipelined after it
  ASSERT_EQ(f.steps.size(), 2u);
  EXPECT_EQ(d.client[f.steps[0]].summary(), "<1000000 octets of message body>");
  std::string sent;
  for (FlightCursor at; !at.done(f);) {
    smtp::Secret piece;
    ASSERT_TRUE(d.next_flight_piece(f, at, piece, error)) << error;
    EXPECT_LE(piece.size(), RecordedDialogue::kFlightPieceOctets);
    sent += piece.view();
  }
  EXPECT_EQ(reads, 4u);
  EXPECT_TRUE(sent == body + "QUIT\r\n");
}

struct StoredBodyHarness {
  std::string body = large_body(1000 * 1000);
  RecordedDialogue recording;
  std::vector<smtp::RecordedEvent> events;
  std::vector<smtp::Message> messages;
  std::unique_ptr<ReplayDriver> driver;
  std::size_t readable = std::string::npos;  // octets of the body the file still has

  StoredBodyHarness() {
    std::string error;
    EXPECT_TRUE(build_recorded_dialogue(stored_body_session(body.size(), 0), recording, error))
        << error;
    recording.read_stored = [this](const ClientStep& step, std::size_t at, std::size_t length,
                                   std::string& out, std::string& why) {
      const std::size_t offset = static_cast<std::size_t>(*step.file_offset) + at;
      if (offset + length > std::min(readable, body.size())) {
        why = "the body file is cut short";
        return false;
      }
      out = body.substr(offset, length);
      return true;
    };
    driver = std::make_unique<ReplayDriver>(recording, smtp::DialogueOptions{}, events, messages);
    smtp::ReplyParser p;
    p.feed("220 new ESMTP\r\n");
    driver->start(*p.next(), smtp::Phase::tls);
    driver->take_to_upstream();
    driver->upstream_bytes("250-new\r\n250 PIPELINING\r\n");
    driver->take_to_upstream();
  }
};

TEST(ReplayDriver, SendsALargeBodyAPieceAtATimeAsItsOwnerTakesThem) {
  StoredBodyHarness h;
  ReplayDriver& d = *h.driver;
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  std::string sent;
  std::size_t pieces = 0;
  for (;;) {
    const std::string piece = upstream_text(d.take_to_upstream());
    EXPECT_LE(piece.size(), RecordedDialogue::kFlightPieceOctets);
    sent += piece;
    ++pieces;
    if (!d.sending()) break;
    d.send_more();
  }
  EXPECT_EQ(pieces, 4u);
  EXPECT_TRUE(sent == h.body + "QUIT\r\n");
  d.upstream_bytes("250 2.0.0 queued\r\n221 bye\r\n");
  EXPECT_TRUE(d.finished());
  EXPECT_TRUE(d.report().all_match());
}

TEST(ReplayDriver, StopsWithoutEndingTheMessageWhenTheBodyFileFails) {
  StoredBodyHarness h;
  h.readable = 600 * 1024;  // prune removed it, say, after the replay loaded the session
  ReplayDriver& d = *h.driver;
  d.upstream_bytes("250 ok\r\n250 ok\r\n354 go\r\n");
  std::string sent = upstream_text(d.take_to_upstream());
  while (d.sending()) {
    d.send_more();
    sent += upstream_text(d.take_to_upstream());
  }
  EXPECT_EQ(sent.size(), 2 * RecordedDialogue::kFlightPieceOctets);  // the two pieces read
  EXPECT_TRUE(h.body.starts_with(sent));
  EXPECT_TRUE(d.finished());
  EXPECT_TRUE(d.dialogue().abandon_upstream());  // no end of data: nothing is delivered
  EXPECT_EQ(d.report().stopped,
            "cannot read the recorded client bytes: the body file is cut short; replay stopped");
}

}  // namespace
}  // namespace mailtap::tools
