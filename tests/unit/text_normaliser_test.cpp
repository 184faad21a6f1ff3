// TextNormaliser: what a client typed becomes canonical text (CRLF only, no telnet), and the
// result never depends on how the bytes were split into reads.
#include "proxy/smtp/text_normaliser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace mailtap::smtp {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

struct Normalised {
  std::string text;
  std::vector<std::size_t> line_ends;  // offsets in text right after each CRLF
  std::vector<std::string> faults;     // per line: why it must be refused, or empty
  std::vector<LineEnd> ends;           // per line: how the client ended it
  RewriteCounts rewrites;
};

// Feeds `reads` the way the dialogue does: bytes not consumed stay buffered for the next read.
Normalised normalise_reads(const std::vector<std::string_view>& reads,
                           TextRules rules = command_text) {
  TextNormaliser n;
  Normalised out;
  std::string backlog;
  for (std::string_view r : reads) {
    backlog.append(r);
    std::size_t pos = 0;
    while (pos < backlog.size()) {
      const std::size_t before = out.text.size();
      const std::size_t used = n.normalise(std::string_view(backlog).substr(pos), out.text, rules);
      pos += used;
      if (out.text.size() >= 2 && out.text.size() > before &&
          out.text.compare(out.text.size() - 2, 2, "\r\n") == 0) {
        out.line_ends.push_back(out.text.size());
        out.faults.emplace_back(n.take_telnet_fault());
        out.ends.push_back(n.last_line_end());
      }
      // A bare CR is only known when the next byte arrives: that call writes CRLF without
      // consuming the byte. No progress at all means the normaliser wants more input.
      if (used == 0 && out.text.size() == before) break;
    }
    backlog.erase(0, pos);
  }
  out.rewrites = n.take_rewrites();
  return out;
}

std::string describe(const Normalised& n) {
  std::string s = "text=[";
  for (unsigned char c : n.text) {
    if (c >= 0x20 && c < 0x7f) {
      s.push_back(static_cast<char>(c));
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      s += "\\x";
      s.push_back(hex[c >> 4]);
      s.push_back(hex[c & 15]);
    }
  }
  s += "] ends=";
  for (std::size_t e : n.line_ends) s += std::to_string(e) + ",";
  s += " faults=";
  for (const std::string& f : n.faults) s += "[" + f + "]";
  s += " ends=";
  for (LineEnd e : n.ends) s += std::string(to_string(e)) + ",";
  s += " rewrites=" + n.rewrites.describe();
  return s;
}

// Whole, one byte at a time, and split at every position into two reads: identical results.
Normalised normalise_all_splits(std::string_view input, TextRules rules = command_text) {
  const Normalised whole = normalise_reads({input}, rules);
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  EXPECT_EQ(describe(normalise_reads(bytes, rules)), describe(whole)) << "one byte at a time";
  for (std::size_t p = 1; p < input.size(); ++p)
    EXPECT_EQ(describe(normalise_reads({input.substr(0, p), input.substr(p)}, rules)),
              describe(whole))
        << "split at " << p;
  return whole;
}

void expect_no_bare_cr_or_lf(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      ASSERT_TRUE(i + 1 < text.size() && text[i + 1] == '\n') << "bare CR at " << i;
    } else if (text[i] == '\n') {
      ASSERT_TRUE(i > 0 && text[i - 1] == '\r') << "bare LF at " << i;
    }
  }
}

TEST(TextNormaliser, CrlfIsKeptAndEndsEachLine) {
  const Normalised n = normalise_all_splits("EHLO me\r\nMAIL FROM:<a@b>\r\n");
  EXPECT_EQ(n.text, "EHLO me\r\nMAIL FROM:<a@b>\r\n");
  EXPECT_EQ(n.line_ends, (std::vector<std::size_t>{9, 26}));
  EXPECT_FALSE(n.rewrites.any());
}

