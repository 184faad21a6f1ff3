// The owner takes what the dialogue records with take_events() / take_messages(), as it takes
// bytes with take_to_*(): in order, each once, the same as the dialogue that appends to the
// owner's vectors.
#include <gtest/gtest.h>

#include "tests/unit/dialogue_harness.hpp"

namespace mailtap::smtp::testing {
namespace {

const Script transaction = {
    client(ehlo),
    upstream(ehlo_reply),
    client("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"),
    upstream("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"),
    client("Subject: hi\n\n.\nend\r\n.\r\n"),
    upstream("250 2.0.0 Ok: queued as 4Xyz\r\n"),
    client("QUIT\r\n"),
    upstream("221 2.0.0 Bye\r\n"),
};

void feed(Dialogue& d, const Step& step) {
  if (step.side == Side::client) d.client_bytes(step.bytes);
  if (step.side == Side::upstream) d.upstream_bytes(step.bytes);
}

TEST(DialogueTakeEvents, TakenInOrderOnceAndTheSameAsTheAppendedRecord) {
  std::vector<RecordedEvent> appended;
  std::vector<Message> appended_messages;
  Dialogue reference(test_options(), appended, appended_messages);
  reference.relay_greeting(reply_of(greeting), Phase::tls);

  Dialogue d(test_options());
  d.relay_greeting(reply_of(greeting), Phase::tls);
  std::vector<RecordedEvent> taken;
  std::vector<Message> messages;
  for (const Step& step : transaction) {
    feed(reference, step);
    feed(d, step);
    for (RecordedEvent& e : d.take_events()) taken.push_back(std::move(e));
    for (Message& m : d.take_messages()) messages.push_back(std::move(m));
    EXPECT_TRUE(d.take_events().empty());  // each once
    EXPECT_TRUE(d.take_messages().empty());
  }
  EXPECT_TRUE(d.finished());
  const std::vector<Event> got = test_support::plain_events(taken);
  const std::vector<Event> want = test_support::plain_events(appended);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].kind, want[i].kind) << i;
    EXPECT_EQ(got[i].direction, want[i].direction) << i;
    EXPECT_EQ(got[i].verb, want[i].verb) << i;
    EXPECT_EQ(got[i].bytes, want[i].bytes) << i;
    EXPECT_EQ(got[i].note, want[i].note) << i;
  }
  ASSERT_EQ(messages.size(), 1u);
  ASSERT_EQ(appended_messages.size(), 1u);
  EXPECT_EQ(messages[0].transaction, 1u);
  EXPECT_EQ(messages[0].sha256_hex, appended_messages[0].sha256_hex);
  EXPECT_EQ(messages[0].final_reply, "250 2.0.0 Ok: queued as 4Xyz");
}

}  // namespace
}  // namespace mailtap::smtp::testing
