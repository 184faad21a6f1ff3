// ReplyParser: the upstream's bytes become whole replies, whatever the read boundaries, and a
// broken or hostile server meets a clear error instead of unbounded buffering.
#include "proxy/smtp/reply_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailtap::smtp {
namespace {

struct Parsed {
  std::vector<Reply> replies;
  ReplyParser::Error error = ReplyParser::Error::none;
  std::size_t buffered = 0;
};

Parsed parse_reads(const std::vector<std::string_view>& reads) {
  ReplyParser p;
  Parsed out;
  for (std::string_view r : reads) {
    p.feed(r);
    while (auto reply = p.next()) out.replies.push_back(std::move(*reply));
  }
  out.error = p.error();
  out.buffered = p.buffered();
  return out;
}

std::string describe(const Parsed& p) {
  std::string s;
  for (const Reply& r : p.replies) {
    s += std::to_string(r.code) + " es=" + r.enhanced_status +
         " raw=" + testing::PrintToString(r.raw) + " lines=";
    for (const std::string& l : r.lines) s += testing::PrintToString(l) + ",";
    s += "\n";
  }
  s += "error=" + std::to_string(static_cast<int>(p.error)) +
       " buffered=" + std::to_string(p.buffered);
  return s;
}

Parsed parse_all_splits(std::string_view input) {
  const Parsed whole = parse_reads({input});
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  EXPECT_EQ(describe(parse_reads(bytes)), describe(whole)) << "one byte at a time";
  for (std::size_t p = 1; p < input.size(); ++p)
    EXPECT_EQ(describe(parse_reads({input.substr(0, p), input.substr(p)})), describe(whole))
        << "split at " << p;
  return whole;
}

TEST(ReplyParser, SingleLineReplySplitMidCodeAndMidLine) {
  const Parsed p = parse_all_splits("250 2.1.0 Ok\r\n");
  ASSERT_EQ(p.replies.size(), 1u);
  EXPECT_EQ(p.replies[0].code, 250);
  EXPECT_EQ(p.replies[0].enhanced_status, "2.1.0");
  EXPECT_EQ(p.replies[0].text(), "2.1.0 Ok");
  EXPECT_EQ(p.replies[0].raw, "250 2.1.0 Ok\r\n");
  EXPECT_TRUE(p.replies[0].positive_completion());
  EXPECT_EQ(p.buffered, 0u);
}

TEST(ReplyParser, IncompleteReplyWaits) {
  ReplyParser p;
  p.feed("25");
  EXPECT_FALSE(p.next());
  p.feed("0-a\r\n250 b");
  EXPECT_FALSE(p.next());
  EXPECT_EQ(p.buffered(), 12u);
  p.feed("\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->lines, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.error(), ReplyParser::Error::none);
}

// The set-up reads the greeting; what came behind it in the same read goes on to the relay.
TEST(ReplyParser, WhatFollowsAReplyCanBeHandedOn) {
  ReplyParser p;
  p.feed("220 mx ESMTP\r\n250 unasked\r\n421 4.3");
  ASSERT_TRUE(p.next());
  EXPECT_EQ(p.take_buffered(), "250 unasked\r\n421 4.3");
  EXPECT_EQ(p.buffered(), 0u);
  EXPECT_FALSE(p.next());
  EXPECT_EQ(p.take_buffered(), "");
}

TEST(ReplyParser, MultiLineEhloReply) {
  const std::string raw =
      "250-smtp.example.com at your service\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n"
      "250-STARTTLS\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n";
  const Parsed p = parse_all_splits(raw + "354 go ahead\r\n");
  ASSERT_EQ(p.replies.size(), 2u);
  EXPECT_EQ(p.replies[0].raw, raw);
  EXPECT_EQ(p.replies[0].lines.size(), 6u);
  EXPECT_EQ(p.replies[0].lines[1], "SIZE 35882577");
  EXPECT_EQ(p.replies[1].code, 354);
  EXPECT_TRUE(p.replies[1].intermediate());
}

TEST(ReplyParser, SeveralRepliesInOneRead) {
  const Parsed p = parse_all_splits("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
  ASSERT_EQ(p.replies.size(), 4u);
  EXPECT_EQ(p.replies[2].code, 550);
  EXPECT_EQ(p.replies[2].enhanced_status, "5.1.1");
}

TEST(ReplyParser, BareCodeLineAndBareLfAreAccepted) {
  const Parsed p = parse_all_splits("250-a\n250\n220\r\n");
  ASSERT_EQ(p.replies.size(), 2u);
  EXPECT_EQ(p.replies[0].raw, "250-a\n250\n");  // relayed exactly as the server sent it
  EXPECT_EQ(p.replies[0].lines, (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(p.replies[1].text(), "");
}

TEST(ReplyParser, MalformedRepliesAreErrors) {
  for (std::string_view bad : {"hello\r\n", "25\r\n", "\r\n", "2500 x\r\n", "650 x\r\n",
                               "050 x\r\n", "25a x\r\n", "250-a\r\n251 b\r\n", "250_x\r\n"}) {
    const Parsed p = parse_all_splits(bad);
    EXPECT_TRUE(p.replies.empty()) << testing::PrintToString(bad);
    EXPECT_EQ(p.error, ReplyParser::Error::malformed) << testing::PrintToString(bad);
  }
  ReplyParser p;
  p.feed("hello\r\n250 ok\r\n");
  EXPECT_FALSE(p.next());
  EXPECT_FALSE(p.next());  // sticky: nothing after an error is trusted
  EXPECT_EQ(p.error_text(), "upstream sent a malformed reply");
}

// What was wrong, for the record's note: a code out of range is not "a line without its code".
TEST(ReplyParser, AMalformedReplysReasonNamesItsFault) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"650 weird\r\n", "reply code 650 is outside 100..599 (RFC 5321 §4.2)"},
      {"250-a\r\n050 b\r\n", "reply code 050 is outside 100..599 (RFC 5321 §4.2)"},
      {"250-a\r\n251 b\r\n", "a continuation line with another code than the reply's first"},
      {"250-a\r\nmore\n", "a line that does not begin with a reply code"},
      {"2500 x\r\n", "a line that does not begin with a reply code"},
  };
  for (const auto& [bad, reason] : cases) {
    ReplyParser p;
    p.feed(bad);
    EXPECT_FALSE(p.next());
    ASSERT_EQ(p.error(), ReplyParser::Error::malformed) << bad;
    EXPECT_TRUE(p.malformed_reason().starts_with(reason)) << bad << ": " << p.malformed_reason();
  }
}

TEST(ReplyParser, GoodRepliesBeforeAMalformedOneAreDelivered) {
  const Parsed p = parse_all_splits("250 ok\r\nbogus\r\n");
  ASSERT_EQ(p.replies.size(), 1u);
  EXPECT_EQ(p.error, ReplyParser::Error::malformed);
}

TEST(ReplyParser, OverLongLineIsAnErrorBeforeItEnds) {
  ReplyParser p;
  p.feed("250 " + std::string(ReplyParser::max_line, 'x'));
  EXPECT_FALSE(p.next());
  EXPECT_EQ(p.error(), ReplyParser::Error::line_too_long);
  EXPECT_EQ(p.error_text(), "upstream sent a reply line longer than 8192 octets");
}

TEST(ReplyParser, OverLongTerminatedLineIsAnError) {
  ReplyParser p;
  p.feed("250 " + std::string(ReplyParser::max_line, 'x') + "\r\n");
  EXPECT_FALSE(p.next());
  EXPECT_EQ(p.error(), ReplyParser::Error::line_too_long);
}

TEST(ReplyParser, OverLongMultiLineReplyIsAnError) {
  ReplyParser p;
  const std::string line = "250-" + std::string(1000, 'x') + "\r\n";
  std::size_t fed = 0;
  while (fed <= ReplyParser::max_reply) {
    p.feed(line);
    fed += line.size();
    EXPECT_FALSE(p.next());
  }
  EXPECT_EQ(p.error(), ReplyParser::Error::reply_too_long);
  EXPECT_EQ(p.error_text(), "upstream sent a reply longer than 256 KiB");
}

TEST(ReplyParser, LongSessionsStayBounded) {
  ReplyParser p;
  for (int i = 0; i < 10000; ++i) {
    p.feed("250 2.0.0 Ok\r\n");
    ASSERT_TRUE(p.next());
  }
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(EnhancedStatus, ParsesOnlyRfc3463Codes) {
  EXPECT_EQ(parse_enhanced_status("5.7.0 Must issue a STARTTLS command first"), "5.7.0");
  EXPECT_EQ(parse_enhanced_status("2.0.0"), "2.0.0");
  EXPECT_EQ(parse_enhanced_status("4.123.456 x"), "4.123.456");
  EXPECT_EQ(parse_enhanced_status("3.1.1 x"), "");
  EXPECT_EQ(parse_enhanced_status("5.1 x"), "");
  EXPECT_EQ(parse_enhanced_status("5.1.1x"), "");
  EXPECT_EQ(parse_enhanced_status("5.1234.1 x"), "");
  EXPECT_EQ(parse_enhanced_status("Ok"), "");
  EXPECT_EQ(parse_enhanced_status(""), "");
}

TEST(ReplySummary, TheCodeOnceThenEveryLinesText) {
  EXPECT_EQ(reply_summary("250-mx.example greets you\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"),
            "250 mx.example greets you; PIPELINING; SMTPUTF8");
  EXPECT_EQ(reply_summary("535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 more\r\n"),
            "535 5.7.8 Username and Password not accepted.; more");
  EXPECT_EQ(reply_summary("221 2.0.0 Bye\r\n"), "221 2.0.0 Bye");
  EXPECT_EQ(reply_summary("250-\r\n250 x\r\n"), "250 x");
  EXPECT_EQ(reply_summary("ab-c\nd"), "ab-c") << "no code: only cut at the line end";
  EXPECT_EQ(reply_summary(""), "");
}

// Exim's answer to BDAT ... LAST: the queue id is on the last line, and the first line's text
// starts with a blank.
TEST(ReplySummary, KeepsEximsQueueIdWithoutADoubledSpace) {
  EXPECT_EQ(reply_summary("250- 22 byte chunk, total 22\r\n250 OK id=1xaP4y-0007PF-29\r\n"),
            "250 22 byte chunk, total 22; OK id=1xaP4y-0007PF-29");
  EXPECT_EQ(reply_summary("250- 22 byte chunk, total 22\r\n250 OK id=1xaP4y\r\n421 x\r\n"),
            "250 22 byte chunk, total 22; OK id=1xaP4y")
      << "only one reply";
}

}  // namespace
}  // namespace mailtap::smtp