TEST(TextNormaliser, StopsRightAfterEachCrlf) {
  TextNormaliser n;
  std::string out;
  EXPECT_EQ(n.normalise("A\r\nB\r\n", out), 3u);
  EXPECT_EQ(out, "A\r\n");
  EXPECT_EQ(n.normalise("B\r\n", out), 3u);
  EXPECT_EQ(out, "A\r\nB\r\n");
  EXPECT_TRUE(n.idle());
}

TEST(TextNormaliser, BareLfBecomesCrlf) {
  const Normalised n = normalise_all_splits("EHLO me\nQUIT\n");
  EXPECT_EQ(n.text, "EHLO me\r\nQUIT\r\n");
  EXPECT_EQ(n.rewrites.bare_lf, 2u);
  EXPECT_EQ(n.rewrites.bare_cr, 0u);
  EXPECT_EQ(n.rewrites.describe(), "bare LF normalised to CRLF (2x)");
}

TEST(TextNormaliser, BareCrBecomesCrlf) {
  const Normalised n = normalise_all_splits("EHLO me\rQUIT\r\n");
  EXPECT_EQ(n.text, "EHLO me\r\nQUIT\r\n");
  EXPECT_EQ(n.rewrites.bare_cr, 1u);
  EXPECT_EQ(n.rewrites.bare_lf, 0u);
}

TEST(TextNormaliser, CrCrLfIsABareCrThenACrlf) {
  const Normalised n = normalise_all_splits("A\r\r\nB\r\n");
  EXPECT_EQ(n.text, "A\r\n\r\nB\r\n");
  EXPECT_EQ(n.line_ends, (std::vector<std::size_t>{3, 5, 8}));
  EXPECT_EQ(n.rewrites.bare_cr, 1u);
}

// In a message body of a client whose line ending is not the bare CR, CRs right before a CRLF
// belong to it (a CRLF written through a text-mode stream): one line, not a line and an empty
// one, which would end the message's header early.
TEST(TextNormaliser, CrsBeforeACrlfJoinItWhereTheRulesSaySo) {
  const TextRules body{.telnet_iac = false, .cr_nul = false, .cr_crlf = true};
  const Normalised n = normalise_all_splits("A\r\r\nB\r\r\r\nC\r\rD\r\n", body);
  EXPECT_EQ(n.text, "A\r\nB\r\nC\r\n\r\nD\r\n");
  EXPECT_EQ(n.ends, (std::vector<LineEnd>{LineEnd::cr_crlf, LineEnd::cr_crlf, LineEnd::cr,
                                          LineEnd::cr, LineEnd::crlf}));
  EXPECT_EQ(n.rewrites.cr_before_crlf, 3u);
  EXPECT_EQ(n.rewrites.bare_cr, 2u);
  EXPECT_EQ(n.rewrites.describe(), "bare CR normalised to CRLF (2x); CR before CRLF removed (3x)");
  EXPECT_TRUE(is_client_text_rewrite_note("CR before CRLF removed (3x)"));
  EXPECT_EQ(escaped(LineEnd::cr_crlf), "\\r\\r\\n");
  // A telnet NVT's CR NUL after a CR: a bare CR, then its own line ending.
  const TextRules telnet_body{.telnet_iac = false, .cr_nul = true, .cr_crlf = true};
  const Normalised t = normalise_all_splits("A\r\r\0B\r\n"s, telnet_body);
  EXPECT_EQ(t.text, std::string("A\r\n\r\nB\r\n"));
  EXPECT_EQ(t.ends, (std::vector<LineEnd>{LineEnd::cr, LineEnd::cr_nul, LineEnd::crlf}));
}

