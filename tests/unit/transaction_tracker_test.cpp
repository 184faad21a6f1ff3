// The transaction tracker: which mail transaction each command and body octet belongs to, and
// the Message each one yields. Bodies arrive in reads of any size: the result must not depend
// on where they were split.
#include "proxy/smtp/transaction_tracker.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/reply_of.hpp"

namespace mailtap::smtp {
namespace {

using test_support::reply_of;
using Clock = TransactionTracker::Clock;

const Clock::time_point t0 = Clock::time_point{} + std::chrono::seconds(100);
const Clock::time_point t1 = t0 + std::chrono::seconds(5);

TEST(TransactionTracker, MailBeginsNumberedTransactionsAndTheFinalReplyMakesTheMessage) {
  TransactionTracker tracker;
  EXPECT_FALSE(tracker.open());
  auto first = tracker.begin("MAIL FROM:<a@example>", t0);
  ASSERT_TRUE(first);
  EXPECT_FALSE(tracker.open());  // until the server accepts it
  tracker.mail_reply(first, /*positive=*/true);
  EXPECT_TRUE(tracker.open());
  EXPECT_EQ(tracker.active(), first);
  tracker.rcpt_reply({"RCPT TO:<b@example>", 250, "250 2.1.5 Ok"});
  TransactionTracker::add_body(*first, 7);

  auto m = tracker.finish(first, reply_of("250 2.0.0 Ok: queued as X\r\n"), t1);
  ASSERT_TRUE(m);
  EXPECT_FALSE(tracker.open());
  EXPECT_EQ(m->transaction, 1u);
  EXPECT_EQ(m->mail_from, "MAIL FROM:<a@example>");
  ASSERT_EQ(m->recipients.size(), 1u);
  EXPECT_EQ(m->recipients[0].reply_code, 250);
  EXPECT_EQ(m->size, 7u);
  EXPECT_TRUE(m->sha256_hex.empty());  // the recorder's, as it stores the body
  EXPECT_EQ(m->final_code, 250);
  EXPECT_EQ(m->final_reply, "250 2.0.0 Ok: queued as X");
  EXPECT_EQ(m->started, t0);
  EXPECT_EQ(m->finished, t1);
  // A Message is produced once.
  EXPECT_FALSE(tracker.finish(first, reply_of("250 again\r\n"), t1));

  auto second = tracker.begin("MAIL FROM:<c@example>", t1);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->message.transaction, 2u);
}

// A client may send any number of RCPT lines in one transaction, each answered: what the
// message row keeps of them is bounded (the events hold every one). Refused ones are kept only
// while few, accepted ones (whom the message went to) while they fit a larger budget; each kept
// one keeps its place among all the transaction's RCPTs.
TEST(TransactionTracker, TheRecipientsKeptForTheMessageRowAreBounded) {
  TransactionTracker tracker;
  auto t = tracker.begin("MAIL FROM:<a@example>", t0);
  tracker.mail_reply(t, /*positive=*/true);
  const std::string local(1900, 'r');
  for (int i = 0; i < 20000; ++i) {
    tracker.rcpt_reply({"RCPT TO:<" + local + "@example>", 452, "452 4.5.3 Too many recipients"});
  }
  for (int i = 0; i < 20000; ++i) {
    tracker.rcpt_reply({"RCPT TO:<" + local + "@example>", 250, "250 2.1.5 Ok"});
  }
  auto m = tracker.finish(t, reply_of("250 2.0.0 Ok: queued\r\n"), t1);
  ASSERT_TRUE(m);
  std::size_t octets = 0;
  std::size_t refused = 0;
  std::size_t accepted = 0;
  for (const Recipient& r : m->recipients) {
    octets += r.command.size() + r.reply.size();
    (r.reply_code == 250 ? accepted : refused) += 1;
  }
  EXPECT_LE(octets, kRecipientOctetsKept);
  EXPECT_GT(refused, 0u);
  EXPECT_LT(refused * (local.size() + 40), kRefusedRecipientOctetsKept + local.size() + 100);
  EXPECT_GT(accepted, 400u);  // the accepted ones fill the rest: hundreds of long lines
  ASSERT_FALSE(m->recipients.empty());
  EXPECT_EQ(m->recipients.front().position, 0u);
  EXPECT_EQ(m->recipients.back().position, 20000u + accepted - 1);
  // Those past the last one kept leave no gap in the positions: the message counts them.
  EXPECT_EQ(m->recipients_left_out,
            (RecipientsLeftOut{40000u - refused - accepted, 20000u - accepted}));
}

// The counts are in the message (its row's column) and in a note with it for a reader of the
// events, in the words schema migration 10 read them from for rows recorded before the column:
// "recipients left out: N RCPTs (M accepted) ...".
TEST(TransactionTracker, TheNoteOfTheRecipientsLeftOutSaysTheCounts) {
  TransactionTracker tracker;
  auto t = tracker.begin("MAIL FROM:<a@example>", t0);
  tracker.mail_reply(t, /*positive=*/true);
  const std::string local(1900, 'r');
  for (int i = 0; i < 600; ++i)
    tracker.rcpt_reply({"RCPT TO:<" + local + "@example>", 250, "250 2.1.5 Ok"});
  tracker.rcpt_reply({"RCPT TO:<" + local + "@example>", 550, "550 5.1.1 Unknown"});
  auto m = tracker.finish(t, reply_of("250 2.0.0 Ok: queued\r\n"), t1);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->recipients_left_out);
  const RecipientsLeftOut left_out = *m->recipients_left_out;
  ASSERT_GT(left_out.rcpts, 1u);
  EXPECT_EQ(left_out.accepted, left_out.rcpts - 1);
  const std::string note = recipients_left_out_note(*m);
  EXPECT_TRUE(note.starts_with(std::string(recipients_left_out_note_prefix) +
                               std::to_string(left_out.rcpts) + " RCPTs (" +
                               std::to_string(left_out.accepted) + " accepted) "))
      << note;
}

