// The EHLO filter: STARTTLS disappears from what the client sees, and the reply stays a
// well-formed multi-line reply whatever position the removed line had.
#include "proxy/smtp/capabilities.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>
#include "reply_of.hpp"

namespace mailtap::smtp {
namespace {

using test_support::reply_of;

std::string filtered(std::string_view raw, bool& removed) {
  return remove_starttls(reply_of(raw), removed);
}

// The filtered text must itself parse as one complete reply with nothing left over.
void expect_one_reply(std::string_view raw) {
  ReplyParser p;
  p.feed(raw);
  auto r = p.next();
  ASSERT_TRUE(r) << raw;
  EXPECT_EQ(r->raw, raw);
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(Capabilities, ParsesKeywordsAfterTheFirstLine) {
  const Capabilities c = parse_capabilities(
      reply_of("250-mx.example PIPELINING CHUNKING\r\n250-pipelining\r\n250-SIZE 1000\r\n"
               "250-AUTH PLAIN LOGIN\r\n250-StartTLS\r\n250 CHUNKING\r\n"));
  EXPECT_TRUE(c.pipelining);
  EXPECT_TRUE(c.chunking);
  EXPECT_TRUE(c.starttls);
  EXPECT_EQ(c.auth, "PLAIN LOGIN");
}

// SIZE's number limits BDAT (bdat_octets_allowed); one misread as "no limit" would let a chunk
// cross it, so leading zeros and trailing white space are read, and only no number or 0 is none.
TEST(Capabilities, SizeIsTheAdvertisedNumber) {
  const auto size_of = [](const std::string& line) {
    return parse_capabilities(reply_of("250-mx\r\n" + line + "\r\n250 CHUNKING\r\n")).size;
  };
  EXPECT_EQ(size_of("250-SIZE 20480"), 20480u);
  EXPECT_EQ(size_of("250-size 020480 "), 20480u);
  EXPECT_EQ(size_of("250-SIZE"), 0u);
  EXPECT_EQ(size_of("250-SIZE 0"), 0u);
  EXPECT_EQ(size_of("250-SIZE 99999999999999999999999"), UINT64_MAX);
  EXPECT_EQ(size_of("250-PIPELINING"), 0u);
  // EHLO parameters are SP-separated, but a server that puts a TAB there or words after the
  // number still has that limit: read as none, a chunk could cross it (fail closed). The
  // number counts; SIZE with no number at all sets no limit (RFC 1870).
  EXPECT_EQ(size_of("250-SIZE\t20480"), 20480u);
  EXPECT_EQ(size_of("250-SIZE 20480 extra"), 20480u);
  EXPECT_EQ(size_of("250-SIZE  20480"), 20480u);
  EXPECT_EQ(size_of("250-SIZE\t"), 0u);
  EXPECT_EQ(size_of("250-SIZE none"), 0u);
  EXPECT_EQ(size_of("250-SIZEX 20480"), 0u);
}

// Old servers write "SIZE=10240000" (not RFC 1870's "SIZE 10240000", as some write "AUTH=");
// it is that limit, and read as none it would let a chunk cross it. Postfix's client reads it so.
TEST(Capabilities, SizeAfterAnEqualsSignIsThatLimit) {
  const auto caps_of = [](const std::string& line) {
    return parse_capabilities(reply_of("250-mx\r\n" + line + "\r\n250 CHUNKING\r\n"));
  };
  EXPECT_EQ(caps_of("250-SIZE=10240000").size, 10240000u);
  EXPECT_FALSE(caps_of("250-SIZE=10240000").size_unreadable);
  EXPECT_EQ(caps_of("250-size=20480 extra").size, 20480u);
  EXPECT_EQ(caps_of("250-SIZE= 20480").size, 20480u);
  EXPECT_EQ(caps_of("250-SIZE=0").size, 0u);
  EXPECT_EQ(caps_of("250-SIZE=").size, 0u);  // as "SIZE": no number, no limit
  EXPECT_FALSE(caps_of("250-SIZE=").size_unreadable);
  // An upper bound bdat_octets_allowed keeps the margin below, as for "SIZE 10240000".
  EXPECT_EQ(bdat_octets_allowed(caps_of("250-SIZE=10240000").size), 10080000u);
}

// A SIZE parameter that does not begin with a digit says there is a limit without one mailtap
// can read: that is not "no limit" (the BDAT guard fails closed on it), whereas SIZE with no
// parameter and SIZE 0 are no limit (RFC 1870).
TEST(Capabilities, ASizeThatIsNoNumberIsUnreadableNotNoLimit) {
  const auto unreadable = [](const std::string& lines) {
    return parse_capabilities(reply_of("250-mx\r\n" + lines + "250 CHUNKING\r\n")).size_unreadable;
  };
  EXPECT_TRUE(unreadable("250-SIZE none\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE -1\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE\tunlimited\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE=abc\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE ==10\r\n"));
  EXPECT_FALSE(unreadable(""));
  EXPECT_FALSE(unreadable("250-SIZE\r\n"));
  EXPECT_FALSE(unreadable("250-SIZE \r\n"));
  EXPECT_FALSE(unreadable("250-SIZE 0\r\n"));
  EXPECT_FALSE(unreadable("250-SIZE 20480 extra\r\n"));
  EXPECT_FALSE(unreadable("250-SIZEX none\r\n"));
  // Digits that run into something else are no number mailtap can read: "0x1000000" and "0M"
  // read as 0 were no limit, "20480kb" as 20480 octets a limit the server did not give.
  EXPECT_TRUE(unreadable("250-SIZE 0x1000000\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE 0M\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE 20480kb\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE=10M\r\n"));
  // One SIZE line mailtap cannot read makes the limit unreadable, whichever line comes last.
  EXPECT_TRUE(unreadable("250-SIZE none\r\n250-SIZE 20480\r\n"));
  EXPECT_TRUE(unreadable("250-SIZE 20480\r\n250-SIZE none\r\n"));
}

// Several SIZE lines: no line lifts a limit another sets (a later bare SIZE or SIZE 0 after
// SIZE 20480 was read as no limit, and let chunks cross 20480); the smallest limit is in force.
TEST(Capabilities, OfSeveralSizeLinesTheSmallestLimitHolds) {
  const auto size_of = [](const std::string& lines) {
    return parse_capabilities(reply_of("250-mx\r\n" + lines + "250 CHUNKING\r\n")).size;
  };
  EXPECT_EQ(size_of("250-SIZE 20480\r\n250-SIZE\r\n"), 20480u);
  EXPECT_EQ(size_of("250-SIZE 20480\r\n250-SIZE 0\r\n"), 20480u);
  EXPECT_EQ(size_of("250-SIZE\r\n250-SIZE 20480\r\n"), 20480u);
  EXPECT_EQ(size_of("250-SIZE 20480\r\n250-SIZE 40960\r\n"), 20480u);
  EXPECT_EQ(size_of("250-SIZE 40960\r\n250-SIZE=20480\r\n"), 20480u);
  EXPECT_EQ(size_of("250-SIZE\r\n250-SIZE 0\r\n"), 0u);
}

// Whether there is a SIZE line at all (mailtap probe says "no limit announced" only then).
TEST(Capabilities, SizeAdvertisedWhateverItsParameter) {
  const auto advertised = [](const std::string& lines) {
    return parse_capabilities(reply_of("250-mx\r\n" + lines + "250 CHUNKING\r\n")).size_advertised;
  };
  EXPECT_FALSE(advertised(""));
  EXPECT_FALSE(advertised("250-SIZEX 1\r\n"));
  for (const char* line : {"250-SIZE\r\n", "250-SIZE 0\r\n", "250-size 20480\r\n", "250-SIZE=1\r\n",
                           "250-SIZE none\r\n"})
    EXPECT_TRUE(advertised(line)) << line;
}

TEST(Capabilities, BdatOctetsAllowedKeepAMarginBelowSize) {
  EXPECT_EQ(bdat_octets_allowed(0), std::nullopt);
  EXPECT_EQ(bdat_octets_allowed(20480), 20480u - 8192u);
  EXPECT_EQ(bdat_octets_allowed(8192), 0u);
  EXPECT_EQ(bdat_octets_allowed(100), 0u);
  EXPECT_EQ(bdat_octets_allowed(10240000), 10240000u - 10240000u / 64);
}

TEST(Capabilities, AuthMechanismsAreUpperCasedInTheServersOrder) {
  const Capabilities gmail = parse_capabilities(
      reply_of("250-smtp.gmail.com at your service\r\n250-SIZE 35882577\r\n"
               "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n"
               "250 SMTPUTF8\r\n"));
  EXPECT_EQ(gmail.auth_mechanisms,
            (std::vector<std::string>{"LOGIN", "PLAIN", "XOAUTH2", "PLAIN-CLIENTTOKEN",
                                      "OAUTHBEARER", "XOAUTH"}));
  EXPECT_TRUE(gmail.offers_auth("xoauth2"));
  EXPECT_FALSE(gmail.offers_auth("CRAM-MD5"));
}

TEST(Capabilities, AuthAndObsoleteAuthEqualsAreMergedOnce) {
  const Capabilities c = parse_capabilities(
      reply_of("250-mx\r\n250-AUTH=login PLAIN\r\n250-AUTH PLAIN LOGIN cram-md5\r\n250 OK\r\n"));
  EXPECT_EQ(c.auth_mechanisms, (std::vector<std::string>{"LOGIN", "PLAIN", "CRAM-MD5"}));
}

TEST(Capabilities, AuthWordsThatAreNotMechanismsAreLeftOut) {
  const Capabilities c = parse_capabilities(
      reply_of("250-mx\r\n250-AUTH  PLAIN bad/name THIS-NAME-IS-FAR-TOO-LONG-X LOGIN \r\n"
               "250 AUTH\r\n"));
  EXPECT_EQ(c.auth_mechanisms, (std::vector<std::string>{"PLAIN", "LOGIN"}));
  EXPECT_TRUE(parse_capabilities(reply_of("250-mx\r\n250 SIZE\r\n")).auth_mechanisms.empty());
}

TEST(Capabilities, GreetingLineIsNotAnExtension) {
  const Capabilities c = parse_capabilities(reply_of("250 CHUNKING\r\n"));
  EXPECT_FALSE(c.chunking);
}

TEST(Capabilities, KeywordMustMatchExactly) {
  const Capabilities c =
      parse_capabilities(reply_of("250-x\r\n250-CHUNKINGX\r\n250 XSTARTTLS\r\n"));
  EXPECT_FALSE(c.chunking);
  EXPECT_FALSE(c.starttls);
}

TEST(RemoveStarttls, MiddleLine) {
  bool removed = false;
  const std::string out =
      filtered("250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250-mx\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
  expect_one_reply(out);
}

TEST(RemoveStarttls, LastLine) {
  bool removed = false;
  const std::string out = filtered("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250-mx\r\n250 PIPELINING\r\n");
  expect_one_reply(out);
}

TEST(RemoveStarttls, OnlyExtension) {
  bool removed = false;
  const std::string out = filtered("250-mx.example greets you\r\n250 STARTTLS\r\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250 mx.example greets you\r\n");
  expect_one_reply(out);
}

TEST(RemoveStarttls, LowercaseKeyword) {
  bool removed = false;
  const std::string out = filtered("250-mx\r\n250-starttls\r\n250 SIZE 10\r\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250-mx\r\n250 SIZE 10\r\n");
}

TEST(RemoveStarttls, BareCodeLastLine) {
  bool removed = false;
  const std::string out = filtered("250-mx\r\n250-STARTTLS\r\n250\r\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250-mx\r\n250\r\n");
  expect_one_reply(out);
}

TEST(RemoveStarttls, BareCodeLineBecomingAMiddleLineGetsAMarker) {
  bool removed = false;
  const std::string out = filtered("250-mx\r\n250-\r\n250 STARTTLS\r\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250-mx\r\n250 \r\n");
  expect_one_reply(out);
}

TEST(RemoveStarttls, KeepsEachLineEndingByteForByte) {
  bool removed = false;
  const std::string out = filtered("250-mx\n250-STARTTLS\r\n250 SIZE\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250-mx\n250 SIZE\n");
}

TEST(RemoveStarttls, NothingToRemoveKeepsTheRawReply) {
  bool removed = true;
  const std::string raw = "250-mx\r\n250-XSTARTTLS\r\n250 STARTTLSFOO\r\n";
  EXPECT_EQ(filtered(raw, removed), raw);
  EXPECT_FALSE(removed);
  EXPECT_EQ(filtered("250 mx STARTTLS\r\n", removed), "250 mx STARTTLS\r\n");
  EXPECT_FALSE(removed);
}

TEST(RemoveStarttls, SeveralStarttlsLines) {
  bool removed = false;
  const std::string out =
      filtered("250-mx\r\n250-STARTTLS\r\n250-SIZE\r\n250 STARTTLS x\r\n", removed);
  EXPECT_TRUE(removed);
  EXPECT_EQ(out, "250-mx\r\n250 SIZE\r\n");
}

}  // namespace
}  // namespace mailtap::smtp