// For a client whose line ending a bare CR is, a held CR ends its line whatever follows: the
// line can be ended before the next octet comes, and an LF that then comes is skipped.
TEST(TextNormaliser, ALineEndedAtAHeldCrSkipsTheLfAfterIt) {
  const TextRules body{.telnet_iac = false, .cr_nul = false, .cr_crlf = false};
  TextNormaliser n;
  std::string out;
  EXPECT_EQ(n.normalise(".\r", out, body), 2u);
  ASSERT_TRUE(n.cr_held());
  EXPECT_FALSE(n.idle());
  n.end_at_held_cr(out);
  EXPECT_EQ(out, ".\r\n");
  EXPECT_EQ(n.last_line_end(), LineEnd::cr);
  EXPECT_FALSE(n.idle()) << "an LF may still follow";
  EXPECT_EQ(n.normalise("\nQUIT\r\n", out, command_text), 7u);
  EXPECT_EQ(out, ".\r\nQUIT\r\n");
  EXPECT_FALSE(n.take_rewrites().any()) << "a CR ended so is not counted";
  EXPECT_TRUE(n.idle());

  TextNormaliser m;
  out.clear();
  m.normalise("x\r", out, body);
  m.end_at_held_cr(out);
  EXPECT_EQ(m.normalise("y\r\n", out, body), 3u);
  EXPECT_EQ(out, "x\r\ny\r\n");
  EXPECT_FALSE(m.take_rewrites().any()) << "nor when no LF comes";
}

// A command line ended at its CR (a client's first line, when the ending is not known yet):
// the octets after it say what the CR was, and are counted then, once.
TEST(TextNormaliser, ALineEndedAtItsCrIsSettledByTheOctetsAfterIt) {
  const TextRules first{.telnet_iac = false, .cr_nul = true, .cr_crlf = true};
  struct Case {
    std::string after;
    std::size_t consumed;
    LineEnd end;
    std::string counted;
  };
  using namespace std::string_literals;
  const std::vector<Case> cases = {
      {"\nX", 1, LineEnd::crlf, ""},
      {"\0X"s, 1, LineEnd::cr_nul, "bare CR normalised to CRLF (1x)"},
      {"X", 0, LineEnd::cr, "bare CR normalised to CRLF (1x)"},
      {"\r\nX", 2, LineEnd::cr_crlf, "CR before CRLF removed (1x)"},
      {"\r\rX", 2, LineEnd::cr, "bare CR normalised to CRLF (1x)"},
  };
  for (const Case& c : cases) {
    for (std::size_t cut = 0; cut <= c.after.size(); ++cut) {
      TextNormaliser n;
      std::string out;
      EXPECT_EQ(n.normalise("EHLO a\r", out, TextRules{.cr_crlf = true, .stop_at_cr = true}), 7u);
      n.end_at_held_cr(out, /*count=*/true);
      EXPECT_EQ(out, "EHLO a\r\n");
      EXPECT_TRUE(n.ended_cr_pending());
      const std::string_view a(c.after);
      std::size_t used = n.settle_ended_cr(a.substr(0, cut), first);
      if (n.ended_cr_pending()) used += n.settle_ended_cr(a.substr(used), first);
      ASSERT_FALSE(n.ended_cr_pending()) << c.after;
      EXPECT_EQ(used, c.consumed) << c.after;
      EXPECT_EQ(n.last_line_end(), c.end) << c.after;
      EXPECT_EQ(n.take_rewrites().describe(), c.counted) << c.after;
      // The CRs joined and then left bare each end an empty line.
      out.clear();
      std::size_t at = used;
      for (int i = 0; i < 4 && at < a.size(); ++i)
        at += n.normalise(a.substr(at), out, TextRules{.cr_nul = false});
      if (c.after == "\r\rX") {
        EXPECT_EQ(out, "\r\n\r\nX");
      }
    }
  }
}

TEST(TextNormaliser, TelnetCrNulIsABareCr) {
  const Normalised n = normalise_all_splits(std::string_view("A\r\0B\r\n", 6));
  EXPECT_EQ(n.text, "A\r\nB\r\n");
  EXPECT_EQ(n.rewrites.bare_cr, 1u);
}

