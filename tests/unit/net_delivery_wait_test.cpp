// DeliveryWait: when the reply's clock starts (the server has all the reply is owed for), and
// what restarts the clock for taking it until then.
#include "proxy/net/delivery_wait.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>

namespace mailtap::net {
namespace {

using Clock = DeliveryWait::Clock;
using std::chrono::seconds;

constexpr std::uint64_t kKiB = 1024;
const Clock::time_point t0{seconds(1000)};

Clock::time_point at(int s) {
  return t0 + seconds(s);
}

TEST(DeliveryWaitTest, NoReplyOwedIsNoWait) {
  DeliveryWait wait;
  EXPECT_FALSE(wait.active());
  EXPECT_FALSE(wait.waiting());
  wait.begin(100, {100, 100}, at(0));
  wait.end();
  EXPECT_FALSE(wait.waiting());
  wait.observe({100, 100}, 100, at(5));  // no wait: nothing changes
  EXPECT_EQ(wait.since(), at(0));
}

TEST(DeliveryWaitTest, TheReplyClockStartsWhenTheKernelHasNothingLeftOfTheCommand) {
  DeliveryWait wait;
  wait.begin(100, {100, 300}, at(0));  // all left mailtap at once; the socket holds 300 in all
  EXPECT_TRUE(wait.waiting());
  EXPECT_EQ(wait.since(), at(0));
  wait.observe({100, 300}, 50, at(1));  // 50 octets not acknowledged: not all there yet
  EXPECT_TRUE(wait.waiting());
  wait.observe({100, 300}, 0, at(2));
  EXPECT_FALSE(wait.waiting());
  EXPECT_TRUE(wait.active());
  EXPECT_EQ(wait.since(), at(2));
}

TEST(DeliveryWaitTest, OctetsWrittenAfterTheCommandDoNotHoldItsReply) {
  DeliveryWait wait;
  wait.begin(100, {100, 300}, at(0));
  wait.observe({100, 300}, 300, at(1));
  // 700 more octets went onto the socket since; the kernel holds 600 of the 1000: the first 400,
  // the command's 300 among them, are acknowledged.
  wait.observe({900, 1000}, 600, at(2));
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(2));
}

// The hot path: no look as a command's wait begins. The watchdog's first look may come up to a
// second later; it starts the reply's clock no later than look_interval after the turn began.
TEST(DeliveryWaitTest, ALateFirstLookStartsTheClockWhenALookSoonWouldHave) {
  DeliveryWait wait;
  wait.begin(100, {100, 300}, at(0));  // all of it in the kernel, and little else there
  EXPECT_TRUE(wait.waiting());
  EXPECT_TRUE(wait.first_look_may_wait());
  wait.observe({100, 300}, 0, at(1));  // a second late: the server has it all
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(0) + DeliveryWait::look_interval);
}

TEST(DeliveryWaitTest, ALookThatFindsItNotThereYetEndsTheShortcut) {
  DeliveryWait wait;
  wait.begin(100, {100, 300}, at(0));
  wait.observe({100, 300}, 100, at(1));  // a round trip longer than look_interval
  wait.observe({100, 300}, 0, at(2));
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(2));
}

TEST(DeliveryWaitTest, MuchInTheKernelOrInTheOwnerWantsALookSoon) {
  DeliveryWait behind_a_body;  // the end of a body: megabytes in the kernel ahead of it
  behind_a_body.begin(4096 * kKiB, {4096 * kKiB, 4096 * kKiB}, at(0));
  EXPECT_FALSE(behind_a_body.first_look_may_wait());
  behind_a_body.observe({4096 * kKiB, 4096 * kKiB}, 0, at(1));
  EXPECT_EQ(behind_a_body.since(), at(1));

  DeliveryWait in_the_owner;  // the socket had no room for all of it
  in_the_owner.begin(100, {50, 50}, at(0));
  EXPECT_FALSE(in_the_owner.first_look_may_wait());
}

TEST(DeliveryWaitTest, WhatTheServerAnsweredIsNotCountedAsInTheKernel) {
  DeliveryWait wait;
  wait.begin(4096 * kKiB, {4096 * kKiB, 4096 * kKiB}, at(0));
  EXPECT_FALSE(wait.first_look_may_wait());
  // Its reply came: the server had all the socket took. The next command is all that the
  // kernel may hold.
  wait.answered(4096 * kKiB, {4096 * kKiB, 4096 * kKiB}, at(1));
  wait.end();
  wait.begin(4096 * kKiB + 20, {4096 * kKiB + 20, 4096 * kKiB + 50}, at(2));
  EXPECT_TRUE(wait.waiting());
  EXPECT_TRUE(wait.first_look_may_wait());
  // A reply to an earlier command, with more gone out since, says nothing of the rest.
  wait.answered(4096 * kKiB, {4096 * kKiB + 20, 4096 * kKiB + 50}, at(3));
  wait.end();
  wait.begin(8192 * kKiB, {8192 * kKiB, 8192 * kKiB}, at(4));
  EXPECT_FALSE(wait.first_look_may_wait());
}

