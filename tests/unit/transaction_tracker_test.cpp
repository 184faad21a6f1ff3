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
  EXPECT_TRUE(tracker.open());
  EXPECT_EQ(tracker.current(), first);
  TransactionTracker::add_recipient(*first, {"RCPT TO:<b@example>", 250, "250 2.1.5 Ok"});
  tracker.add_body("hello\r\n");
  auto done = tracker.complete();
  EXPECT_EQ(done, first);
  EXPECT_FALSE(tracker.current());
  tracker.add_body("not part of any message\r\n");

  auto m = TransactionTracker::finish(*done, reply_of("250 2.0.0 Ok: queued as X\r\n"), t1);
  ASSERT_TRUE(m);
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
  EXPECT_FALSE(TransactionTracker::finish(*done, reply_of("250 again\r\n"), t1));

  auto second = tracker.begin("MAIL FROM:<c@example>", t1);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->message.transaction, 2u);
}

TEST(TransactionTracker, MailInsideAnOpenTransactionChangesNothing) {
  TransactionTracker tracker;
  auto first = tracker.begin("MAIL FROM:<a@example>", t0);
  EXPECT_FALSE(tracker.begin("MAIL FROM:<b@example>", t0));  // the server answers 503
  EXPECT_EQ(tracker.current(), first);
  EXPECT_EQ(first->message.mail_from, "MAIL FROM:<a@example>");
}

TEST(TransactionTracker, RefusedMailYieldsNoMessageAndFreesTheNextMail) {
  TransactionTracker tracker;
  auto refused = tracker.begin("MAIL FROM:<a@example>", t0);
  TransactionTracker::refused(*refused);
  EXPECT_FALSE(tracker.open());
  EXPECT_FALSE(TransactionTracker::finish(*refused, reply_of("250 Ok\r\n"), t1));
  auto next = tracker.begin("MAIL FROM:<b@example>", t0);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->message.transaction, 2u);
}

TEST(TransactionTracker, ResetEndsOnlyTheTransactionItWasSentIn) {
  TransactionTracker tracker;
  auto first = tracker.begin("MAIL FROM:<a@example>", t0);
  tracker.reset(nullptr);  // an RSET sent before that MAIL
  EXPECT_EQ(tracker.current(), first);
  tracker.reset(first);
  EXPECT_FALSE(tracker.current());
}

Message message_of(const std::vector<std::string_view>& reads) {
  TransactionTracker tracker;
  auto t = tracker.begin("MAIL FROM:<a@example>", t0);
  for (std::string_view r : reads) tracker.add_body(r);
  tracker.complete();
  return TransactionTracker::finish(*t, reply_of("250 Ok\r\n"), t1).value_or(Message{});
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
