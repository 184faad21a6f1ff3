// Recorded bytes checked and escaped for the terminal, line by line (the escapers themselves:
// common_terminal_escape_test).
#include "tools/terminal_text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailtap::tools {
namespace {

using namespace std::string_literals;

TEST(TerminalText, RecordedBytesAreTerminalSafeWhenOnlyTextAndLineEnds) {
  EXPECT_TRUE(terminal_safe(""));
  EXPECT_TRUE(terminal_safe("Subject: caf\xc3\xa9\r\n\tfolded\nbare LF\r\n"));
  EXPECT_TRUE(terminal_safe("\xe2\x82\xac \xf0\x9f\x93\xa7 \xc2\xa0"));  // U+00A0: not C1
}

TEST(TerminalText, WhatCouldDriveATerminalIsNotTerminalSafe) {
  for (const std::string& bytes :
       {"\x1b[2J"s, "\x1b]52;c;cHduZWQ=\x07"s, "\x07"s, "a\x7f"s, "a"s + '\0', "\x08"s,
        "\xc2\x9b"
        "31m"s,                           // C1 CSI, well-formed UTF-8
        "caf\xe9"s,                       // Latin-1: not UTF-8
        "\xed\xa0\x80"s,                  // a UTF-16 surrogate
        "\xe2\x82"s,                      // cut short
        "harmless text\rX-Evil: 1\r\n"s,  // a bare CR: the rest overwrites the line
        "ends with a CR\r"s, "\n\rbare"s})
    EXPECT_FALSE(terminal_safe(bytes)) << escape_line(bytes);
}

TEST(TerminalText, RecordedBytesEscapedLineByLineAsTheTranscriptShowsThem) {
  EXPECT_EQ(escape_lines("250 Ok\x1b]52;c;eA==\x07\r\nbare\nLF\r\ncaf\xc3\xa9"),
            "250 Ok\\x1b]52;c;eA==\\x07\nbare\\nLF\ncaf\\xc3\\xa9\n");
  EXPECT_EQ(escape_lines(""), "");
}

// Gathers what TerminalLines writes, fed in the given pieces.
std::string through_terminal_lines(const std::vector<std::string>& pieces, bool& escaped) {
  std::string out;
  TerminalLines t([&out](std::string_view s) {
    out.append(s);
    return true;
  });
  for (const auto& p : pieces) EXPECT_TRUE(t.append(p));
  EXPECT_TRUE(t.finish());
  escaped = t.escaped();
  return out;
}

TEST(TerminalText, TerminalLinesEscapeOnlyTheLinesThatCouldDriveATerminal) {
  bool escaped = false;
  EXPECT_EQ(through_terminal_lines({"Subject: caf\xc3\xa9\r\n\x1b]52;c;eA==\x07\r\nbye"}, escaped),
            "Subject: caf\xc3\xa9\r\n\\x1b]52;c;eA==\\x07\nbye");
  EXPECT_TRUE(escaped);
  EXPECT_EQ(through_terminal_lines({"plain\r\ntext"}, escaped), "plain\r\ntext");
  EXPECT_FALSE(escaped);
  // A line that ends unsafe without a CRLF is ended as escape_lines ends it.
  EXPECT_EQ(through_terminal_lines({"a\r\n\x1b[2J"}, escaped), "a\r\n\\x1b[2J\n");
  // mbox lines end in LF: each is judged on its own.
  EXPECT_EQ(through_terminal_lines({"From a\nX: \x07\nok\n"}, escaped), "From a\nX: \\x07\nok\n");
}

TEST(TerminalText, TerminalLinesJudgeWholeLinesAndCharactersAcrossPieces) {
  bool escaped = false;
  // A CRLF and a UTF-8 character split between pieces are not a bare CR or a bad octet.
  EXPECT_EQ(through_terminal_lines({"caf\xc3", "\xa9\r", "\nok\r", "\n"}, escaped),
            "caf\xc3\xa9\r\nok\r\n");
  EXPECT_FALSE(escaped);
  // The escape sequence split between pieces is still one line's, and escaped.
  EXPECT_EQ(through_terminal_lines({"x\x1b", "[2J\r\n"}, escaped), "x\\x1b[2J\n");
  EXPECT_TRUE(escaped);
}

TEST(TerminalText, TerminalLinesHoldNoMoreThanALongLinesShare) {
  bool escaped = false;
  // A line far longer than kLongestHeld, of multi-octet characters: judged a piece at a time,
  // never cut inside a character, so it is written as it is.
  std::string line;
  while (line.size() < 3 * TerminalLines::kLongestHeld) line += "\xe2\x82\xac";
  std::vector<std::string> pieces;
  for (std::size_t at = 0; at < line.size(); at += 1000) pieces.push_back(line.substr(at, 1000));
  pieces.push_back("\r\n");
  EXPECT_EQ(through_terminal_lines(pieces, escaped), line + "\r\n");
  EXPECT_FALSE(escaped);
}

// Octets that begin no character (UTF-8 continuation octets only) are still judged a piece at a
// time: nothing waits for a character start that never comes.
TEST(TerminalText, TerminalLinesDoNotHoldALineOfContinuationOctets) {
  std::size_t written = 0;
  TerminalLines t([&written](std::string_view s) {
    written += s.size();
    return true;
  });
  const std::string piece(4096, '\x80');
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(t.append(piece));
  EXPECT_GT(written, 3 * TerminalLines::kLongestHeld);  // escaped, so longer than what came
  EXPECT_TRUE(t.escaped());
}

}  // namespace
}  // namespace mailtap::tools
