// UpstreamOutput: relayed bytes gather in one piece; a line with a secret is a piece of its own;
// order is kept across appends.
#include "proxy/smtp/upstream_output.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <type_traits>

namespace mailtap::smtp {
namespace {

static_assert(!std::is_copy_constructible_v<UpstreamOutput>);
static_assert(std::is_nothrow_move_constructible_v<UpstreamOutput>);

TEST(UpstreamOutput, RelayedBytesGatherInOnePiece) {
  UpstreamOutput out;
  EXPECT_TRUE(out.empty());
  out.append("MAIL FROM:<a@x>\r\n");
  out.append("");
  out.append("RCPT TO:<b@y>\r\n");
  ASSERT_EQ(out.pieces().size(), 1u);
  EXPECT_FALSE(out.pieces()[0].holds_secret());
  EXPECT_EQ(out.pieces()[0].view(), "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
  EXPECT_EQ(out.size(), 32u);
}

TEST(UpstreamOutput, ASecretLineIsAPieceOfItsOwnInOrder) {
  UpstreamOutput out;
  out.append("EHLO x\r\n");
  out.append(Secret::copy_of("AUTH PLAIN AGEAYg==\r\n"));
  out.append(Secret());  // nothing: no piece
  out.append("MAIL FROM:<a@x>\r\n");
  ASSERT_EQ(out.pieces().size(), 3u);
  EXPECT_EQ(out.pieces()[0].view(), "EHLO x\r\n");
  EXPECT_TRUE(out.pieces()[1].holds_secret());
  EXPECT_EQ(out.pieces()[1].view(), "AUTH PLAIN AGEAYg==\r\n");
  EXPECT_FALSE(out.pieces()[2].holds_secret());
  EXPECT_EQ(out.size(), 8u + 21u + 17u);
}

TEST(UpstreamOutput, AppendingAnotherJoinsRelayedBytesAndKeepsSecretsApart) {
  UpstreamOutput queued;
  queued.append("NOOP\r\n");
  UpstreamOutput later;
  later.append("RSET\r\n");
  later.append(Secret::copy_of("dXNlcg==\r\n"));
  later.append("QUIT\r\n");
  queued.append(std::move(later));
  EXPECT_TRUE(later.empty());  // NOLINT(bugprone-use-after-move): documented to be left empty
  ASSERT_EQ(queued.pieces().size(), 3u);
  EXPECT_EQ(queued.pieces()[0].view(), "NOOP\r\nRSET\r\n");
  EXPECT_TRUE(queued.pieces()[1].holds_secret());
  EXPECT_EQ(queued.pieces()[2].view(), "QUIT\r\n");
  EXPECT_EQ(queued.size(), 12u + 10u + 6u);

  UpstreamOutput empty;
  empty.append(std::move(queued));
  EXPECT_EQ(empty.pieces().size(), 3u);
  EXPECT_EQ(empty.size(), 28u);
  EXPECT_TRUE(queued.empty());  // NOLINT(bugprone-use-after-move)

  UpstreamOutput moved = std::move(empty);
  EXPECT_EQ(moved.size(), 28u);
  EXPECT_TRUE(empty.empty());  // NOLINT(bugprone-use-after-move): a moved-from output is empty
  EXPECT_TRUE(empty.pieces().empty());  // NOLINT(bugprone-use-after-move)
}

TEST(UpstreamOutput, ASecretPieceIsNeverJoinedWithLaterBytes) {
  UpstreamOutput out;
  out.append(Secret::copy_of("AUTH PLAIN AGEAYg==\r\n"));
  UpstreamOutput later;
  later.append("MAIL FROM:<a@x>\r\n");
  out.append(std::move(later));
  ASSERT_EQ(out.pieces().size(), 2u);
  EXPECT_TRUE(out.pieces()[0].holds_secret());
  EXPECT_EQ(out.pieces()[1].view(), "MAIL FROM:<a@x>\r\n");
}

// What a socket took in part, at every cut: the rest is exactly the octets not yet written, in
// order, and a secret line cut in two stays a secret piece of its own.
TEST(UpstreamOutput, DroppingWhatWentOutLeavesExactlyTheRest) {
  const std::string relayed = "RSET\r\n";
  const std::string secret = "AGEAYg==\r\n";
  const std::string after = "QUIT\r\n";
  const std::string all = relayed + secret + after;
  for (std::size_t cut = 0; cut <= all.size() + 1; ++cut) {
    UpstreamOutput out;
    out.append(relayed);
    out.append(Secret::copy_of(secret));
    out.append(after);
    out.drop_front(cut);
    const std::string rest = all.substr(std::min(cut, all.size()));
    std::string joined;
    for (const UpstreamOutput::Piece& piece : out.pieces()) joined += piece.view();
    EXPECT_EQ(joined, rest) << "cut at " << cut;
    EXPECT_EQ(out.size(), rest.size()) << "cut at " << cut;
    EXPECT_EQ(out.empty(), rest.empty()) << "cut at " << cut;
    const bool secret_left = cut < relayed.size() + secret.size();
    const std::size_t secret_index = cut < relayed.size() ? 1 : 0;
    if (secret_left) {
      ASSERT_GT(out.pieces().size(), secret_index) << "cut at " << cut;
      EXPECT_TRUE(out.pieces()[secret_index].holds_secret()) << "cut at " << cut;
    }
    if (!secret_left) {
      for (const UpstreamOutput::Piece& piece : out.pieces()) {
        EXPECT_FALSE(piece.holds_secret()) << "cut at " << cut;
      }
    }
  }
}

// mailtap's own lines are pieces of their own, never joined with the client's, so that what
// a session drops unwritten can be counted in the client's octets (relayed_size).
TEST(UpstreamOutput, OwnLinesAreApartAndNotCountedAsRelayed) {
  UpstreamOutput out;
  out.append("RSET\r\n");
  out.append_own("QUIT\r\n");
  out.append("NOOP\r\n");
  out.append_own(Secret::copy_of("AUTH PLAIN AGEAYg==\r\n"));
  EXPECT_EQ(out.size(), 6u + 6u + 6u + 21u);
  EXPECT_EQ(out.relayed_size(), 12u);
  out.drop_front(8);  // RSET and two octets of QUIT went out
  EXPECT_EQ(out.relayed_size(), 6u);
  const UpstreamOutput::Piece rest_of_quit = out.take_front();
  EXPECT_FALSE(rest_of_quit.relayed());
  EXPECT_EQ(rest_of_quit.view(), "IT\r\n");
  EXPECT_EQ(out.relayed_size(), 6u);
  EXPECT_EQ(out.size(), 6u + 21u);
  UpstreamOutput joined;
  joined.append("MAIL FROM:<a@x>\r\n");
  UpstreamOutput own;
  own.append_own("QUIT\r\n");
  joined.append(std::move(own));
  joined.append("RSET\r\n");
  ASSERT_EQ(joined.pieces().size(), 3u);
  EXPECT_EQ(joined.relayed_size(), 17u + 6u);
}

// What a link reports unsent is the tail of what it was handed: the client's octets in it are
// counted from the end, across owners, and what is forgotten no longer counts.
TEST(HandedTail, TheClientsOctetsInTheLastOnesHanded) {
  HandedTail tail;
  EXPECT_EQ(tail.relayed_in_last(10), 0u);
  tail.add(100, /*relayed=*/true);
  tail.add(0, /*relayed=*/false);  // nothing: no run
  tail.add(6, /*relayed=*/false);  // mailtap's own QUIT
  tail.add(50, /*relayed=*/true);
  tail.add(30, /*relayed=*/true);  // joins the run before
  EXPECT_EQ(tail.size(), 186u);
  EXPECT_EQ(tail.relayed_in_last(0), 0u);
  EXPECT_EQ(tail.relayed_in_last(80), 80u);
  EXPECT_EQ(tail.relayed_in_last(83), 80u);
  EXPECT_EQ(tail.relayed_in_last(90), 84u);
  EXPECT_EQ(tail.relayed_in_last(186), 180u);
  EXPECT_EQ(tail.relayed_in_last(1000), 180u);  // no more than was handed

  tail.keep_last(83);  // into mailtap's own line: half of it is kept
  EXPECT_EQ(tail.size(), 83u);
  EXPECT_EQ(tail.relayed_in_last(1000), 80u);
  tail.keep_last(200);  // more than is kept: nothing changes
  EXPECT_EQ(tail.size(), 83u);
  tail.keep_last(0);
  EXPECT_EQ(tail.size(), 0u);
  EXPECT_EQ(tail.relayed_in_last(10), 0u);
  tail.add(7, /*relayed=*/true);
  EXPECT_EQ(tail.relayed_in_last(10), 7u);
  tail.clear();
  EXPECT_EQ(tail.relayed_in_last(10), 0u);
}

}  // namespace
}  // namespace mailtap::smtp
