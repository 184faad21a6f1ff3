// The sans-IO side of `mailtap mock`: answering a client from a recording, and noticing where
// the client leaves it.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "tests/unit/event_rows.hpp"
#include "tools/mock_session.hpp"
#include "tools/recorded_dialogue.hpp"

namespace mailtap::tools {
namespace {

using smtp::Direction;
using smtp::EventKind;
using namespace std::string_literals;

RecordedDialogue from_rows(const std::vector<storage::EventRow>& rows,
                           RefusedLines refused = RefusedLines::cannot_be_sent) {
  RecordedDialogue d;
  std::string error;
  EXPECT_TRUE(build_recorded_dialogue(rows, d, error, refused)) << error;
  return d;
}

RecordedDialogue recording() {
  return from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"),
      ev(Direction::client_to_upstream, EventKind::auth, "AUTH",
         "AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 6 bytes>]\r\n", 0, true),
      reply("AUTH", 235, "235 2.7.0 Authentication successful\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 End data with <CR><LF>.<CR><LF>\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: t\r\n\r\nhi\r\n.\r\n"),
      reply("DATA", 250, "250 2.0.0 Ok: queued as ABC\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  });
}

// A MockSession started on a recording it keeps (the session refers to it), its greeting taken.
class Served {
 public:
  explicit Served(RecordedDialogue r) : recording_(std::move(r)), session_(recording_) {
    session_.start();
    greeting_ = session_.take_to_client();
  }
  MockSession* operator->() { return &session_; }
  const std::string& greeting() const { return greeting_; }

 private:
  RecordedDialogue recording_;
  MockSession session_;
  std::string greeting_;
};

smtp::Event got(EventKind k, std::string verb, std::string bytes) {
  smtp::Event e;
  e.direction = Direction::client_to_upstream;
  e.kind = k;
  e.verb = std::move(verb);
  e.bytes = std::move(bytes);
  return e;
}

TEST(MockCompare, VerbsStrictlyAddressesIgnoringCaseParametersNot) {
  RecordedDialogue r = recording();
  const ClientStep& ehlo = r.client[0];
  const ClientStep& auth = r.client[1];
  const ClientStep& mail = r.client[2];
  const ClientStep& rcpt = r.client[3];
  EXPECT_FALSE(step_difference(ehlo, got(EventKind::command, "EHLO", "EHLO other.name\r\n")));
  EXPECT_TRUE(step_difference(ehlo, got(EventKind::command, "HELO", "HELO client.test\r\n")));
  EXPECT_FALSE(step_difference(
      mail, got(EventKind::command, "MAIL", "mail FROM:<A@Client.Test> SIZE=1234\r\n")));
  auto diff =
      step_difference(rcpt, got(EventKind::command, "RCPT", "RCPT TO:<x@example.test>\r\n"));
  ASSERT_TRUE(diff);
  EXPECT_NE(diff->find("RCPT TO:<x@example.test>"), std::string::npos) << *diff;
  EXPECT_NE(diff->find("RCPT TO:<alice@example.test>"), std::string::npos) << *diff;
  EXPECT_FALSE(step_difference(
      auth,
      got(EventKind::auth, "AUTH", "AUTH PLAIN [authzid=\"\" authcid=\"bob\" password=<x>]\r\n")));
  auto mech = step_difference(auth, got(EventKind::auth, "AUTH", "AUTH LOGIN\r\n"));
  ASSERT_TRUE(mech);
  EXPECT_NE(mech->find("AUTH LOGIN"), std::string::npos) << *mech;
  EXPECT_EQ(mail_path("MAIL FROM: <a@b> BODY=8BITMIME\r\n"), "<a@b>");
}

// As docs/tools/mock.md says: in an SMTPUTF8 path only ASCII letters' case is ignored.
TEST(MockCompare, OnlyAsciiLettersCaseIsIgnoredInAUtf8Path) {
  ClientStep mail;
  mail.kind = EventKind::command;
  mail.verb = "MAIL";
  mail.bytes = "MAIL FROM:<j\xc3\xb6rg@ex\xc3\xa4mple.test> SMTPUTF8\r\n";
  EXPECT_FALSE(step_difference(
      mail, got(EventKind::command, "MAIL", "mail FROM:<J\xc3\xb6RG@ex\xc3\xa4mple.TEST>\r\n")));
  EXPECT_TRUE(step_difference(
      mail, got(EventKind::command, "MAIL", "MAIL FROM:<J\xc3\x96RG@EX\xc3\x84MPLE.TEST>\r\n")));
}

TEST(MockSession, AnswersAPipeliningBareLfClientFromTheRecording) {
  Served s(recording());
  EXPECT_EQ(s.greeting(), "220 mx ESMTP\r\n");
  s->client_bytes("EHLO nc\n");
  // STARTTLS is removed from the EHLO reply, as mailtap's client saw it.
  EXPECT_EQ(s->take_to_client(), "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n");
  s->client_bytes("AUTH PLAIN AGFsaWNlAHg=\n");
  EXPECT_EQ(s->take_to_client(), "235 2.7.0 Authentication successful\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\nRCPT TO:<alice@example.test>\nDATA\n");
  EXPECT_EQ(s->take_to_client(),
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  s->client_bytes("Subject: other body\n\nbye\n.\nQUIT\n");
  EXPECT_EQ(s->take_to_client(), "250 2.0.0 Ok: queued as ABC\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed());
  EXPECT_FALSE(s->divergence());
  EXPECT_EQ(s->commands_matched(), 6u);
}

TEST(MockSession, ADifferentRecipientEndsTheSessionWithA421NamingIt) {
  Served s(recording());
  s->client_bytes("EHLO x\r\nAUTH PLAIN AGFsaWNlAHg=\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
  const std::string out = s->take_to_client();
  EXPECT_NE(out.find("250 2.1.0 Ok\r\n421 4.3.0 mailtap mock: command 4:"), std::string::npos)
      << out;
  EXPECT_TRUE(s->finished());
  EXPECT_FALSE(s->completed());
  ASSERT_TRUE(s->divergence());
  EXPECT_NE(s->divergence()->find("RCPT TO:<bob@example.test>"), std::string::npos);
}

TEST(MockSession, TheClientsEscapeSequencesReachNeitherTerminalNorReply) {
  // mock prints the divergence on the operator's terminal: a client's OSC title and
  // clear-screen sequences, and its non-UTF-8 bytes, are shown escaped as show prints them.
  Served s(recording());
  s->client_bytes("EHLO x\r\nAUTH PLAIN AGFsaWNlAHg=\r\n");
  s->client_bytes("MAIL FROM:<a\x1b]0;TITLE\x07\x1b[2J\xff@x>\r\n");
  ASSERT_TRUE(s->divergence());
  const std::string& what = *s->divergence();
  EXPECT_NE(what.find("`MAIL FROM:<a\\x1b]0;TITLE\\x07\\x1b[2J\\xff@x>`"), std::string::npos)
      << what;
  for (char c : what) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << what;
  const std::string out = s->take_to_client();
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
}

TEST(MockSession, AMissingDataIsADivergence) {
  Served s(recording());
  s->client_bytes("EHLO x\r\nAUTH PLAIN AGFsaWNlAHg=\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\nQUIT\r\n");
  ASSERT_TRUE(s->divergence());
  EXPECT_NE(s->divergence()->find("`QUIT` where the recording has `DATA`"), std::string::npos)
      << *s->divergence();
}

TEST(MockSession, AClientThatHangsUpEarlyDiverged) {
  Served s(recording());
  s->client_bytes("EHLO x\r\n");
  s->client_closed();
  EXPECT_TRUE(s->finished());
  ASSERT_TRUE(s->divergence());
  EXPECT_NE(s->divergence()->find("after 1 commands"), std::string::npos) << *s->divergence();
}

// A list's message whose recipients are mostly gone, to a site whose refusals carry its footer
// (Postfix smtpd_reject_footer): each RCPT of 34 octets got a 550 of about 250, so the replies
// owed before DATA are well past what the dialogue holds for the client at once
// (DialogueOptions::max_client_output).
constexpr int kGoneRecipients = 600;

std::string gone_recipient(int i) {
  return "gone" + std::to_string(1000 + i) + "@example.test";
}

std::string gone_reply(int i) {
  return "550-5.1.1 <" + gone_recipient(i) +
         ">: Recipient address rejected: User unknown in virtual mailbox table\r\n550 5.1.1 "
         "For assistance, call 800-555-0101. Please provide the following information in "
         "your problem report: time (Jan 1 00:00:00), client (127.0.0.1) and server (mx)\r\n";
}

RecordedDialogue mostly_gone_recipients() {
  std::vector<storage::EventRow> rows = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 PIPELINING\r\n"),
      client("MAIL", "MAIL FROM:<list@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
  };
  for (int i = 0; i < kGoneRecipients; ++i) {
    rows.push_back(client("RCPT", "RCPT TO:<" + gone_recipient(i) + ">\r\n"));
    rows.push_back(reply("RCPT", 550, gone_reply(i)));
  }
  std::vector<storage::EventRow> rest = {
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: t\r\n\r\nhi\r\n.\r\n"),
      reply("DATA", 250, "250 2.0.0 Ok: queued as A\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  };
  std::move(rest.begin(), rest.end(), std::back_inserter(rows));
  return from_rows(rows);
}

// MAIL, every RCPT and DATA: one group of RFC 2920, DATA its last command.
std::string mail_group() {
  std::string group = "MAIL FROM:<list@client.test>\r\n";
  for (int i = 0; i < kGoneRecipients; ++i) group += "RCPT TO:<" + gone_recipient(i) + ">\r\n";
  return group + "RCPT TO:<alice@example.test>\r\nDATA\r\n";
}

std::string mail_group_replies() {
  std::string replies = "250 2.1.0 Ok\r\n";
  for (int i = 0; i < kGoneRecipients; ++i) replies += gone_reply(i);
  return replies + "250 2.1.5 Ok\r\n354 go\r\n";
}

const std::string kMessageAndQuit = "Subject: other\r\n\r\nbye\r\n.\r\nQUIT\r\n";

// What the mock writes before it waits for the client again (mailtap mock's converse()).
std::string written(Served& s) {
  std::string out = s->take_to_client();
  while (s->client_input_resumable()) {
    s->resume_client_input();
    out += s->take_to_client();
  }
  return out;
}

// The replies a client reads are `expected`; on a difference, where (they are long).
testing::AssertionResult same_replies(const std::string& got, const std::string& expected) {
  if (got == expected) return testing::AssertionSuccess();
  const auto e = std::mismatch(got.begin(), got.end(), expected.begin(), expected.end()).second;
  const auto at = static_cast<std::size_t>(e - expected.begin());
  return testing::AssertionFailure()
         << "the client read " << got.size() << " octets of " << expected.size()
         << ", the first difference at octet " << at << ": expected `" << expected.substr(at, 60)
         << "`, got `" << got.substr(at, 60) << "`";
}

// A client that sends its whole dialogue in one write, its message right after DATA (not
// waiting for the 354, as RFC 2920 would have it), then reads: the replies owed before DATA
// fill the client's output, so the message and QUIT wait unread behind the 354. They are
// answered once those replies are written, not when the client writes again, which it never
// does. (They waited for its next write, so the client got no 250 and no 221.)
TEST(MockSession, LinesPipelinedPastDataBehindLongRepliesAreAnswered) {
  const std::string all = "250-mx\r\n250 PIPELINING\r\n" + mail_group_replies() +
                          "250 2.0.0 Ok: queued as A\r\n221 2.0.0 Bye\r\n";
  ASSERT_GT(all.size(), std::size_t{2} * smtp::DialogueOptions{}.max_client_output);
  Served s(mostly_gone_recipients());
  s->client_bytes("EHLO x\r\n" + mail_group() + kMessageAndQuit);
  EXPECT_TRUE(same_replies(written(s), all));
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// A client grouping its commands as RFC 2920 asks sends nothing past DATA before the 354: every
// line of its group is read before any reply is given, and each group gets all its replies.
TEST(MockSession, AGroupWhoseRepliesOutgrowTheClientsOutputGetsThemAll) {
  Served s(mostly_gone_recipients());
  s->client_bytes("EHLO x\r\n");
  EXPECT_EQ(written(s), "250-mx\r\n250 PIPELINING\r\n");
  s->client_bytes(mail_group());
  EXPECT_TRUE(same_replies(written(s), mail_group_replies()));
  s->client_bytes(kMessageAndQuit);
  EXPECT_EQ(written(s), "250 2.0.0 Ok: queued as A\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// The original client hung up mid-DATA: the recording ends with half a body and no reply.
RecordedDialogue hung_up_mid_data() {
  return from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: half\r\n"),
  });
}

TEST(MockSession, AClientThatEndsAMessageTheOriginalAbandonedDiverged) {
  Served s(hung_up_mid_data());
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->client_bytes("DATA\r\n");
  s->client_bytes("Subject: whole\r\n\r\nbody\r\n.\r\n");
  const std::string out = s->take_to_client();
  EXPECT_EQ(out.find("221 "), std::string::npos) << out;  // no goodbye as a reply to the body
  EXPECT_NE(out.find("421 4.3.0 mailtap mock: the client ended its message"), std::string::npos)
      << out;
  EXPECT_TRUE(s->finished());
  EXPECT_FALSE(s->completed());
  ASSERT_TRUE(s->divergence());

  Served faithful(hung_up_mid_data());  // a client that hangs up mid-body as the original did
  faithful->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  faithful->client_bytes("DATA\r\nSubject: half\r\n");
  faithful->client_closed();
  EXPECT_TRUE(faithful->completed()) << faithful->divergence().value_or("");
}

// recreader 5: a session cut mid-DATA (the proxy recording it was killed) served with
// --unfinished: its record has no end, so the 421 says where the recording stops, not that the
// original client closed, which the record does not know (an ended session's, above, does).
TEST(MockSession, AMessageEndedWhereACutRecordingStopsSaysTheRecordingStopped) {
  for (const char* state : {"cut", "in_progress", ""}) {
    RecordedDialogue r = hung_up_mid_data();
    r.unfinished = state;
    Served s(std::move(r));
    s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
    s->client_bytes("DATA\r\n");
    s->client_bytes("Subject: whole\r\n\r\nbody\r\n.\r\n");
    const std::string out = s->take_to_client();
    const bool closed = out.find("the original client closed") != std::string::npos;
    EXPECT_EQ(closed, std::string(state).empty()) << state << ": " << out;
    if (std::string(state) == "cut") {
      EXPECT_NE(out.find("the recording stops there: the proxy recording it stopped without "
                         "ending the session (cut)"),
                std::string::npos)
          << out;
    }
    if (std::string(state) == "in_progress") {
      EXPECT_NE(out.find("still being recorded (in_progress)"), std::string::npos) << out;
    }
  }
}

// The server refused the message inside its body, and mailtap noted the body octets it had
// queued and dropped: that note is no line of the client's, so the same client is served.
TEST(MockSession, ABodyRefusedMidwayIsServedWithoutTheNoteOfOctetsNeverSent) {
  Served s(from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: big\r\n"),
      ev(Direction::upstream_to_client, EventKind::reply, "",
         "552 5.3.4 Message size exceeds fixed limit\r\n", 552),
      unsent_note(EventKind::data, 14),
  }));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->client_bytes("DATA\r\nSubject: big\r\n");
  const std::string out = s->take_to_client();
  EXPECT_NE(out.find("552 5.3.4 Message size exceeds fixed limit\r\n"), std::string::npos) << out;
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

TEST(MockSession, AnUnexpectedStarttlsGetsOneReplyTheDifference) {
  Served s(recording());
  s->client_bytes("EHLO x\r\n");
  s->take_to_client();
  s->client_bytes("STARTTLS\r\n");  // the recording has AUTH PLAIN
  const std::string out = s->take_to_client();
  EXPECT_EQ(out.find("502 "), std::string::npos) << out;  // not mailtap's refusal as well
  EXPECT_EQ(out.rfind("421 4.3.0 mailtap mock: command 2: the client sent `STARTTLS`", 0), 0u)
      << out;
  EXPECT_TRUE(s->finished());
}

TEST(MockSession, OnlyMailtapsOwnAnswerIsTakenBackAtADifference) {
  // The original client pipelined MAIL and RCPT and the server never answered them: when this
  // client's STARTTLS differs, mailtap's own answer to it waits behind the MAIL reply the
  // recording does not have. Nothing of the recorded EHLO reply may go in its place.
  Served s(from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
  }));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nSTARTTLS\r\n");
  const std::string out = s->take_to_client();
  EXPECT_EQ(out.rfind("250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n421 4.3.0 mailtap mock: "
                      "command 3: ",
                      0),
            0u)
      << out;
  EXPECT_EQ(out.find("502 "), std::string::npos) << out;
  EXPECT_TRUE(s->finished());
}

// An implicit-TLS client (swaks --tlsc, "SSL/TLS" on port 465) pointed at the mock, which
// speaks plain text: the mock's own advice, in the one reply the client gets.
TEST(MockSession, ATlsHandshakeGetsA421AndEndsTheSession) {
  const std::string client_hello =
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
      "EHLO x\r\n"
      "\x00\x0a\xff\xfb\x01"s;
  Served s(recording());
  s->client_bytes(client_hello);
  EXPECT_EQ(s->take_to_client(),
            "421 4.5.0 mailtap: this port speaks plain SMTP, not TLS: connect without TLS (mailtap "
            "mock answers in plain text only); closing\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_FALSE(s->completed());
  ASSERT_TRUE(s->divergence());
  EXPECT_EQ(*s->divergence(),
            "command 1: client started a TLS handshake on a plain-text port: connect without TLS "
            "(mailtap mock answers in plain text only); the recording has `EHLO client.test`");
  EXPECT_EQ(s->divergence()->find("--local-tls"), std::string::npos);
  s->client_bytes("EHLO x\r\n");  // whatever comes after is not read
  EXPECT_EQ(s->take_to_client(), "");
}

TEST(MockSession, AClientThatGoesQuietIsNotSaidToHaveClosed) {
  Served s(recording());
  s->client_bytes("EHLO x\r\n");
  EXPECT_EQ(s->take_to_client(), "250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n");
  s->client_timed_out("5.0s");
  EXPECT_TRUE(s->finished());
  ASSERT_TRUE(s->divergence());
  EXPECT_EQ(*s->divergence(),
            "the client sent nothing for 5.0s (--timeout) after 1 commands, and the mock closed "
            "the connection with a 421; the recording continues with `AUTH PLAIN`");
  // Told as the proxy tells an idle client, not left to find the connection closed.
  EXPECT_EQ(s->take_to_client(),
            "421 4.4.2 mailtap: idle for 5.0s waiting for the client; give a slow client a longer "
            "mailtap mock --timeout; closing\r\n");
}

TEST(MockSession, AClientThatDoesNotReadIsDroppedWithoutAWord) {
  Served s(recording());
  s->client_bytes("EHLO x\r\nAUTH PLAIN AGFsaWNlAHg=\r\n");
  s->take_to_client();  // written in part: the client stopped reading
  s->client_not_reading("5.0s");
  EXPECT_TRUE(s->finished());
  EXPECT_FALSE(s->completed());
  ASSERT_TRUE(s->divergence());
  EXPECT_EQ(*s->divergence(),
            "the client did not read what the mock sent within 5.0s (--timeout), and the mock "
            "dropped the connection after 2 commands; the recording continues with `MAIL "
            "FROM:<a@client.test>`");
  EXPECT_EQ(s->take_to_client(), "");  // nothing more would be read
}

TEST(MockSession, AllCommandsSentButTheRepliesNotReadIsNoCompletedDialogue) {
  Served s(recording());
  s->client_bytes(
      "EHLO x\r\nAUTH PLAIN AGFsaWNlAHg=\r\nMAIL FROM:<a@client.test>\r\nRCPT "
      "TO:<alice@example.test>\r\nDATA\r\nSubject: t\r\n\r\nhi\r\n.\r\nQUIT\r\n");
  EXPECT_TRUE(s->completed());
  s->take_to_client();
  s->client_not_reading("5.0s");
  EXPECT_FALSE(s->completed());
  ASSERT_TRUE(s->divergence());
  EXPECT_EQ(*s->divergence(),
            "the client sent the 6 commands of the recorded dialogue but did not read what the "
            "mock sent within 5.0s (--timeout), and the mock dropped the connection");
}

TEST(MockSession, AClientTricklingALineIsSaidToBeSlowNotSilent) {
  Served s(recording());
  const std::uint64_t before = s->client_progress();
  s->client_bytes("EHLO x\r\nAU");
  EXPECT_EQ(s->client_progress(), before + 1);  // the part of AUTH completes nothing
  s->client_timed_out("5.0s", /*line_begun=*/true);
  ASSERT_TRUE(s->divergence());
  EXPECT_EQ(*s->divergence(),
            "the client's command line was not complete within 5.0s (--timeout restarts with "
            "complete lines, not bytes: give more if the client is only slow) after 1 commands, "
            "and the mock closed the connection with a 421; the recording continues with `AUTH "
            "PLAIN`");
  EXPECT_TRUE(s->take_to_client().ends_with(
      "421 4.4.2 mailtap: the client's command line was not complete within 5.0s; give a slow "
      "client a longer mailtap mock --timeout; closing\r\n"));
}

TEST(MockSession, PartOfALineIsToldFromNothingWhateverTheReadCompleted) {
  // One read that completes a line and begins the next (review: the mock asked whether the
  // read moved the progress, and so said "sent nothing" of the part of AUTH).
  Served s(recording());
  EXPECT_FALSE(s->client_line_begun());
  s->client_bytes("EHLO x\r\nAU");
  EXPECT_TRUE(s->client_line_begun());
  s->client_bytes("TH PLAIN AGFsaWNlAHg=\r\n");
  EXPECT_FALSE(s->client_line_begun());
  s->client_bytes("MAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  EXPECT_FALSE(s->client_line_begun());
  s->client_bytes("Subject: x\r\n\r\nhal");  // part of a body line
  EXPECT_TRUE(s->client_line_begun());
  s->client_bytes("f\r\n");
  EXPECT_FALSE(s->client_line_begun());
  EXPECT_FALSE(s->divergence());
}

TEST(MockSession, AHangUpInsideTheBodyNamesTheRestOfTheBodyAsWhatComesNext) {
  Served s(recording());
  s->client_bytes("EHLO x\r\nAUTH PLAIN AGFsaWNlAHg=\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  s->client_bytes("Subject: half a message\r\n");
  s->client_closed();
  ASSERT_TRUE(s->divergence());
  EXPECT_EQ(*s->divergence(),
            "the client closed the connection inside the message body (before its end of data) "
            "after 5 commands; the recording continues with the rest of the message body and its "
            "end of data, then `QUIT`");
}

// mailtap refused an over-long line itself and did not record it: the mock's Dialogue refuses
// the same line with the same reply, so the session can be served (replay cannot send it).
TEST(MockSession, ALineMailtapRefusedIsRefusedAgain) {
  const std::vector<storage::EventRow> rows{
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      ev(Direction::client_to_mailtap, EventKind::error, "NOOP", ""),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "",
         "500 5.5.2 mailtap: line too long (limit 2048 octets); not forwarded\r\n", 500),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  };
  RecordedDialogue cannot;
  std::string error;
  EXPECT_FALSE(build_recorded_dialogue(rows, cannot, error));  // replay's reading
  Served s(from_rows(rows, RefusedLines::answered_again));
  s->client_bytes("EHLO x\r\nNOOP " + std::string(3000, 'x') + "\r\n");
  EXPECT_EQ(s->take_to_client(),
            "250 mx\r\n500 5.5.2 mailtap: line too long (limit 2048 octets); not forwarded\r\n");
  s->client_bytes("QUIT\r\n");
  EXPECT_EQ(s->take_to_client(), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// mailtap refused a body line "." NUL (dialogue.md, DATA) and ended the session with its 421,
// the message abandoned: the mock makes that 421 where the original client got it, after as
// many octets of the body, and the client has played the whole recording.
TEST(MockSession, ARefusedDotNulBodyLineGetsMailtaps421WhereTheOriginalDid) {
  const std::string refusal =
      "421 4.6.0 mailtap: message refused: a body line begins with \".\" and a NUL byte, which "
      "ends the message for servers that read lines as C strings while others read on (SMTP "
      "smuggling); nothing of that line or after it was sent and the message was not ended, so "
      "the server discards it; closing. Remove the NUL (or encode the body, e.g. base64) and "
      "send the message again\r\n";
  storage::EventRow refused =
      ev(Direction::client_to_mailtap, EventKind::error, "DATA", std::string(".\0", 2));
  refused.event.note =
      "body line \".\" followed by a NUL at offset 18 of the message refused: servers that read "
      "lines as C strings take it as the end of data";
  const std::vector<storage::EventRow> rows{
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: t\r\n\r\nline1\r\n"),
      refused,
      ev(Direction::mailtap_to_client, EventKind::local_reply, "", refusal, 421),
  };
  Served s(from_rows(rows, RefusedLines::answered_again));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->client_bytes("DATA\r\n");
  EXPECT_EQ(s->take_to_client(), "250 mx\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
  s->client_bytes("Subject: t\r\n\r\nline1\r\n.");
  EXPECT_EQ(s->take_to_client(), "");
  s->client_bytes(std::string("\0evil\r\nline3\r\n.\r\n", 17));
  EXPECT_EQ(s->take_to_client(), refusal);
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// A server reply inside a DATA body that could answer nothing (OpenSMTPD's 250 to a line "."
// NUL, before mailtap refused that line): the proxy did not relay it and closed with its 421.
// The mock gives it to its reading of the client once as much of the body has come, which
// refuses it the same way: the client gets the mock's 421 there, not a wait and a false "the
// original client closed".
TEST(MockSession, AnOutOfStepReplyInsideABodyIsRefusedWhereTheOriginalWas) {
  storage::EventRow refused = ev(Direction::upstream_to_mailtap, EventKind::reply, "",
                                 "250 2.0.0 e275c537 Message accepted for delivery\r\n", 250);
  const std::vector<storage::EventRow> rows{
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: t\r\n\r\nline1\r\n"),
      refused,
      ev(Direction::mailtap_to_client, EventKind::local_reply, "",
         "421 4.5.0 mailtap: 127.0.0.1:22525 replied 250 while the message body was still being "
         "sent, ...; closing\r\n",
         421),
  };
  Served s(from_rows(rows, RefusedLines::answered_again));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->client_bytes("DATA\r\n");
  s->take_to_client();
  s->client_bytes("Subject: t\r\n\r\nline");
  EXPECT_EQ(s->take_to_client(), "");
  s->client_bytes("1\r\n");  // as much of the body as the original had sent
  const std::string got = s->take_to_client();
  EXPECT_EQ(got.rfind("421 4.5.0 mailtap: the recorded server replied 250 while the message body "
                      "was still being sent",
                      0),
            0u)
      << got;
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
  s->client_bytes("line2\r\n.\r\n");  // read by no one: the session has ended
  EXPECT_EQ(s->take_to_client(), "");
}

// The same for a BDAT line mailtap refused: its 421, and nothing of the chunk read.
TEST(MockSession, ARefusedBdatLineGetsMailtaps421AsTheOriginalDid) {
  const std::string refusal =
      "421 4.5.4 mailtap: BDAT refused (syntax is BDAT SP <size> [SP LAST]), so where its "
      "chunk ends is unknown: nothing after it is read; closing. Send BDAT <size> [LAST] "
      "with one space between words and none before BDAT, the size in decimal digits\r\n";
  const std::vector<storage::EventRow> rows{
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 CHUNKING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      ev(Direction::client_to_mailtap, EventKind::command, "BDAT", "BDAT\t5 LAST\r\n"),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "", refusal, 421),
  };
  Served s(from_rows(rows, RefusedLines::answered_again));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(s->take_to_client(), "250-mx\r\n250 CHUNKING\r\n250 2.1.0 Ok\r\n");
  s->client_bytes("BDAT\t5 LAST\r\nQUIT\r\n");
  EXPECT_EQ(s->take_to_client(), refusal);
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// Postfix's "421 too many errors" after the 20th refused RCPT, with no command awaiting it.
TEST(MockSession, AnUnsolicited421IsServedWhereTheOriginalClientGotIt) {
  RecordedDialogue r = from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<nobody@example.test>\r\n"),
      reply("RCPT", 550, "550 5.1.1 User unknown\r\n"),
      ev(Direction::upstream_to_client, EventKind::reply, "",
         "421 4.7.0 mx Error: too many errors\r\n", 421),
  });
  Served s(std::move(r));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\n");
  s->take_to_client();
  s->client_bytes("RCPT TO:<nobody@example.test>\r\n");
  EXPECT_EQ(s->take_to_client(),
            "550 5.1.1 User unknown\r\n421 4.7.0 mx Error: too many errors\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

RecordedDialogue server_closed() {
  RecordedDialogue r = from_rows(server_closed_rows("127.0.0.1:5870"));
  note_session_outcome(r, storage::Outcome::upstream_closed);
  return r;
}

// The mock ends the connection as the proxy did: mailtap's 421 as recorded, then nothing more
// of the client is read (here its QUIT, which the original client sent after the close).
TEST(MockSession, AServerCloseIsServedAsMailtaps421AndEndsTheSession) {
  Served s(server_closed());
  s->client_bytes("EHLO client.test\r\n");
  EXPECT_EQ(s->take_to_client(), "250 mx\r\n");
  s->client_bytes("NOOP\r\n.\r\nNOOP\r\nQUIT\r\n");
  EXPECT_EQ(s->take_to_client(),
            "250 2.0.0 Ok\r\n421 4.4.2 mailtap: 127.0.0.1:5870 closed the connection\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");

  // A client that waits for each reply gets the 421 once it has sent what the original had.
  Served w(server_closed());
  w->client_bytes("EHLO client.test\r\nNOOP\r\n");
  EXPECT_EQ(w->take_to_client(), "250 mx\r\n250 2.0.0 Ok\r\n");
  EXPECT_FALSE(w->finished());
  w->client_bytes(".\r\nNOOP\r\n");
  EXPECT_EQ(w->take_to_client(), "421 4.4.2 mailtap: 127.0.0.1:5870 closed the connection\r\n");
  EXPECT_TRUE(w->completed()) << w->divergence().value_or("");
}

// A record an older mailtap made of Postfix's 221 to a lone "." ends with mailtap's 421 after
// that 221, which today's mailtap does not send: the mock serves it as today's record, the 221
// ending the session, however the client sends its lines.
TEST(MockSession, AnOlderRecordsCloseNoticeAfterA221IsNotServed) {
  auto older = [](const std::string& after_close = "") {
    RecordedDialogue r = from_rows(older_break_rules_rows("127.0.0.1:5870", after_close));
    note_session_outcome(r, storage::Outcome::upstream_closed);
    return r;
  };
  Served s(older());
  s->client_bytes("EHLO client.test\r\n");
  EXPECT_EQ(s->take_to_client(), "250 mx\r\n");
  s->client_bytes("NOOP\r\n.\r\nNOOP\r\nQUIT\r\n");
  EXPECT_EQ(s->take_to_client(),
            "250 2.0.0 Ok\r\n221 2.7.0 Error: I can break rules, too. Goodbye.\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");

  Served w(older("QUIT\r\n"));
  w->client_bytes("EHLO client.test\r\nNOOP\r\n");
  EXPECT_EQ(w->take_to_client(), "250 mx\r\n250 2.0.0 Ok\r\n");
  EXPECT_FALSE(w->finished());
  w->client_bytes(".\r\nNOOP\r\n");  // the QUIT it sent after the 221 in the original is not due
  EXPECT_EQ(w->take_to_client(), "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n");
  EXPECT_TRUE(w->finished());
  EXPECT_TRUE(w->completed()) << w->divergence().value_or("");
}

// The client pipelined 1500 NOOPs; mailtap relayed 1000 (its limit of replies owed) and read
// nothing more once Postfix's 421 "too many errors" ended the session after the 100th reply.
// The mock answers sooner than that server, so it reads further, but what the client sent past
// the recorded end is not judged: it gets what the proxy's client got and has completed.
TEST(MockSession, CommandsPipelinedPastAServers421AreNotJudged) {
  std::vector<storage::EventRow> rows = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
  };
  for (int i = 0; i < 1000; ++i) rows.push_back(client("NOOP", "NOOP\r\n"));
  std::string want = "250 mx\r\n";
  for (int i = 0; i < 100; ++i) {
    rows.push_back(reply("NOOP", 250, "250 2.0.0 Ok\r\n"));
    want += "250 2.0.0 Ok\r\n";
  }
  rows.push_back(reply("NOOP", 421, "421 4.7.0 mx Error: too many errors\r\n"));
  want += "421 4.7.0 mx Error: too many errors\r\n";
  Served s(from_rows(rows));
  std::string sent = "EHLO client.test\r\n";
  for (int i = 0; i < 1500; ++i) sent += "NOOP\r\n";
  s->client_bytes(sent + "QUIT\r\n");
  std::string got;
  while (!s->finished()) {  // as mock.cpp writes, then lets the dialogue read on
    got += s->take_to_client();
    if (!s->client_input_resumable()) break;
    s->resume_client_input();
  }
  got += s->take_to_client();
  EXPECT_EQ(got, want);
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// The server timed out inside a message body: DATA, 354, part of the body, then a 421 no
// command awaited (recorded with the body pieces before it).
RecordedDialogue timed_out_in_body(const std::string& body) {
  return from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", body),
      ev(Direction::upstream_to_client, EventKind::reply, "", "421 4.4.2 mx timeout\r\n", 421),
  });
}

TEST(MockSession, AnUnsolicitedReplyInsideABodyWaitsForThatMuchBody) {
  Served s(timed_out_in_body("Subject: slow\r\n"));  // 15 octets of body
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->take_to_client();
  s->client_bytes("DATA\r\n");
  EXPECT_EQ(s->take_to_client(), "354 go\r\n");  // not the 421 before any body
  EXPECT_FALSE(s->finished());
  EXPECT_FALSE(s->completed());
  s->client_bytes("Subject: ");  // 9 of the 15 octets
  EXPECT_EQ(s->take_to_client(), "");
  EXPECT_FALSE(s->finished());
  s->client_bytes("other\r\n");
  EXPECT_EQ(s->take_to_client(), "421 4.4.2 mx timeout\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// The 421 came after the whole body, end of data included, with no reply to the end of data:
// the client gets it once it has sent its end of data, not with the 354.
TEST(MockSession, AnUnsolicitedReplyAfterAWholeBodyWaitsForItsEnd) {
  Served s(timed_out_in_body("Subject: t\r\n\r\nhi\r\n.\r\n"));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->take_to_client();
  s->client_bytes("DATA\r\nSubject: t\r\n\r\nhi\r\n");
  EXPECT_EQ(s->take_to_client(), "354 go\r\n");
  EXPECT_FALSE(s->finished());
  s->client_bytes(".\r\n");
  EXPECT_EQ(s->take_to_client(), "421 4.4.2 mx timeout\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");

  Served shorter(timed_out_in_body("Subject: t\r\n\r\nhi\r\n.\r\n"));  // a shorter body
  shorter->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  shorter->take_to_client();
  shorter->client_bytes("DATA\r\n");
  EXPECT_EQ(shorter->take_to_client(), "354 go\r\n");
  shorter->client_bytes("hi\r\n.\r\n");
  EXPECT_EQ(shorter->take_to_client(), "421 4.4.2 mx timeout\r\n");
  EXPECT_TRUE(shorter->completed()) << shorter->divergence().value_or("");
}

// One client write holding the end of a body, the next transaction up to its DATA and the
// start of the next body (RFC 2920 pipelining): the first body's last octets are no part of
// the second's count, so the 421 inside the second body waits for that much of it.
TEST(MockSession, APipelinedNextBodyIsCountedFromItsOwnStart) {
  Served s(from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 PIPELINING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA",
         "Subject: 1\r\n\r\none two three four\r\n.\r\n"),
      reply("DATA", 250, "250 2.0.0 Ok: queued as A\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: 2\r\n"),  // 12 octets
      ev(Direction::upstream_to_client, EventKind::reply, "", "421 4.4.2 mx timeout\r\n", 421),
  }));
  s->client_bytes(
      "EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n");
  EXPECT_EQ(s->take_to_client(),
            "250-mx\r\n250 PIPELINING\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
  s->client_bytes("Subject: 1\r\n\r\n");
  // 23 octets of the first body, then 5 of the second: not yet the 12 the 421 came after.
  s->client_bytes(
      "one two three four\r\n.\r\nMAIL FROM:<a@client.test>\r\nRCPT "
      "TO:<alice@example.test>\r\nDATA\r\nSub: \r\n");
  EXPECT_EQ(s->take_to_client(),
            "250 2.0.0 Ok: queued as A\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n");
  EXPECT_FALSE(s->finished());
  s->client_bytes("Date: x\r\n");  // 14 octets of the second body
  EXPECT_EQ(s->take_to_client(), "421 4.4.2 mx timeout\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// A BDAT transaction: the chunk, then the server's reply to it.
RecordedDialogue bdat_recording() {
  return from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("BDAT", "BDAT 18 LAST\r\n"),
      ev(Direction::client_to_upstream, EventKind::bdat_chunk, "BDAT", "Subject: t\r\n\r\nhi\r\n"),
      reply("BDAT", 250, "250 2.0.0 Ok: queued as B\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  });
}

// A chunk that comes in several writes (any chunk longer than a read) gets its reply once it
// is all there: a reply before the end of the chunk is one the mock's dialogue refuses.
TEST(MockSession, ABdatChunkInSeveralWritesIsAnsweredAtItsEnd) {
  Served s(bdat_recording());
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->take_to_client();
  s->client_bytes("BDAT 18 LAST\r\nSubject: t\r\n");
  EXPECT_EQ(s->take_to_client(), "");
  EXPECT_FALSE(s->finished()) << s->divergence().value_or("");
  s->client_bytes("\r\nhi\r\n");
  EXPECT_EQ(s->take_to_client(), "250 2.0.0 Ok: queued as B\r\n");
  s->client_bytes("QUIT\r\n");
  EXPECT_EQ(s->take_to_client(), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// The server answered in the middle of a BDAT chunk (`code`: a 421 timeout, a 552 too big)
// after its first 10 octets: the proxy refused that reply (it never reached the client) and
// closed with its own 421.
RecordedDialogue bdat_answered_mid_chunk(int code, const std::string& text) {
  return from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("BDAT", "BDAT 18 LAST\r\n"),
      ev(Direction::client_to_upstream, EventKind::bdat_chunk, "BDAT", "Subject: "),
      ev(Direction::upstream_to_mailtap, EventKind::reply, "BDAT", text, code),
      unsent_note(EventKind::bdat_chunk, 9, 1),
      ev(Direction::mailtap_to_client, EventKind::local_reply, "",
         "421 4.5.0 mailtap: upstream answered BDAT before its chunk was sent, so it could read "
         "the rest of the chunk as commands; closing. Use DATA with this server\r\n",
         421),
  });
}

TEST(MockSession, AReplyInsideABdatChunkComesAfterThatMuchOfTheChunk) {
  for (const auto& [code, text] : std::vector<std::pair<int, std::string>>{
           {421, "421 4.4.2 mx timeout\r\n"}, {552, "552 5.3.4 too big\r\n"}}) {
    SCOPED_TRACE(text);
    Served s(bdat_answered_mid_chunk(code, text));
    s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
    s->take_to_client();
    s->client_bytes("BDAT 18 LAST\r\nSubject");  // 7 of the 9 octets
    EXPECT_EQ(s->take_to_client(), "");
    EXPECT_FALSE(s->finished()) << s->divergence().value_or("");
    s->client_bytes(": t\r\n");
    // Refused as the proxy refused it, with the mock's own 421 made again.
    EXPECT_EQ(s->take_to_client(),
              "421 4.5.0 mailtap: the recorded server answered BDAT before its chunk was sent, "
              "so it could read the rest of the chunk as commands; closing. Use DATA with this "
              "server\r\n");
    EXPECT_TRUE(s->finished());
    EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
  }
}

// A client that sends the whole chunk in one write gets the server's reply as the reply to its
// BDAT, as from a server that read the chunk before answering.
TEST(MockSession, AReplyInsideABdatChunkAnswersAChunkSentAtOnce) {
  Served s(bdat_answered_mid_chunk(421, "421 4.4.2 mx timeout\r\n"));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->take_to_client();
  s->client_bytes("BDAT 18 LAST\r\nSubject: t\r\n\r\nhi\r\n");
  EXPECT_EQ(s->take_to_client(), "421 4.4.2 mx timeout\r\n");
  EXPECT_TRUE(s->finished());
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");

  Served big(bdat_answered_mid_chunk(552, "552 5.3.4 too big\r\n"));
  big->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  big->take_to_client();
  big->client_bytes("BDAT 18 LAST\r\nSubject: t\r\n\r\nhi\r\n");
  EXPECT_EQ(big->take_to_client(), "552 5.3.4 too big\r\n");
  big->client_bytes("QUIT\r\n");
  EXPECT_EQ(big->take_to_client(), "221 2.0.0 mailtap mock: end of the recorded dialogue\r\n");
  EXPECT_TRUE(big->completed()) << big->divergence().value_or("");
}

// --max-body 10: the body's first 10 octets recorded, the other 20 (terminator included)
// counted in the event that closes it; then, as `after`, what the server sent.
std::vector<storage::EventRow> cut_body_rows(storage::EventRow after) {
  storage::EventRow cut = ev(Direction::client_to_upstream, EventKind::data, "DATA", "");
  cut.event.wire_size = 20;
  cut.event.note = "20 more octets relayed but not recorded: --max-body 10 octets";
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("RCPT", "RCPT TO:<alice@example.test>\r\n"),
      reply("RCPT", 250, "250 2.1.5 Ok\r\n"),
      client("DATA", "DATA\r\n"),
      reply("DATA", 354, "354 go\r\n"),
      ev(Direction::client_to_upstream, EventKind::data, "DATA", "Subject: a"),
      cut,
      std::move(after),
  };
}

TEST(MockSession, ABodyRecordedInPartIsServedByItsSize) {
  RecordedDialogue d;
  std::string error;
  // Replay cannot send the body again; the mock, which only counts it, can serve the session.
  EXPECT_FALSE(build_recorded_dialogue(
      cut_body_rows(reply("DATA", 250, "250 2.0.0 Ok: queued\r\n")), d, error));
  EXPECT_NE(error.find("only 0 of 20 body octets were recorded"), std::string::npos) << error;
  ASSERT_TRUE(build_recorded_dialogue(cut_body_rows(reply("DATA", 250, "250 2.0.0 Ok: queued\r\n")),
                                      d, error, RefusedLines::answered_again,
                                      PartialBodies::counted))
      << error;
  EXPECT_TRUE(d.partial_body);
  Served s(std::move(d));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->take_to_client();
  s->client_bytes("DATA\r\nSubject: another one\r\n\r\nhello\r\n.\r\n");
  EXPECT_EQ(s->take_to_client(), "354 go\r\n250 2.0.0 Ok: queued\r\n");
  s->client_closed();
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// The octets --max-body left out count too: a reply inside the body waits for all 30.
TEST(MockSession, AReplyAfterABodyRecordedInPartWaitsForItsWholeSize) {
  RecordedDialogue d;
  std::string error;
  ASSERT_TRUE(
      build_recorded_dialogue(cut_body_rows(ev(Direction::upstream_to_client, EventKind::reply, "",
                                               "421 4.4.2 mx timeout\r\n", 421)),
                              d, error, RefusedLines::answered_again, PartialBodies::counted))
      << error;
  Served s(std::move(d));
  s->client_bytes("EHLO x\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.test>\r\n");
  s->take_to_client();
  s->client_bytes("DATA\r\nSubject: a 16 octets\r\n");
  EXPECT_EQ(s->take_to_client(), "354 go\r\n");  // 22 octets, not yet 30
  s->client_bytes("X: 7 more\r\n");
  EXPECT_EQ(s->take_to_client(), "421 4.4.2 mx timeout\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// proxy --auth-user: mailtap authenticated upstream, and its client got the EHLO reply without
// AUTH (the rewrite event); the mock serves that one, not the server's.
TEST(MockSession, AnAuthUserSessionIsServedWithTheEhloReplyTheClientGot) {
  RecordedDialogue r = from_rows({
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n"),
      ev(Direction::mailtap_to_upstream, EventKind::auth, "AUTH",
         "AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 6 bytes>]\r\n", 0, true),
      ev(Direction::upstream_to_mailtap, EventKind::reply, "AUTH",
         "235 2.7.0 Authentication successful\r\n", 235),
      ev(Direction::mailtap_to_client, EventKind::rewrite, "EHLO",
         "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"),
      client("MAIL", "MAIL FROM:<a@client.test>\r\n"),
      reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
      client("QUIT", "QUIT\r\n"),
      reply("QUIT", 221, "221 2.0.0 Bye\r\n"),
  });
  Served s(std::move(r));
  s->client_bytes("EHLO x\r\n");
  EXPECT_EQ(s->take_to_client(), "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
  // A client set to authenticate stops here, as it did against the proxy.
  s->client_closed();
  ASSERT_TRUE(s->divergence());
  EXPECT_EQ(*s->divergence(),
            "the client closed the connection after 1 commands; the recording continues with "
            "`MAIL FROM:<a@client.test>`");
}

// proxy --auth-user up to mailtap's own AUTH, which the server answered with `code`.
std::vector<storage::EventRow> authenticated_by_mailtap(int code, std::string answer) {
  return {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH PLAIN\r\n"),
      ev(Direction::mailtap_to_upstream, EventKind::auth, "AUTH",
         "AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 6 bytes>]\r\n", 0, true),
      ev(Direction::upstream_to_mailtap, EventKind::reply, "AUTH", std::move(answer), code),
  };
}

// What mailtap answered itself because it authenticated, the mock's dialogue (set up without
// that AUTH) passes on: the recorded answer is served in its place.
TEST(MockSession, AClientAuthAfterMailtapsOwnGetsMailtaps503Again) {
  std::vector<storage::EventRow> rows = authenticated_by_mailtap(235, "235 2.7.0 Ok\r\n");
  for (storage::EventRow r :
       {ev(Direction::mailtap_to_client, EventKind::rewrite, "EHLO", "250 mx\r\n"),
        ev(Direction::client_to_mailtap, EventKind::auth, "AUTH",
           "AUTH PLAIN [authzid=\"\" authcid=\"bob\" password=<redacted 6 bytes>]\r\n", 0, true),
        ev(Direction::mailtap_to_client, EventKind::local_reply, "",
           "503 5.5.1 mailtap: already authenticated as alice (by mailtap)\r\n", 503),
        client("MAIL", "MAIL FROM:<a@client.test>\r\n"), reply("MAIL", 250, "250 2.1.0 Ok\r\n")})
    rows.push_back(std::move(r));
  Served s(from_rows(rows));
  s->client_bytes("EHLO x\r\n");
  EXPECT_EQ(s->take_to_client(), "250 mx\r\n");
  s->client_bytes("AUTH PLAIN AGJvYgB4\r\n");
  EXPECT_EQ(s->take_to_client(),
            "503 5.5.1 mailtap: already authenticated as alice (by mailtap)\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\n");
  EXPECT_EQ(s->take_to_client(), "250 2.1.0 Ok\r\n");
  s->client_closed();
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

TEST(MockSession, AFailedOwnAuthIsExplainedAtMailAsRecorded) {
  std::vector<storage::EventRow> rows = authenticated_by_mailtap(535, "535 5.7.8 no\r\n");
  for (storage::EventRow r : {ev(Direction::client_to_mailtap, EventKind::command, "MAIL",
                                 "MAIL FROM:<a@client.test>\r\n"),
                              ev(Direction::mailtap_to_client, EventKind::local_reply, "",
                                 "535 5.7.8 mailtap: cannot AUTH PLAIN as alice\r\n", 535),
                              client("QUIT", "QUIT\r\n"), reply("QUIT", 221, "221 2.0.0 Bye\r\n")})
    rows.push_back(std::move(r));
  Served s(from_rows(rows));
  s->client_bytes("EHLO x\r\n");
  EXPECT_EQ(s->take_to_client(), "250-mx\r\n250 AUTH PLAIN\r\n");  // as the client got it
  s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
  EXPECT_EQ(s->take_to_client(),
            "535 5.7.8 mailtap: cannot AUTH PLAIN as alice\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// An AUTH exchange of the client's, between an EHLO and a message, ending the session.
std::vector<storage::EventRow> around_auth(std::vector<storage::EventRow> exchange) {
  std::vector<storage::EventRow> rows{
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n"),
  };
  for (storage::EventRow& r : exchange) rows.push_back(std::move(r));
  for (storage::EventRow r :
       {client("MAIL", "MAIL FROM:<a@client.test>\r\n"), reply("MAIL", 250, "250 2.1.0 Ok\r\n"),
        client("QUIT", "QUIT\r\n"), reply("QUIT", 221, "221 2.0.0 Bye\r\n")})
    rows.push_back(std::move(r));
  return rows;
}

storage::EventRow auth_line(std::string bytes) {
  // Judged before the move: the order in which arguments are evaluated is unspecified.
  const bool redacted = bytes.find('[') != std::string::npos;
  return ev(Direction::client_to_upstream, EventKind::auth, "AUTH", std::move(bytes), 0, redacted);
}
storage::EventRow challenge(std::string bytes) {
  return ev(Direction::upstream_to_client, EventKind::auth, "AUTH", std::move(bytes), 334);
}
storage::EventRow auth_reply(int code, std::string bytes) {
  return reply("AUTH", code, std::move(bytes));
}

// curl: AUTH PLAIN, 334, then the credentials.
RecordedDialogue plain_without_initial_response() {
  return from_rows(around_auth({
      auth_line("AUTH PLAIN\r\n"),
      challenge("334 \r\n"),
      auth_line("[authzid=\"\" authcid=\"alice\" password=<redacted 6 bytes>]\r\n"),
      auth_reply(235, "235 2.7.0 Authentication successful\r\n"),
  }));
}

// swaks: AUTH PLAIN <credentials>.
RecordedDialogue plain_with_initial_response() {
  return from_rows(around_auth({
      auth_line("AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 6 bytes>]\r\n"),
      auth_reply(235, "235 2.7.0 Authentication successful\r\n"),
  }));
}

TEST(MockSasl, AnInitialResponseGetsTheFinalReplyNotTheRecordedChallenge) {
  Served s(plain_without_initial_response());
  s->client_bytes("EHLO swaks\r\n");
  s->take_to_client();
  s->client_bytes("AUTH PLAIN AGFsaWNlAHp6eg==\r\n");
  EXPECT_EQ(s->take_to_client(), "235 2.7.0 Authentication successful\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
  EXPECT_EQ(s->take_to_client(), "250 2.1.0 Ok\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

TEST(MockSasl, AnAuthWithoutInitialResponseIsChallengedFirst) {
  Served s(plain_with_initial_response());
  s->client_bytes("EHLO curl\r\n");
  s->take_to_client();
  s->client_bytes("AUTH PLAIN\r\n");
  EXPECT_EQ(s->take_to_client(), "334 \r\n");
  s->client_bytes("AGFsaWNlAHp6eg==\r\n");
  EXPECT_EQ(s->take_to_client(), "235 2.7.0 Authentication successful\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
  EXPECT_EQ(s->take_to_client(), "250 2.1.0 Ok\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// AUTH LOGIN's exchange, its user name sent with the AUTH line or after "Username:".
RecordedDialogue login(bool initial_response) {
  std::vector<storage::EventRow> rows;
  if (initial_response) {
    rows.push_back(auth_line("AUTH LOGIN [user=\"alice\"]\r\n"));
  } else {
    rows.push_back(auth_line("AUTH LOGIN\r\n"));
    rows.push_back(challenge("334 VXNlcm5hbWU6\r\n"));
    rows.push_back(auth_line("[user=\"alice\"]\r\n"));
  }
  rows.push_back(challenge("334 UGFzc3dvcmQ6\r\n"));
  rows.push_back(auth_line("[password=<redacted 6 bytes>]\r\n"));
  rows.push_back(auth_reply(235, "235 2.7.0 Authentication successful\r\n"));
  return from_rows(around_auth(std::move(rows)));
}

TEST(MockSasl, ALoginUserNameWithTheAuthLineSkipsTheUsernamePrompt) {
  Served s(login(false));
  s->client_bytes("EHLO x\r\n");
  s->take_to_client();
  s->client_bytes("AUTH LOGIN YWxpY2U=\r\n");
  EXPECT_EQ(s->take_to_client(), "334 UGFzc3dvcmQ6\r\n");
  s->client_bytes("eHl6\r\n");
  EXPECT_EQ(s->take_to_client(), "235 2.7.0 Authentication successful\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

TEST(MockSasl, ABareAuthLoginIsPromptedForItsUserName) {
  Served s(login(true));
  s->client_bytes("EHLO x\r\n");
  s->take_to_client();
  s->client_bytes("AUTH LOGIN\r\n");
  EXPECT_EQ(s->take_to_client(), "334 VXNlcm5hbWU6\r\n");
  s->client_bytes("YWxpY2U=\r\n");
  EXPECT_EQ(s->take_to_client(), "334 UGFzc3dvcmQ6\r\n");
  s->client_bytes("eHl6\r\n");
  EXPECT_EQ(s->take_to_client(), "235 2.7.0 Authentication successful\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

TEST(MockSasl, ACancelAtTheChallengeTheRecordingSkippedIsNamed) {
  Served s(plain_with_initial_response());
  s->client_bytes("EHLO x\r\nAUTH PLAIN\r\n");
  s->take_to_client();
  s->client_bytes("*\r\n");
  ASSERT_TRUE(s->divergence());
  EXPECT_NE(s->divergence()->find("cancelled the AUTH exchange (*)"), std::string::npos)
      << *s->divergence();
  const std::string out = s->take_to_client();
  EXPECT_NE(out.find("421 4.3.0 mailtap mock: command 3: the client cancelled"), std::string::npos)
      << out;
}

TEST(MockSasl, ARefusedMechanismIsRefusedAsRecordedWhateverTheForm) {
  Served s(from_rows(around_auth({
      auth_line("AUTH CRAM-MD5\r\n"),
      auth_reply(504, "504 5.5.4 Unrecognized authentication type\r\n"),
  })));
  s->client_bytes("EHLO x\r\nAUTH CRAM-MD5 =\r\n");
  EXPECT_NE(s->take_to_client().find("504 5.5.4 Unrecognized"), std::string::npos);
}

// The server's challenges are not secret: each is served where the recording has it.
TEST(MockSasl, CramMd5sChallengeIsServedAsRecorded) {
  Served s(from_rows(around_auth({
      auth_line("AUTH CRAM-MD5\r\n"),
      challenge("334 PDEyMzQ1LjY3ODlAbXguZXhhbXBsZS50ZXN0Pg==\r\n"),
      auth_line("[user=\"alice\" digest=<redacted 32 bytes>]\r\n"),
      auth_reply(235, "235 2.7.0 Authentication successful\r\n"),
  })));
  s->client_bytes("EHLO x\r\n");
  s->take_to_client();
  s->client_bytes("AUTH CRAM-MD5\r\n");
  EXPECT_EQ(s->take_to_client(), "334 PDEyMzQ1LjY3ODlAbXguZXhhbXBsZS50ZXN0Pg==\r\n");
  s->client_bytes("YWxpY2UgMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=\r\n");
  EXPECT_EQ(s->take_to_client(), "235 2.7.0 Authentication successful\r\n");
  s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// XOAUTH2 refused: the RFC 7628 error JSON in a 334, the client's empty line, then 535.
RecordedDialogue xoauth2_refused(bool initial_response) {
  std::vector<storage::EventRow> rows;
  if (initial_response) {
    rows.push_back(auth_line("AUTH XOAUTH2 [user=\"alice\" token=<redacted 40 bytes>]\r\n"));
  } else {
    rows.push_back(auth_line("AUTH XOAUTH2\r\n"));
    rows.push_back(challenge("334 \r\n"));
    rows.push_back(auth_line("[user=\"alice\" token=<redacted 40 bytes>]\r\n"));
  }
  rows.push_back(challenge("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n"));
  rows.push_back(auth_line("\r\n"));
  rows.push_back(auth_reply(535, "535 5.7.8 Username and Password not accepted\r\n"));
  return from_rows(around_auth(std::move(rows)));
}

TEST(MockSasl, AnOAuthErrorChallengeIsServedAsRecordedInEitherForm) {
  for (const bool recorded_ir : {false, true}) {
    for (const bool client_ir : {false, true}) {
      SCOPED_TRACE(std::to_string(recorded_ir) + std::to_string(client_ir));
      Served s(xoauth2_refused(recorded_ir));
      s->client_bytes("EHLO x\r\n");
      s->take_to_client();
      if (client_ir) {
        s->client_bytes("AUTH XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB4eXoBAQ==\r\n");
      } else {
        s->client_bytes("AUTH XOAUTH2\r\n");
        EXPECT_EQ(s->take_to_client(), "334 \r\n");
        s->client_bytes("dXNlcj1hbGljZQFhdXRoPUJlYXJlciB4eXoBAQ==\r\n");
      }
      EXPECT_EQ(s->take_to_client(), "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n");
      s->client_bytes("\r\n");
      EXPECT_EQ(s->take_to_client(), "535 5.7.8 Username and Password not accepted\r\n");
      s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
      EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
    }
  }
}

// The first challenge the original client skipped (it sent its user name with AUTH LOGIN) is
// the one this server sent to a bare AUTH LOGIN elsewhere in the recording, if there is one:
// here its "username:" in lower case, not the usual "Username:".
TEST(MockSasl, AFirstChallengeTheRecordingHasElsewhereIsServedAsRecorded) {
  Served s(from_rows(around_auth({
      auth_line("AUTH LOGIN\r\n"),
      challenge("334 dXNlcm5hbWU6\r\n"),
      auth_line("[user=\"alice\"]\r\n"),
      challenge("334 cGFzc3dvcmQ6\r\n"),
      auth_line("[password=<redacted 5 bytes>]\r\n"),
      auth_reply(535, "535 5.7.8 Error: authentication failed\r\n"),
      auth_line("AUTH LOGIN [user=\"alice\"]\r\n"),
      challenge("334 cGFzc3dvcmQ6\r\n"),
      auth_line("[password=<redacted 6 bytes>]\r\n"),
      auth_reply(235, "235 2.7.0 Authentication successful\r\n"),
  })));
  s->client_bytes("EHLO x\r\n");
  s->take_to_client();
  for (const std::string& final_reply : {"535 5.7.8 Error: authentication failed\r\n"s,
                                         "235 2.7.0 Authentication successful\r\n"s}) {
    s->client_bytes("AUTH LOGIN\r\n");
    EXPECT_EQ(s->take_to_client(), "334 dXNlcm5hbWU6\r\n");
    s->client_bytes("YWxpY2U=\r\n");
    EXPECT_EQ(s->take_to_client(), "334 cGFzc3dvcmQ6\r\n");
    s->client_bytes("eHl6\r\n");
    EXPECT_EQ(s->take_to_client(), final_reply);
  }
  s->client_bytes("MAIL FROM:<a@client.test>\r\nQUIT\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

// mailtap answers an AUTH with more than one argument after the mechanism itself (501, not
// forwarded), and so does the mock's dialogue: the recorded refusal is served as recorded.
TEST(MockSession, AnAuthLineInClearGetsMailtaps501AsTheProxyWould) {
  const std::string refusal =
      "501 5.5.4 mailtap: AUTH takes one argument after the mechanism, in base64 (RFC 4954), so "
      "no server takes this line; not forwarded. To type the user name and password as they "
      "are, restart mailtap proxy with --assist-auth; or type what mailtap encode plain USER "
      "prints\r\n";
  const std::vector<storage::EventRow> head = {
      ev(Direction::upstream_to_client, EventKind::greeting, "", "220 mx ESMTP\r\n", 220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250-mx\r\n250 AUTH PLAIN\r\n"),
  };
  std::vector<storage::EventRow> now = head;
  for (storage::EventRow r :
       {ev(Direction::client_to_mailtap, EventKind::auth, "AUTH",
           "AUTH PLAIN [<redacted 14 bytes>]\r\n", 0, true),
        ev(Direction::mailtap_to_client, EventKind::local_reply, "", refusal, 501),
        client("QUIT", "QUIT\r\n"), reply("QUIT", 221, "221 2.0.0 Bye\r\n")})
    now.push_back(std::move(r));
  Served s(from_rows(now));
  s->client_bytes("EHLO x\r\n");
  s->take_to_client();
  s->client_bytes("AUTH PLAIN alice secret\r\n");
  EXPECT_EQ(s->take_to_client(), refusal);
  s->client_bytes("QUIT\r\n");
  EXPECT_EQ(s->take_to_client(), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(s->completed()) << s->divergence().value_or("");
}

}  // namespace
}  // namespace mailtap::tools