// CR NUL is its own kind of line ending (a telnet NVT's), told apart from a bare CR; where NUL
// is data (a body of a client whose line ending is not CR NUL) the line ending is a bare CR.
TEST(TextNormaliser, CrNulIsToldApartFromABareCr) {
  const Normalised n = normalise_all_splits(std::string_view("A\r\0B\rC\r\n", 9));
  EXPECT_EQ(n.ends, (std::vector<LineEnd>{LineEnd::cr_nul, LineEnd::cr, LineEnd::crlf}));
  EXPECT_EQ(to_string(LineEnd::cr_nul), "CR NUL");
  EXPECT_EQ(escaped(LineEnd::cr_nul), "\\r\\0");

  TextNormaliser data;
  std::string out;
  const TextRules body{.telnet_iac = false, .cr_nul = false};
  EXPECT_EQ(data.normalise("A\r", out, body), 2u);
  EXPECT_EQ(data.normalise(std::string_view("\0.\r\n", 4), out, body), 0u);
  EXPECT_EQ(data.last_line_end(), LineEnd::cr);
  EXPECT_EQ(out, "A\r\n");
}

TEST(TextNormaliser, NulElsewhereIsData) {
  const Normalised n = normalise_all_splits(std::string_view("A\0B\r\n", 5));
  EXPECT_EQ(n.text, std::string("A\0B\r\n", 5));
  EXPECT_FALSE(n.rewrites.any());
}

TEST(TextNormaliser, SmugglingShapesAllBecomeCanonicalLines) {
  for (std::string_view shape : {"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r\n", "\r.\n"}) {
    const std::string input = "x" + std::string(shape) + "y\r\n";
    const Normalised n = normalise_all_splits(input);
    EXPECT_EQ(n.text, "x\r\n.\r\ny\r\n") << "shape " << testing::PrintToString(shape);
    expect_no_bare_cr_or_lf(n.text);
  }
}

TEST(TextNormaliser, TelnetNegotiationIsRemoved) {
  // IAC WILL ECHO, IAC DO SUPPRESS-GO-AHEAD, IAC NOP, IAC DONT TERMINAL-TYPE
  const std::string input =
      "\xff\xfb\x01"
      "EH\xff\xfd\x03LO me\xff\xf1\xff\xfe\x18\r\n"s;
  const Normalised n = normalise_all_splits(input);
  EXPECT_EQ(n.text, "EHLO me\r\n");
  EXPECT_EQ(n.rewrites.telnet_iac, 4u);
  EXPECT_EQ(n.rewrites.describe(),
            "telnet IAC sequence removed (4x: IAC WILL 1, IAC DO 3, IAC NOP, IAC DONT 24)");
  EXPECT_EQ(n.faults, (std::vector<std::string>{""}));
}

// Feeds `reads` to one normaliser, after `offers` IAC WILL ECHO from mailtap: the text, and the
// telnet answers owed to the client.
struct Answered {
  std::string text;
  std::string answers;
  bool negotiated = false;
};
Answered answered_reads(const std::vector<std::string_view>& reads, int offers) {
  TextNormaliser n;
  for (int i = 0; i < offers; ++i) n.offer_echo();
  Answered out;
  std::string backlog;
  for (std::string_view r : reads) {
    backlog.append(r);
    std::size_t pos = 0;
    while (pos < backlog.size()) {
      const std::size_t used = n.normalise(std::string_view(backlog).substr(pos), out.text);
      pos += used;
      if (used == 0) break;
    }
    backlog.erase(0, pos);
    out.answers += n.take_telnet_answers();
  }
  out.negotiated = n.telnet_negotiated();
  return out;
}

