// The client framer: command lines, body text and BDAT chunks out of client bytes, the same
// however the bytes were split into reads (whole, byte by byte, split at every position).
#include "proxy/smtp/client_framer.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace mailtap::smtp {
namespace {

using Splitter = std::function<std::vector<std::string_view>(std::string_view)>;

std::vector<Splitter> every_split(std::string_view s) {
  std::vector<Splitter> out;
  out.emplace_back([](std::string_view b) { return std::vector<std::string_view>{b}; });
  out.emplace_back([](std::string_view b) {
    std::vector<std::string_view> v;
    for (std::size_t i = 0; i < b.size(); ++i) v.push_back(b.substr(i, 1));
    return v;
  });
  for (std::size_t p = 1; p < s.size(); ++p)
    out.emplace_back([p](std::string_view b) {
      return std::vector<std::string_view>{b.substr(0, p), b.substr(p)};
    });
  return out;
}

std::string describe(const FramedLine& l) {
  std::string s = "[" + l.text + "] end=" + std::string(to_string(l.end)) +
                  " discarded=" + std::to_string(l.discarded) + " verb=" + l.discarded_verb +
                  " nul=" + std::to_string(l.has_nul) +
                  " distrusted=" + std::to_string(l.distrusted) +
                  " telnet_fault=" + std::string(l.telnet_fault);
  return s;
}

TEST(ClientFramer, CommandLinesAreTheSameHoweverTheyAreSplit) {
  // nc's bare LFs: the first line's ending is the client's own, and so is CRLF.
  const std::string bytes = "EHLO a\nMAIL FROM:<x>\r\nRCPT TO:<y>\nNOOP\r\r\nQUIT\xff\xff\npart";
  ClientFramer f(2048);
  f.feed(bytes);
  std::vector<FramedLine> lines;
  while (std::optional<FramedLine> line = f.next_line()) lines.push_back(*line);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0].text, "EHLO a\r\n");
  EXPECT_EQ(lines[0].end, LineEnd::lf);
  EXPECT_EQ(f.own_line_end(), LineEnd::lf);
  EXPECT_EQ(lines[1].text, "MAIL FROM:<x>\r\n");
  EXPECT_EQ(lines[1].end, LineEnd::crlf);
  EXPECT_EQ(lines[2].end, LineEnd::lf);
  EXPECT_EQ(lines[2].foreign_end, LineEnd::none);
  // A CR right before a CRLF joins it (a CRLF through a text-mode stream): one line.
  EXPECT_EQ(lines[3].text, "NOOP\r\n");
  EXPECT_EQ(lines[3].end, LineEnd::cr_crlf);
  EXPECT_EQ(lines[3].foreign_end, LineEnd::none);
  EXPECT_EQ(lines[4].text, "QUIT\xff\r\n");  // IAC IAC is a literal 0xFF
  EXPECT_EQ(f.partial_line(), 4u);

  // Rewrite counts are taken per read, so compare per whole-run totals only through lines.
  auto lines_only = [](const std::vector<std::string_view>& pieces) {
    ClientFramer g(2048);
    std::string out;
    for (std::string_view piece : pieces) {
      g.feed(piece);
      while (std::optional<FramedLine> line = g.next_line()) out += describe(*line) + "\n";
    }
    return out + "partial=" + std::to_string(g.partial_line());
  };
  const std::string expected = lines_only({bytes});
  for (const Splitter& split : every_split(bytes)) EXPECT_EQ(lines_only(split(bytes)), expected);
}

// A telnet subnegotiation or a cut-short option negotiation faults its own line only, and the
// lines after it are framed where a strict server frames them, however the bytes are split.
TEST(ClientFramer, ATelnetFaultIsTheLinesOwnAndNeverMovesALineEnd) {
  const std::string bytes =
      "MAIL FROM:<j\xff\xfa@x>\r\nRCPT TO:<b@y>\r\nNOOP\xff\xfd\r\nBDAT 9 LAST\r\n\xff\xf0x\r\n";
  for (const Splitter& split : every_split(bytes)) {
    ClientFramer f(2048);
    std::vector<FramedLine> lines;
    for (std::string_view piece : split(bytes)) {
      f.feed(piece);
      while (std::optional<FramedLine> line = f.next_line()) lines.push_back(*line);
    }
    ASSERT_EQ(lines.size(), 5u);
    EXPECT_NE(lines[0].telnet_fault.find("subnegotiation"), std::string_view::npos);
    EXPECT_EQ(lines[1].text, "RCPT TO:<b@y>\r\n");
    EXPECT_EQ(lines[1].telnet_fault, "");
    EXPECT_NE(lines[2].telnet_fault.find("cut short"), std::string_view::npos);
    EXPECT_EQ(lines[3].text, "BDAT 9 LAST\r\n");
    EXPECT_EQ(lines[3].telnet_fault, "");
    EXPECT_NE(lines[4].telnet_fault.find("IAC SE"), std::string_view::npos);
  }
}