TEST(DeliveryWaitTest, OutputStillInMailtapIsTakenAPieceAtATime) {
  DeliveryWait wait;
  const std::uint64_t through = 1024 * kKiB;
  wait.begin(through, {0, 0}, at(0));
  wait.observe({60 * kKiB, 60 * kKiB}, std::nullopt, at(1));  // less than a piece: no restart
  EXPECT_EQ(wait.since(), at(0));
  wait.observe({64 * kKiB, 64 * kKiB}, std::nullopt, at(2));
  EXPECT_EQ(wait.since(), at(2));
  wait.observe({100 * kKiB, 100 * kKiB}, std::nullopt, at(3));
  EXPECT_EQ(wait.since(), at(2));
  EXPECT_TRUE(wait.waiting());
}

TEST(DeliveryWaitTest, WhatTheServerAcknowledgesIsProgressWhileTheWriterSeesNone) {
  // The socket reports room only once half its queue went: the octets leaving mailtap stand
  // still while the server reads on.
  DeliveryWait wait;
  wait.begin(4096 * kKiB, {1024 * kKiB, 3072 * kKiB}, at(0));
  wait.observe({1024 * kKiB, 3072 * kKiB}, 2048 * kKiB, at(1));  // the first count: no restart
  EXPECT_EQ(wait.since(), at(0));
  wait.observe({1024 * kKiB, 3072 * kKiB}, 2000 * kKiB, at(2));  // 48 KiB more: not a piece
  EXPECT_EQ(wait.since(), at(0));
  wait.observe({1024 * kKiB, 3072 * kKiB}, 1984 * kKiB, at(3));  // 64 KiB more
  EXPECT_EQ(wait.since(), at(3));
  EXPECT_TRUE(wait.waiting());
}

TEST(DeliveryWaitTest, TheKernelsQueueIsTakenAPieceAtATimeToo) {
  DeliveryWait wait;
  wait.begin(100, {100, 4096 * kKiB}, at(0));
  wait.observe({100, 4096 * kKiB}, 3000 * kKiB, at(1));
  wait.observe({100, 4096 * kKiB}, 2900 * kKiB, at(2));
  EXPECT_EQ(wait.since(), at(2));
  wait.observe({100, 4096 * kKiB}, 2890 * kKiB, at(3));
  EXPECT_EQ(wait.since(), at(2));
  wait.observe({100, 4096 * kKiB}, 0, at(9));
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(9));
}

TEST(DeliveryWaitTest, TheLastOctetsLeavingMailtapAreProgress) {
  DeliveryWait wait;
  wait.begin(100 * kKiB, {90 * kKiB, 90 * kKiB}, at(0));
  wait.observe({100 * kKiB, 100 * kKiB}, 10 * kKiB, at(1));
  EXPECT_EQ(wait.since(), at(1));
  EXPECT_TRUE(wait.waiting());
}

TEST(DeliveryWaitTest, WithoutTheKernelsCountTheCommandIsTheServersOnceItLeftMailtap) {
  DeliveryWait wait;
  wait.begin(100, {50, 50}, at(0));
  wait.observe({50, 50}, std::nullopt, at(1));
  EXPECT_TRUE(wait.waiting());
  wait.observe({100, 100}, std::nullopt, at(2));
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(2));
}

TEST(DeliveryWaitTest, AReplyLineRestartsTheClockOfAServerThatHasEverything) {
  DeliveryWait wait;
  wait.begin(100, {100, 100}, at(0));
  wait.observe({100, 100}, 0, at(1));
  ASSERT_FALSE(wait.waiting());
  wait.begin(100, {100, 100}, at(4));  // a line of a multi-line reply: nothing new to take
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(4));
  wait.end();
  wait.begin(150, {150, 150}, at(6));  // the next command: to be taken again
  EXPECT_TRUE(wait.waiting());
}

TEST(DeliveryWaitTest, BegunAgainForTheSameOctetsWhereTheyHadGotTo) {
  DeliveryWait wait;
  wait.begin(100, {100, 300}, at(0));  // left mailtap when the socket had taken 300
  wait.begin(100, {100, 900}, at(2));  // a reply line came; 600 more octets written since
  EXPECT_EQ(wait.since(), at(2));
  wait.observe({100, 900}, 600, at(3));  // the first 300 are acknowledged: all of the command
  EXPECT_FALSE(wait.waiting());
}

TEST(DeliveryWaitTest, AnAnswerSaysTheServerHadWhatItAnswers) {
  DeliveryWait wait;
  wait.begin(100, {100, 300}, at(0));    // the kernel has not said the server has it
  wait.answered(60, {100, 300}, at(1));  // a reply line to a command before the last: not all
  EXPECT_TRUE(wait.waiting());
  wait.answered(100, {100, 300}, at(2));  // to the last command queued: the server had it all
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(2));
  wait.end();
  wait.answered(150, {150, 350}, at(3));  // answered before the next turn began: had at once
  wait.begin(150, {150, 350}, at(4));
  EXPECT_FALSE(wait.waiting());
  EXPECT_EQ(wait.since(), at(4));
}

}  // namespace
}  // namespace mailtap::net
