// Recorded bytes checked and escaped for the terminal, line by line (the escapers themselves:
// common_terminal_escape_test).
#include "tools/terminal_text.hpp"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace mailtap::tools
