// A person at a raw-mode terminal (socat -,raw,echo=0; stty raw; nc) presses Enter and the
// terminal sends a bare CR: each command line is answered at its own Enter, not when the next
// octet comes, and the same however the octets were split into reads.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/smtp/dialogue.hpp"
#include "tests/unit/dialogue_harness.hpp"

namespace mailtap::smtp {
namespace {

using namespace testing;
using namespace std::string_literals;

std::vector<std::string> rewrite_notes(const Result& r) {
  std::vector<std::string> out;
  for (const Event* e : find_events(r, Direction::mailtap_note, EventKind::rewrite))
    out.push_back(e->verb + ": " + e->note);
  return out;
}

// The typist's session (one line per read, the client waiting for each reply): each reply
// comes after its own line, a refused RCPT is answered before QUIT is typed, and QUIT\r gets
// its 221. Before, each line waited for the next octet, and QUIT\r was never answered.
TEST(DialogueBareCr, ARawTerminalsLinesAreAnsweredAtTheirOwnCr) {
  const Result r = run_all_splits({
      client("EHLO me\r"),
      upstream(ehlo_reply),
      client("MAIL FROM:<a@x>\r"),
      upstream("250 2.1.0 Ok\r\n"),
      client("RCPT TO:<nobody@y>\r"),
      upstream("550 5.1.1 <nobody@y>: Recipient address rejected\r\n"),
      client("QUIT\r"),
      upstream("221 2.0.0 Bye\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[0], "EHLO me\r\n");
  EXPECT_EQ(r.upstream_per_step[2], "MAIL FROM:<a@x>\r\n");
  EXPECT_EQ(r.upstream_per_step[4], "RCPT TO:<nobody@y>\r\n");
  EXPECT_EQ(r.upstream_per_step[6], "QUIT\r\n");
  EXPECT_EQ(r.client_per_step[5], "550 5.1.1 <nobody@y>: Recipient address rejected\r\n");
  EXPECT_EQ(r.client_per_step[7], "221 2.0.0 Bye\r\n");
  ASSERT_TRUE(r.ending);
  EXPECT_EQ(r.ending->kind, Ending::Kind::quit);
  // Each bare CR is counted once the next octet showed it was one: QUIT's never was.
  EXPECT_EQ(rewrite_notes(r), (std::vector<std::string>{"EHLO: bare CR normalised to CRLF (1x)",
                                                        "MAIL: bare CR normalised to CRLF (1x)",
                                                        "RCPT: bare CR normalised to CRLF (1x)"}));
}

// The first line's ending is settled by the octets after its CR, as if they had come with it.
TEST(DialogueBareCr, TheFirstLinesEndingIsWhatTheOctetsAfterItsCrMakeIt) {
  struct Case {
    std::string after;     // sent in the next read, after the EHLO reply
    std::string upstream;  // what the server gets of it
    std::vector<std::string> notes;
    std::vector<std::string> replies;  // the server's, one read each
  };
  const std::vector<Case> cases = {
      // CRLF: the LF is the rest of the first line's ending; a bare CR then is inside a line.
      {"\nMAIL FROM:<a@x\rRCPT TO:<c@y>>\r\nQUIT\r\n", "QUIT\r\n", {}, {"221 bye\r\n"}},
      // telnet's CR NUL: the NUL goes with the CR.
      {"\0NOOP\r\0QUIT\r\0"s,
       "NOOP\r\nQUIT\r\n",
       {"EHLO: bare CR normalised to CRLF (1x)", "NOOP: bare CR normalised to CRLF (1x)",
        "QUIT: bare CR normalised to CRLF (1x)"},
       {"250 ok\r\n", "221 bye\r\n"}},
      // A CRLF through a text-mode stream: one line, the CR before it removed.
      {"\r\nNOOP\r\n", "NOOP\r\n", {"EHLO: CR before CRLF removed (1x)"}, {"250 ok\r\n"}},
      // A bare CR, then Enter alone: an empty line, then NOOP.
      {"\rNOOP\r\n",
       "\r\nNOOP\r\n",
       {"EHLO: bare CR normalised to CRLF (1x)", ": bare CR normalised to CRLF (1x)"},
       {"500 empty\r\n", "250 ok\r\n"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(printable(c.after));
    Script script = {client("EHLO me\r"), upstream(ehlo_reply), client(c.after)};
    for (const std::string& reply : c.replies) script.push_back(upstream(reply));
    const Result r = run_all_splits(script);
    EXPECT_EQ(r.upstream_per_step[0], "EHLO me\r\n");
    EXPECT_EQ(r.client_per_step[1], ehlo_reply_filtered);
    EXPECT_EQ(r.upstream_per_step[2], c.upstream);
    EXPECT_EQ(rewrite_notes(r), c.notes);
  }
}

// The same octets in one read, split at every position: the same lines, the same replies.
TEST(DialogueBareCr, FirstLinesEndedAtTheirCrAreTheSameHoweverSplit) {
  struct Case {
    std::string bytes;
    std::string upstream;  // all the server gets
  };
  const std::vector<Case> cases = {
      {"EHLO me\r\r\nNOOP\r\n", "EHLO me\r\nNOOP\r\n"},
      {"EHLO me\r\rNOOP\r", "EHLO me\r\n\r\nNOOP\r\n"},
      {"EHLO me\r\r\rNOOP\r\n", "EHLO me\r\n\r\n\r\nNOOP\r\n"},
      {"EHLO me\r\0NOOP\r\0"s, "EHLO me\r\nNOOP\r\n"},
      {"\r\nNOOP\r\n", "\r\nNOOP\r\n"},
      {"HELP\r\nNOOP\r\0"s, "HELP\r\n"},  // CRLF first: CR NUL is inside the line
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(printable(c.bytes));
    Script script = {client(c.bytes)};
    for (std::size_t at = c.upstream.find("\r\n"); at != std::string::npos;
         at = c.upstream.find("\r\n", at + 2))
      script.push_back(upstream("250 ok\r\n"));
    const Result r = run_all_splits(script);
    EXPECT_EQ(r.to_upstream, c.upstream);
  }
}

// For a bare-CR client a NUL after its CR begins the next line, as in its bodies: "A\r\0B\n" is
// the line A, then a line beginning with NUL, refused; not one line with a foreign CR NUL.
TEST(DialogueBareCr, ANulAfterABareCrClientsCrBeginsTheNextLine) {
  const Result r = run_all_splits({
      client("EHLO me\rNOOP\r\0NOOP\nRSET\r"s),
      upstream(ehlo_reply),
      upstream("250 ok\r\n"),
      upstream("250 ok\r\n"),
  });
  EXPECT_EQ(r.to_upstream, "EHLO me\r\nNOOP\r\nRSET\r\n");
  EXPECT_NE(r.to_client.find("NUL byte in command line"), std::string::npos)
      << printable(r.to_client);
}

// Its DATA line ends at its CR whatever follows (an LF after it is the rest of that ending), so
// its body's own line ending is the bare CR either way.
TEST(DialogueBareCr, ABareCrClientsDataLineEndsAtItsCr) {
  for (const std::string& data_end : {"\r"s, "\r\n"s}) {
    SCOPED_TRACE(printable(data_end));
    const Result r = run_all_splits({
        client("EHLO me\rMAIL FROM:<a@x>\rRCPT TO:<b@y>\rDATA" + data_end),
        upstream(ehlo_reply),
        upstream("250 ok\r\n250 ok\r\n354 go\r\n"),
        client("Subject: s\r\rbody\r.\r"),
        upstream("250 queued\r\n"),
        client("QUIT\r"),
        upstream("221 bye\r\n"),
    });
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].body, "Subject: s\r\n\r\nbody\r\n");
    EXPECT_EQ(r.client_per_step[4], "250 queued\r\n");
    EXPECT_EQ(r.upstream_per_step[5], "QUIT\r\n");
  }
}

// SASL responses typed so are answered at their CR too.
TEST(DialogueBareCr, ABareCrClientsSaslResponsesGoAtTheirCr) {
  const Result r = run_all_splits({
      client("EHLO me\r"),
      upstream(ehlo_reply),
      client("AUTH LOGIN\r"),
      upstream("334 VXNlcm5hbWU6\r\n"),
      client("YWxpY2U=\r"),
      upstream("334 UGFzc3dvcmQ6\r\n"),
      client("cHc=\r"),
      upstream("235 2.7.0 ok\r\n"),
  });
  EXPECT_EQ(r.upstream_per_step[4], "YWxpY2U=\r\n");
  EXPECT_EQ(r.upstream_per_step[6], "cHc=\r\n");
  EXPECT_EQ(r.client_per_step[7], "235 2.7.0 ok\r\n");
}

// A line held unfinished at the timeout: the 421 says it was not complete (not "idle"), and
// names the CR in it that is not the client's line ending; the record says how long it was.
TEST(DialogueBareCr, ATimeoutWithALineHeldSaysWhyItIsNotComplete) {
  struct Case {
    std::string bytes;
    std::string reply;
    std::string note;
  };
  const std::vector<Case> cases = {
      {"EHOL me\rEHLO me\r",
       "4.4.2 mailtap: the client's command line was not complete within 8s; its line holds "
       "a bare CR at octet 8, which ends a line only for a client whose first line (EHLO, HELO, "
       "NOOP, RSET, HELP,",
       "timed out after an unterminated line of 17 octets; not forwarded"},
      {"MAIL FROM:<a@x>\r",
       "4.4.2 mailtap: the client's command line was not complete within 8s; its line holds "
       "a bare CR at octet 16,",
       "timed out after an unterminated line of 16 octets; not forwarded"},
      {"EHLO me\r\nNOOP\r\0"s,
       "4.4.2 mailtap: the client's command line was not complete within 8s; its line holds "
       "a CR NUL at octet 5 (telnet's mode character), which ends a line only for a client "
       "whose first line",
       "timed out after an unterminated line of 6 octets; not forwarded"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(printable(c.bytes));
    std::vector<RecordedEvent> events;
    std::vector<Message> messages;
    Dialogue d(test_options(), events, messages);
    d.client_bytes(c.bytes);
    if (c.bytes.starts_with("EHLO me\r\n")) d.upstream_bytes("250 ok\r\n");
    d.take_to_client();
    d.time_out_client("8s", /*line_begun=*/false);
    const std::string reply = d.take_to_client();
    EXPECT_TRUE(reply.starts_with("421")) << reply;
    EXPECT_NE(reply.find(c.reply), std::string::npos) << reply;
    EXPECT_EQ(d.ending()->reason, "client line not complete in time");
    bool noted = false;
    for (const RecordedEvent& e : events) noted = noted || e->note == c.note;
    EXPECT_TRUE(noted) << c.note;
  }
}

}  // namespace
}  // namespace mailtap::smtp