// A line ending that is not the client's own (its first line's, or CRLF) does not end a command
// line: a strict server reads the octets up to the next CRLF as one line and refuses it, where a
// lenient one would take the text after the bare CR as a command of its own (a RCPT in a sender
// address). The line is framed whole, with the foreign ending named, however it is split.
TEST(ClientFramer, AForeignLineEndingStaysInsideItsLine) {
  using namespace std::string_literals;
  struct Case {
    std::string bytes;
    std::vector<std::pair<std::string, LineEnd>> lines;  // text, foreign_end
    LineEnd own;
  };
  const std::vector<Case> cases = {
      {"EHLO a\r\nRCPT TO:<b>\rRCPT TO:<c>\r\nMAIL FROM:<x>\nRCPT TO:<y>\r\n"
       "NOOP\r\0NOOP\r\nMAIL FROM:<z>\r\r\nQUIT\r\n"s,
       {{"EHLO a\r\n", LineEnd::none},
        {"RCPT TO:<b>\r\nRCPT TO:<c>\r\n", LineEnd::cr},
        {"MAIL FROM:<x>\r\n", LineEnd::none},  // an LF ends a line for every client
        {"RCPT TO:<y>\r\n", LineEnd::none},
        {"NOOP\r\nNOOP\r\n", LineEnd::cr_nul},
        {"MAIL FROM:<z>\r\n", LineEnd::none},  // CRs before a CRLF join it
        {"QUIT\r\n", LineEnd::none}},
       LineEnd::crlf},
      // A CRLF through a text-mode stream, first line included: CRLF lines.
      {"EHLO a\r\r\nMAIL FROM:<x>\r\r\r\nRCPT TO:<b>\r\rRCPT TO:<c>\r\r\n",
       {{"EHLO a\r\n", LineEnd::none},
        {"MAIL FROM:<x>\r\n", LineEnd::none},
        {"RCPT TO:<b>\r\n\r\nRCPT TO:<c>\r\n", LineEnd::cr}},
       LineEnd::crlf},
      // A terminal's bare CRs: its first line is a greeting ended so. The last line ends at its
      // CR, though nothing follows it: the CR is that client's own line ending.
      {"EHLO a\rRCPT TO:<b>\nRCPT TO:<c>\rNOOP\r\nQUIT\r",
       {{"EHLO a\r\n", LineEnd::none},
        {"RCPT TO:<b>\r\n", LineEnd::none},
        {"RCPT TO:<c>\r\n", LineEnd::none},
        {"NOOP\r\n", LineEnd::none},
        {"QUIT\r\n", LineEnd::none}},
       LineEnd::cr},
      // Enter alone first, then AUTH: a person at a terminal that sends bare CRs.
      {"\rAUTH PLAIN AGEAYg==\rQUIT\r\n",
       {{"\r\n", LineEnd::none},
        {"AUTH PLAIN AGEAYg==\r\n", LineEnd::none},
        {"QUIT\r\n", LineEnd::none}},
       LineEnd::cr},
      // A first line that is no greeting does not make a bare CR the client's line ending.
      {"MAIL FROM:<a@x\rRCPT TO:<e@y>>\r\nRCPT TO:<b>\rRCPT TO:<c>\nQUIT\r\n",
       {{"MAIL FROM:<a@x\r\nRCPT TO:<e@y>>\r\n", LineEnd::cr},
        {"RCPT TO:<b>\r\nRCPT TO:<c>\r\n", LineEnd::cr},
        {"QUIT\r\n", LineEnd::none}},
       LineEnd::crlf},
      // A BDAT line ends at its foreign ending: the session ends at it.
      {"EHLO a\r\nBDAT 2 LAST\r\0hi"s,
       {{"EHLO a\r\n", LineEnd::none}, {"BDAT 2 LAST\r\n", LineEnd::cr_nul}},
       LineEnd::crlf},
      // telnet's CR NUL: a bare CR without the NUL is not its own.
      {"EHLO a\r\0MAIL FROM:<x>\rRCPT TO:<y>\r\0QUIT\r\n"s,
       {{"EHLO a\r\n", LineEnd::none},
        {"MAIL FROM:<x>\r\nRCPT TO:<y>\r\n", LineEnd::cr},
        {"QUIT\r\n", LineEnd::none}},
       LineEnd::cr_nul},
  };
  for (const Case& c : cases) {
    for (const Splitter& split : every_split(c.bytes)) {
      ClientFramer f(2048);
      std::vector<std::pair<std::string, LineEnd>> lines;
      for (std::string_view piece : split(c.bytes)) {
        f.feed(piece);
        while (std::optional<FramedLine> line = f.next_line())
          lines.emplace_back(line->text, line->foreign_end);
      }
      EXPECT_EQ(lines, c.lines) << c.bytes;
      EXPECT_EQ(f.own_line_end(), c.own);
    }
  }
}