// Within the bounds nothing is left out, and no note is made for the message.
TEST(TransactionTracker, AMessageWithFewRecipientsLeavesNoneOut) {
  TransactionTracker tracker;
  auto t = tracker.begin("MAIL FROM:<a@example>", t0);
  tracker.mail_reply(t, /*positive=*/true);
  tracker.rcpt_reply({"RCPT TO:<b@example>", 250, "250 2.1.5 Ok"});
  tracker.rcpt_reply({"RCPT TO:<c@example>", 550, "550 5.1.1 Unknown"});
  auto m = tracker.finish(t, reply_of("250 2.0.0 Ok: queued\r\n"), t1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->recipients.size(), 2u);
  EXPECT_EQ(m->recipients_left_out, RecipientsLeftOut{});
}

// RFC 5321 §4.1.4: a MAIL inside a transaction is refused (503), and the open one goes on: its
// recipients and body are still its own.
TEST(TransactionTracker, ANestedMailTheServerRefusesTakesNothingFromTheOpenOne) {
  TransactionTracker tracker;
  auto first = tracker.begin("MAIL FROM:<a@example>", t0);
  auto nested = tracker.begin("MAIL FROM:<b@example>", t0);  // pipelined behind it
  EXPECT_EQ(nested->message.transaction, 2u);
  tracker.mail_reply(first, true);
  tracker.mail_reply(nested, false);
  EXPECT_EQ(tracker.active(), first);
  tracker.rcpt_reply({"RCPT TO:<c@example>", 250, "250 Ok"});
  auto m = tracker.finish(first, reply_of("250 Ok\r\n"), t1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->mail_from, "MAIL FROM:<a@example>");
  ASSERT_EQ(m->recipients.size(), 1u);
  EXPECT_FALSE(tracker.finish(nested, reply_of("250 Ok\r\n"), t1));
}

TEST(TransactionTracker, RefusedMailYieldsNoMessageAndTheNextMailOpensItsOwn) {
  TransactionTracker tracker;
  auto refused = tracker.begin("MAIL FROM:<a@example> FOO=bar", t0);
  auto next = tracker.begin("MAIL FROM:<b@example>", t0);  // sent before the refusal arrived
  tracker.mail_reply(refused, false);
  EXPECT_FALSE(tracker.open());
  tracker.rcpt_reply({"RCPT TO:<x@example>", 503, "503 need MAIL"});  // belongs to nothing
  tracker.mail_reply(next, true);
  EXPECT_EQ(tracker.active(), next);
  EXPECT_EQ(next->message.transaction, 2u);
  EXPECT_TRUE(next->message.recipients.empty());
  EXPECT_FALSE(tracker.finish(refused, reply_of("250 Ok\r\n"), t1));
}