// telnet answers mailtap's IAC WILL ECHO (at the password prompt) with IAC DO ECHO, sent ahead
// of the password typed: removed, never text, and not refused (an IAC WONT ECHO would turn
// telnet's echo back on), however the reads cut it.
TEST(TextNormaliser, TheAnswerToMailtapsWillEchoIsRemovedAndNotRefused) {
  for (const std::string_view answer : {"\xff\xfd\x01"sv, "\xff\xfe\x01"sv}) {
    const std::string input = std::string(answer) +
                              "se\xff"
                              "cret\r\n";
    for (std::size_t p = 0; p <= input.size(); ++p) {
      for (std::size_t q = p; q <= input.size(); ++q) {
        const std::string_view in(input);
        const Answered a =
            answered_reads({in.substr(0, p), in.substr(p, q - p), in.substr(q)}, /*offers=*/1);
        EXPECT_EQ(a.text,
                  "se\xff"
                  "cret\r\n")
            << "split at " << p << ", " << q;
        EXPECT_EQ(a.answers, "") << "split at " << p << ", " << q;
        EXPECT_TRUE(a.negotiated);
      }
    }
  }
  // Unoffered, a DO ECHO is the client's request, refused as before.
  EXPECT_EQ(answered_reads({"\xff\xfd\x01x\r\n"}, 0).answers, "\xff\xfc\x01");
  // One offer is answered once: the next DO ECHO is a request again.
  EXPECT_EQ(answered_reads({"\xff\xfd\x01x\r\n\xff\xfd\x01y\r\n"}, 1).answers, "\xff\xfc\x01");
  // Other options are refused as ever while the offer stands, and leave it standing.
  EXPECT_EQ(answered_reads({"\xff\xfd\x03\xff\xfd\x01x\r\n"}, 1).answers, "\xff\xfc\x03");
}

TEST(TextNormaliser, OnlyANegotiationShowsTheClientIsTelnet) {
  EXPECT_FALSE(answered_reads({"EHLO \xff\xf1me\xff\xff\r\n"}, 0).negotiated);  // NOP, 0xFF
  EXPECT_FALSE(answered_reads({"EHLO \xff\xfd"}, 0).negotiated);  // not yet a negotiation
  EXPECT_TRUE(answered_reads({"EHLO \xff\xfd\x06me\r\n"}, 0).negotiated);
}

TEST(TextNormaliser, OnlyTheFirstRemovalsAreNamed) {
  std::string input = "A";
  for (int i = 0; i < 12; ++i) input += "\xff\xf1";
  const Normalised n = normalise_all_splits(input + "\r\n");
  EXPECT_EQ(n.text, "A\r\n");
  EXPECT_EQ(n.rewrites.describe(),
            "telnet IAC sequence removed (12x: IAC NOP, IAC NOP, IAC NOP, IAC NOP, IAC NOP, IAC "
            "NOP, IAC NOP, IAC NOP, ...)");
}

// SMTP smuggling: a subnegotiation would run to IAC SE, lines later. mailtap agrees to no telnet
// option, so IAC SB (and an IAC SE outside one) makes its line refused, and never takes a line
// ending: the lines after it are framed as a strict server frames them.
TEST(TextNormaliser, ASubnegotiationNeverSwallowsALineEndAndFaultsItsLine) {
  const std::string input =
      "MAIL FROM:<j\xff\xfa@x>\r\nRCPT TO:<b@y>\r\nhello \xff\xf0"
      "alice>\r\nQUIT\r\n"s;
  const Normalised n = normalise_all_splits(input);
  ASSERT_EQ(n.line_ends.size(), 4u) << describe(n);
  EXPECT_EQ(n.text.substr(n.line_ends[0], n.line_ends[1] - n.line_ends[0]), "RCPT TO:<b@y>\r\n");
  EXPECT_EQ(n.text.substr(n.line_ends[2]), "QUIT\r\n");
  ASSERT_EQ(n.faults.size(), 4u);
  EXPECT_NE(n.faults[0].find("telnet subnegotiation (IAC SB"), std::string::npos);
  EXPECT_EQ(n.faults[1], "");
  EXPECT_NE(n.faults[2].find("IAC SE"), std::string::npos);
  EXPECT_EQ(n.faults[3], "");
}