// An over-long first line is read by the verb at its start, not by its kept tail, whichever
// reads it came in: a first MAIL line is no greeting, so its bare CR is no line ending.
TEST(ClientFramer, AnOverLongFirstLineIsJudgedByItsStart) {
  const std::string bytes = "MAIL FROM:<" + std::string(16373, 'a') +
                            "NOOP\rRCPT TO:<evil@y>>\r\nRCPT TO:<b>\rRCPT TO:<c>\r\n";
  for (const std::size_t first : {bytes.size(), std::size_t{12290}, std::size_t{2050}}) {
    ClientFramer f(2048);
    std::vector<FramedLine> lines;
    for (std::string_view piece :
         {std::string_view(bytes).substr(0, first), std::string_view(bytes).substr(first)}) {
      f.feed(piece);
      while (std::optional<FramedLine> line = f.next_line()) lines.push_back(*line);
    }
    ASSERT_EQ(lines.size(), 2u) << first;
    EXPECT_EQ(lines[0].discarded_verb, "MAIL");
    EXPECT_EQ(lines[0].foreign_end, LineEnd::cr);
    EXPECT_EQ(lines[1].foreign_end, LineEnd::cr);
    EXPECT_EQ(f.own_line_end(), LineEnd::crlf);
  }
}

// Nor is an over-long first line "Enter alone" because nothing of it was kept when its bare CR
// came (its octets went just before, in a read that ended there): found by fuzz_dialogue.
TEST(ClientFramer, AnOverLongFirstLineIsNoEmptyLineWhateverWasKept) {
  const std::string bytes = std::string(100, 'x') + "\rRCPT TO:<b>\r\n";
  for (const std::size_t first : {bytes.size(), std::size_t{100}, std::size_t{65}}) {
    ClientFramer f(64);
    std::vector<FramedLine> lines;
    for (std::string_view piece :
         {std::string_view(bytes).substr(0, first), std::string_view(bytes).substr(first)}) {
      f.feed(piece);
      while (std::optional<FramedLine> line = f.next_line()) lines.push_back(*line);
    }
    ASSERT_EQ(lines.size(), 1u) << first;
    EXPECT_EQ(lines[0].foreign_end, LineEnd::cr) << first;
    EXPECT_EQ(f.own_line_end(), LineEnd::crlf) << first;
  }
}

TEST(ClientFramer, OverLongLineIsFramedWithoutKeepingItsBytes) {
  // Longer than what one read of the normaliser takes (4096): its start is thrown away.
  const std::string line = "AUTH PLAIN " + std::string(5000, 'A') + std::string("\0tail\r\n", 7);
  const std::string bytes = line + "NOOP\r\n";
  for (const Splitter& split : every_split(bytes)) {
    ClientFramer f(40);
    std::vector<FramedLine> lines;
    for (std::string_view piece : split(bytes)) {
      f.feed(piece);
      while (std::optional<FramedLine> framed = f.next_line()) lines.push_back(*framed);
      f.compact();
    }
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].size(), line.size());
    EXPECT_GT(lines[0].discarded, 0u);
    EXPECT_LT(lines[0].text.size(), line.size());
    EXPECT_EQ(lines[0].discarded_verb, "AUTH");  // read from its start
    EXPECT_TRUE(lines[0].has_nul || lines[0].text.find('\0') != std::string::npos);
    EXPECT_EQ(lines[1].text, "NOOP\r\n");
    EXPECT_EQ(lines[1].discarded, 0u);
  }
}

// A line that completes in the read that takes it past the limit is kept whole: the dialogue
// checks its size as well.
TEST(ClientFramer, ShortOverLimitLineCompletesWhole) {
  ClientFramer f(40);
  f.feed("AUTH PLAIN " + std::string(100, 'A') + "\r\n");
  std::optional<FramedLine> framed = f.next_line();
  ASSERT_TRUE(framed);
  EXPECT_EQ(framed->discarded, 0u);
  EXPECT_EQ(framed->text.size(), 113u);
}

