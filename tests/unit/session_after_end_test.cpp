// What the record says of a session's end once its closing record is committed: the replies
// the client did not take, and what the lingering close threw away (never its octets).
#include "proxy/session/after_end.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace mailtap {
namespace {

using namespace std::chrono_literals;

constexpr net::LingerLimits limits{2s, std::size_t{1} << 20};

TEST(AfterEnd, NamesEachReplyByItsSummaryAndABacklogByItsLast) {
  EXPECT_EQ(reply_summaries("250 2.0.0 Ok: queued\r\n221-mx.test\r\n221 2.0.0 Bye\r\n"),
            "250 2.0.0 Ok: queued, 221 mx.test; 2.0.0 Bye");
  std::string backlog;
  for (int i = 0; i < 10; ++i) backlog += "250 2.0.0 Ok\r\n";
  backlog += "421 4.3.2 going away\r\n";
  EXPECT_EQ(reply_summaries(backlog),
            "250 2.0.0 Ok, 250 2.0.0 Ok, 250 2.0.0 Ok and 8 more replies, the last 421 4.3.2 "
            "going away");
  EXPECT_EQ(reply_summaries(""), "");
  // A partial write took the start of the 250: the rest of its line is left out, not the note.
  EXPECT_EQ(reply_summaries(".0.0 Ok: queued\r\n221 2.0.0 Bye\r\n"), "221 2.0.0 Bye");
  EXPECT_EQ(reply_summaries("sx.test\r\n221 2.0.0 Bye\r\n"), "221 2.0.0 Bye");
}

// The recording 421 names the server's 250 to the end of data apart from what came after it:
// split by the replies, not by the summaries' text, which may hold ", 221 " itself.
TEST(AfterEnd, SplitsTheFirstReplyFromTheOthers) {
  EXPECT_EQ(first_and_other_summaries("250 2.0.0 Ok: queued, 221 x\r\n221 2.0.0 Bye\r\n"),
            (std::pair<std::string, std::string>{"250 2.0.0 Ok: queued, 221 x", "221 2.0.0 Bye"}));
  EXPECT_EQ(first_and_other_summaries("250 2.0.0 Ok\r\n"),
            (std::pair<std::string, std::string>{"250 2.0.0 Ok", ""}));
  EXPECT_EQ(first_and_other_summaries(""), (std::pair<std::string, std::string>{}));
}

TEST(AfterEnd, SaysWhichRepliesWereNotDeliveredAndWhy) {
  EXPECT_EQ(undelivered_note("221 2.0.0 Bye", "", true),
            "client closed the connection while replies were still due to it: it reset the "
            "connection; replies that did not reach the client: 221 2.0.0 Bye");
  EXPECT_EQ(undelivered_note("221 2.0.0 Bye", "the client did not read its last reply", true),
            "the client did not read its last reply; replies that did not reach the client: 221 "
            "2.0.0 Bye");
  // A clean close (a FIN) after the replies: they were taken, nothing to say.
  EXPECT_EQ(undelivered_note("221 2.0.0 Bye", "", false), std::nullopt);
  // No reply was still to go (a client dropped during the session gets no 421).
  EXPECT_EQ(undelivered_note("", "", true), std::nullopt);
}

TEST(AfterEnd, CountsWhatTheLingeringCloseThrewAwayAndWhyItClosedFirst) {
  net::Lingered lingered;
  EXPECT_EQ(discarded_note(lingered, limits, false), std::nullopt);
  lingered.discarded = 8;
  lingered.client_closed = true;
  EXPECT_EQ(discarded_note(lingered, limits, false),
            "8 octets the client sent after the end were discarded unread");
  // Refused before the greeting: typed ahead at connect as likely as after the 421.
  EXPECT_EQ(discarded_note(lingered, limits, false, /*greeted=*/false),
            "8 octets the client sent were discarded unread: the session ended before the client "
            "was greeted, so nothing it sent was read");
  lingered.client_closed = false;
  lingered.discarded = std::size_t{1} << 20;
  lingered.octet_limit = true;
  EXPECT_EQ(discarded_note(lingered, limits, false),
            "1048576 octets the client sent after the end were discarded unread (closed before "
            "the client did: the lingering close reads at most 1 MiB)");
  lingered.octet_limit = false;
  lingered.time_limit = true;
  EXPECT_EQ(discarded_note(lingered, limits, false),
            "1048576 octets the client sent after the end were discarded unread (closed before "
            "the client did: it had not closed within 2s)");
  lingered.time_limit = false;
  EXPECT_EQ(discarded_note(lingered, limits, false),
            "1048576 octets the client sent after the end were discarded unread (closed before "
            "the client did: mailtap was shutting down)");
  // No lingering close at all: mailtap had reset a client that did not read (no shutdown).
  lingered.closed_before = true;
  EXPECT_EQ(discarded_note(lingered, limits, /*reset_unread=*/true),
            "1048576 octets the client sent after the end were discarded unread (mailtap had "
            "reset the connection: the client was not reading its replies)");
}

TEST(AfterEnd, AConnectionClosedBeforeForAnotherReasonDoesNotBlameTheClientsReading) {
  // A STARTTLS handshake that failed or timed out, a shutdown during one: the socket was
  // closed before the lingering close, and the client is not to be called slow for it.
  net::Lingered lingered;
  lingered.discarded = 5;
  lingered.closed_before = true;
  EXPECT_EQ(discarded_note(lingered, limits, /*reset_unread=*/false),
            "5 octets the client sent after the end were discarded unread (mailtap had closed "
            "the connection already)");
}

}  // namespace
}  // namespace mailtap