// nc without -C: IAC WILL (or DO...) right before the line's LF. The LF is a line ending, not
// the option byte; the sequence is cut short, so its line is refused.
TEST(TextNormaliser, ALineEndCutsATelnetOptionNegotiationShort) {
  for (std::string_view eol : {"\n", "\r\n", "\r"}) {
    SCOPED_TRACE(testing::PrintToString(eol));
    for (std::string_view verb : {"\xfb", "\xfc", "\xfd", "\xfe"}) {
      const std::string input = "NOOP a\xff" + std::string(verb) + std::string(eol) + "NOOP b\n";
      const Normalised n = normalise_all_splits(input);
      EXPECT_EQ(n.text, "NOOP a\r\nNOOP b\r\n");
      ASSERT_EQ(n.faults.size(), 2u);
      EXPECT_NE(n.faults[0].find("cut short by the line ending"), std::string::npos);
      EXPECT_EQ(n.faults[1], "");
      EXPECT_EQ(n.rewrites.telnet_iac, 0u);
    }
  }
}

TEST(TextNormaliser, IacIacIsALiteral0xFF) {
  const Normalised n = normalise_all_splits(
      "A\xff\xff"
      "B\r\n");
  EXPECT_EQ(n.text,
            "A\xff"
            "B\r\n");
}

TEST(TextNormaliser, FFFollowedByAnOrdinaryByteIsData) {
  // UTF-8 never contains 0xFF, but Latin-1 "ÿ" does: it must pass unchanged.
  const Normalised n = normalise_all_splits(
      "Subject: \xff"
      "a\xff\r\n");
  EXPECT_EQ(n.text,
            "Subject: \xff"
            "a\xff\r\n");
  EXPECT_FALSE(n.rewrites.any());
}

TEST(TextNormaliser, TrailingFFIsConsumedAndDecidedByTheNextRead) {
  TextNormaliser n;
  std::string out;
  EXPECT_EQ(n.normalise("AB\xff", out), 3u);  // nothing is left for the caller to re-feed
  EXPECT_EQ(out, "AB");
  EXPECT_FALSE(n.idle());
  EXPECT_EQ(n.normalise("C\r\n", out), 3u);
  EXPECT_EQ(out,
            "AB\xff"
            "C\r\n");
}

TEST(TextNormaliser, TrailingCrIsHeldUntilTheNextByte) {
  TextNormaliser n;
  std::string out;
  EXPECT_EQ(n.normalise("AB\r", out), 3u);
  EXPECT_EQ(out, "AB");
  EXPECT_FALSE(n.idle());
  EXPECT_EQ(n.normalise("\n", out), 1u);
  EXPECT_EQ(out, "AB\r\n");
  EXPECT_TRUE(n.idle());
}

TEST(TextNormaliser, RewritesAreCountedOncePerTake) {
  TextNormaliser n;
  std::string out;
  n.normalise("a\n", out);
  EXPECT_EQ(n.take_rewrites().bare_lf, 1u);
  EXPECT_FALSE(n.take_rewrites().any());
}

TEST(TextNormaliser, DescribeListsEveryKind) {
  RewriteCounts r;
  r.bare_lf = 2;
  r.bare_cr = 1;
  r.telnet_iac = 3;
  EXPECT_EQ(r.describe(),
            "bare LF normalised to CRLF (2x); bare CR normalised to CRLF (1x); telnet IAC "
            "sequence removed (3x)");
}

TEST(TextNormaliser, EveryByteValueNeverYieldsBareCrOrLf) {
  std::string input;
  for (int round = 0; round < 3; ++round)
    for (int c = 0; c < 256; ++c) input.push_back(static_cast<char>((c * 7 + round) & 0xff));
  const Normalised n = normalise_reads({input});
  expect_no_bare_cr_or_lf(n.text);
}

}  // namespace
}  // namespace mailtap::smtp