// The dialogue lends each read (no copy) and compacts before the read buffer is reused: what it
// left unread (it was waiting for replies) must survive the buffer being overwritten.
TEST(ClientFramer, LentBytesLeftUnreadSurviveTheLendersBuffer) {
  ClientFramer f(2048);
  std::string read_buffer = "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDA";
  f.lend(read_buffer);
  std::optional<FramedLine> first = f.next_line();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->text, "MAIL FROM:<a@b>\r\n");
  f.compact();
  read_buffer.assign(read_buffer.size(), 'X');
  read_buffer = "TA\r\n";
  f.lend(read_buffer);  // joins the kept bytes: copied
  std::vector<std::string> rest;
  while (std::optional<FramedLine> line = f.next_line()) rest.push_back(line->text);
  f.compact();
  EXPECT_EQ(rest, (std::vector<std::string>{"RCPT TO:<c@d>\r\n", "DATA\r\n"}));
  EXPECT_EQ(f.unread(), 0u);
}

TEST(ClientFramer, DistrustMarksTheLinesAlreadyReceived) {
  ClientFramer f(2048);
  f.feed("c2VjcmV0\r\nNO");
  f.distrust_unread();
  f.feed("OP\r\nQUIT\r\n");
  std::optional<FramedLine> a = f.next_line();
  std::optional<FramedLine> b = f.next_line();
  std::optional<FramedLine> c = f.next_line();
  ASSERT_TRUE(a && b && c);
  EXPECT_TRUE(a->distrusted);
  EXPECT_TRUE(b->distrusted);  // it began before
  EXPECT_FALSE(c->distrusted);
}

// Reads a body as the dialogue does: plain runs at line starts, the rest through the normaliser.
std::string frame_body(const std::vector<std::string_view>& pieces) {
  ClientFramer f(2048);
  std::string out;
  bool line_start = true;
  for (std::string_view piece : pieces) {
    f.feed(piece);
    for (;;) {
      if (f.unread() == 0) break;
      if (line_start) {
        if (std::string_view run = f.take_plain_lines(false); !run.empty()) {
          out += run;
          continue;
        }
      }
      std::string segment;
      const std::size_t n = f.normalise_body(segment, LineEnd::crlf);
      if (segment.empty()) {
        if (n == 0) break;
        continue;
      }
      out += segment;
      line_start = segment.size() >= 2 && segment.compare(segment.size() - 2, 2, "\r\n") == 0;
      if (line_start) out += "<" + std::string(to_string(f.last_line_end())) + ">";
    }
    f.compact();
  }
  return out;
}

TEST(ClientFramer, BodyTextIsTheSameHoweverItIsSplit) {
  const std::string bytes = "plain\r\nlines\r\n.dot\r\nbare lf\nbare cr\r\xff\xfe\r\nend\r\n";
  const std::string whole = frame_body({bytes});
  // Plain CRLF lines come through untouched; the others are normalised, 0xFF is data.
  EXPECT_EQ(whole.substr(0, 14), "plain\r\nlines\r\n");
  EXPECT_NE(whole.find("bare lf\r\n<bare LF>"), std::string::npos) << whole;
  EXPECT_NE(whole.find("\xff\xfe\r\n"), std::string::npos) << whole;
  auto canonical = [](std::string s) {
    // Plain runs carry no end marker: drop the CRLF markers to compare across splits.
    for (std::size_t at; (at = s.find("<CRLF>")) != std::string::npos;) s.erase(at, 6);
    return s;
  };
  for (const Splitter& split : every_split(bytes))
    EXPECT_EQ(canonical(frame_body(split(bytes))), canonical(whole));
}

TEST(ClientFramer, ChunksAreCountedOctetsUntouched) {
  const std::string bytes = std::string("a\r\n.\r\n\xff\n", 9) + "NOOP\r\n";
  for (const Splitter& split : every_split(bytes)) {
    ClientFramer f(2048);
    std::string chunk;
    std::uint64_t remaining = 9;
    std::vector<FramedLine> after;
    for (std::string_view piece : split(bytes)) {
      f.feed(piece);
      const std::string_view got = f.take_chunk(remaining);
      chunk += got;
      remaining -= got.size();
      if (remaining == 0)
        while (std::optional<FramedLine> line = f.next_line()) after.push_back(*line);
      f.compact();
    }
    EXPECT_EQ(chunk, bytes.substr(0, 9));
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].text, "NOOP\r\n");
  }
}

}  // namespace
}  // namespace mailtap::smtp