// A pipelined RSET + MAIL: the second MAIL is sent while the first transaction is still open,
// and opens once the RSET's reply has closed that one.
TEST(TransactionTracker, RepliesToAPipelinedRsetAndMailMoveToTheNewTransaction) {
  TransactionTracker tracker;
  auto first = tracker.begin("MAIL FROM:<a@example>", t0);
  auto second = tracker.begin("MAIL FROM:<a@example>", t0);
  tracker.mail_reply(first, true);
  tracker.rcpt_reply({"RCPT TO:<bob@example>", 250, "250 Ok"});
  tracker.reset();  // the RSET's 250
  EXPECT_FALSE(tracker.open());
  tracker.mail_reply(second, true);
  tracker.rcpt_reply({"RCPT TO:<carol@example>", 250, "250 Ok"});
  auto m = tracker.finish(second, reply_of("250 queued\r\n"), t1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->transaction, 2u);
  ASSERT_EQ(m->recipients.size(), 1u);
  EXPECT_EQ(m->recipients[0].command, "RCPT TO:<carol@example>");
}

TEST(TransactionTracker, AServerThatAcceptsANestedMailHasDroppedTheOpenOne) {
  TransactionTracker tracker;
  auto first = tracker.begin("MAIL FROM:<a@example>", t0);
  auto second = tracker.begin("MAIL FROM:<b@example>", t0);
  tracker.mail_reply(first, true);
  tracker.mail_reply(second, true);
  EXPECT_EQ(tracker.active(), second);
}

TEST(TransactionTracker, TheFinalReplyEndsTheTransactionWhateverItsCode) {
  TransactionTracker tracker;
  auto t = tracker.begin("MAIL FROM:<a@example>", t0);
  tracker.mail_reply(t, true);
  auto m = tracker.finish(t, reply_of("554 5.7.1 rejected\r\n"), t1);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->final_code, 554);
  EXPECT_FALSE(tracker.open());
}

TEST(TransactionTracker, ForecastFollowsTheCommandsAwaitingReplies) {
  TransactionTracker tracker;
  auto a = tracker.begin("MAIL FROM:<a@example>", t0);
  auto b = tracker.begin("MAIL FROM:<b@example>", t0);
  {
    TransactionTracker::Forecast f(tracker.active());
    f.mail(a);  // into no transaction: accepted, or refused and nothing is open
    EXPECT_TRUE(f.certain());
    EXPECT_EQ(f.transaction(), a);
    f.mail(b);  // refused as nested, or accepted if a was refused: the replies decide
    EXPECT_FALSE(f.certain());
    f.rset(/*with_arguments=*/false);  // whatever came before, nothing is open after it
    EXPECT_TRUE(f.certain());
    EXPECT_FALSE(f.transaction());
    f.mail(b);
    EXPECT_TRUE(f.certain());
    EXPECT_EQ(f.transaction(), b);
    f.end();
    EXPECT_TRUE(f.certain());
    EXPECT_FALSE(f.transaction());
  }
  tracker.mail_reply(a, true);
  {
    TransactionTracker::Forecast f(tracker.active());
    EXPECT_EQ(f.transaction(), a);
    f.mail(b);
    EXPECT_FALSE(f.certain());
  }
  {
    TransactionTracker::Forecast f(tracker.active());
    f.rset(/*with_arguments=*/true);  // "RSET x": a server may refuse it and keep a open
    EXPECT_FALSE(f.certain());
  }
  {
    TransactionTracker::Forecast f(nullptr);
    f.rset(/*with_arguments=*/true);  // nothing open either way
    EXPECT_TRUE(f.certain());
  }
}

Message message_of(const std::vector<std::string_view>& reads) {
  TransactionTracker tracker;
  auto t = tracker.begin("MAIL FROM:<a@example>", t0);
  tracker.mail_reply(t, true);
  for (std::string_view r : reads) TransactionTracker::add_body(*t, r.size());
  return tracker.finish(t, reply_of("250 Ok\r\n"), t1).value_or(Message{});
}

TEST(TransactionTracker, BodySplitAnywhereGivesTheSameMessage) {
  const std::string body = "Subject: hi\r\n\r\nline one\r\n..dot\r\n\xff\xfe binary\r\n";
  const Message whole = message_of({body});
  EXPECT_EQ(whole.size, body.size());
  std::vector<std::string_view> bytewise;
  for (std::size_t i = 0; i < body.size(); ++i)
    bytewise.push_back(std::string_view(body).substr(i, 1));
  const Message bytes = message_of(bytewise);
  EXPECT_EQ(bytes.size, whole.size);
  for (std::size_t p = 0; p <= body.size(); ++p) {
    const std::string_view b = body;
    const Message split = message_of({b.substr(0, p), b.substr(p)});
    EXPECT_EQ(split.size, whole.size) << "split at " << p;
  }
}

}  // namespace
}  // namespace mailtap::smtp
