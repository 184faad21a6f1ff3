#include "proxy/smtp/message_body.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailtap::smtp {
namespace {

using namespace std::string_literals;

// Every way of cutting the recorded DATA text into events gives the same body.
std::string assembled_every_way(const std::string& wire, bool via_bdat) {
  MessageBodyAssembler whole(via_bdat);
  whole.append(wire);
  const std::string expected = whole.take();
  MessageBodyAssembler bytewise(via_bdat);
  for (char c : wire) bytewise.append(std::string_view(&c, 1));
  EXPECT_EQ(bytewise.take(), expected) << "byte by byte";
  for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
    MessageBodyAssembler two(via_bdat);
    two.append(std::string_view(wire).substr(0, cut));
    two.append(std::string_view(wire).substr(cut));
    EXPECT_EQ(two.take(), expected) << "cut at " << cut;
  }
  return expected;
}

// The unstuffer skips from dot to dot; fed one octet at a time it walks every line start
// instead. Both walks, and every cut in two, agree on texts full of dots, CRs and LFs.
TEST(MessageBody, DotToDotAgreesWithLineByLineOnRandomText) {
  std::uint32_t seed = 12345;
  const auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 24;
  };
  const char alphabet[] = {'.', '.', '\r', '\n', '\n', 'a', 'b'};
  for (int round = 0; round < 300; ++round) {
    std::string wire;
    const std::size_t length = next() % 40;
    for (std::size_t i = 0; i < length; ++i) wire += alphabet[next() % sizeof alphabet];
    if (round % 2 == 0) wire += "\r\n.\r\n";
    assembled_every_way(wire, /*via_bdat=*/false);
  }
}

TEST(MessageBody, DataTextLosesTransparencyDotsAndTheTerminator) {
  EXPECT_EQ(assembled_every_way("Subject: hi\r\n\r\n..dot\r\n...two\r\nend\r\n.\r\n", false),
            "Subject: hi\r\n\r\n.dot\r\n..two\r\nend\r\n");
}

TEST(MessageBody, EmptyBodyIsJustTheTerminator) {
  EXPECT_EQ(assembled_every_way(".\r\n", false), "");
}

TEST(MessageBody, ADoubledLoneDotIsText) {
  EXPECT_EQ(assembled_every_way("a\r\n..\r\nb\r\n.\r\n", false), "a\r\n.\r\nb\r\n");
}

TEST(MessageBody, ABodyCutAtMaxBodyKeepsWhatWasRecorded) {
  // No terminator: the record stopped inside the message.
  EXPECT_EQ(assembled_every_way("line one\r\n..li", false), "line one\r\n.li");
  EXPECT_EQ(assembled_every_way("line one\r\n.", false), "line one\r\n");
  // A doubled lone dot cut anywhere: the dot and what followed it of its line are text.
  EXPECT_EQ(assembled_every_way("a\r\n..", false), "a\r\n.");
  EXPECT_EQ(assembled_every_way("a\r\n..\r", false), "a\r\n.\r");
}

TEST(MessageBody, BdatChunksAreConcatenatedAsTheyAre) {
  EXPECT_EQ(assembled_every_way("..\r\n.\r\n\0x"s, true), "..\r\n.\r\n\0x"s);
}

TEST(MessageBody, EventsOfOtherTransactionsAndKindsAreNotPartOfIt) {
  Message m;
  m.transaction = 2;
  std::vector<Event> events(4);
  events[0].kind = EventKind::data;
  events[0].transaction = 1;
  events[0].bytes = "first\r\n.\r\n";
  events[1].kind = EventKind::data;
  events[1].transaction = 2;
  events[1].bytes = "sec";
  events[2].kind = EventKind::note;
  events[2].transaction = 2;
  events[2].bytes = "not body";
  events[3].kind = EventKind::data;
  events[3].transaction = 2;
  events[3].bytes = "ond\r\n.\r\n";
  EXPECT_EQ(body_from_events(m, events), "second\r\n");
}

}  // namespace
}  // namespace mailtap::smtp
