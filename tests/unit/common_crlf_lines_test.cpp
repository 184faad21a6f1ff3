// Lines split at CRLF, whole and as they arrive in pieces (show's and the live transcript's
// message text).
#include "proxy/common/crlf_lines.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/common/terminal_escape.hpp"

namespace mailtap {
namespace {

using namespace std::string_literals;

// The lines CrlfLinePieces hands on for `bytes` fed in pieces of `step` octets, each line's
// pieces joined again; `pieces` counts what went out.
std::vector<std::string> split_in_pieces(std::string_view bytes, std::size_t step,
                                         std::size_t longest_held, std::size_t* pieces = nullptr) {
  std::vector<std::string> lines;
  bool in_line = false;
  CrlfLinePieces split(
      [&](std::string_view text, bool first, bool last) {
        EXPECT_EQ(first, !in_line);
        if (longest_held != std::string::npos) {
          EXPECT_LE(text.size(), longest_held + step);
        }
        if (first) lines.emplace_back();
        lines.back().append(text);
        in_line = !last;
        if (pieces != nullptr) ++*pieces;
        return true;
      },
      longest_held);
  for (std::size_t at = 0; at < bytes.size(); at += step)
    EXPECT_TRUE(split.append(bytes.substr(at, step)));
  EXPECT_TRUE(split.finish());
  EXPECT_FALSE(in_line);
  return lines;
}

// The transcript writes a body file's octets as they are read: the same lines as crlf_lines
// finds in them whole, wherever the reads cut them (a CRLF split, a CR at the end).
TEST(CrlfLines, CrlfLinePiecesAreTheLinesOfTheWholeWhereverThePiecesEnd) {
  for (const std::string& bytes :
       {""s, "\r\n"s, "a\r\n"s, "a\r\nb"s, "a\r\n\r\nb\r\n"s, "bare\nLF\r\nbare\rCR\r\n"s,
        "ends with a CR\r"s, "\r\r\n\n\r\n"s, "no line end at all"s, std::string(300, 'x')}) {
    std::vector<std::string> whole;
    for (const std::string_view line : crlf_lines(bytes)) whole.emplace_back(line);
    for (std::size_t step = 1; step <= bytes.size() + 1; ++step) {
      for (const std::size_t longest : {std::size_t{1}, std::size_t{3}, std::string::npos})
        EXPECT_EQ(split_in_pieces(bytes, step, longest), whole)
            << escape_line(bytes) << " step " << step << " longest " << longest;
    }
  }
}

TEST(CrlfLines, CrlfLinePiecesHandOnALongLineInPieces) {
  const std::string line(1000, 'x');
  std::size_t pieces = 0;
  EXPECT_EQ(split_in_pieces(line + "\r\n" + line, 64, 100, &pieces),
            (std::vector<std::string>{line, line}));
  EXPECT_GE(pieces, 2 * 1000 / 164);
}

// The transcript writes mailtap's notes on a message's text after the line that is open when
// they come, whether it is held whole or some of it went out already.
TEST(CrlfLines, CrlfLinePiecesSayWhetherALineIsOpen) {
  CrlfLinePieces split([](std::string_view, bool, bool) { return true; }, 4);
  EXPECT_FALSE(split.line_open());
  EXPECT_TRUE(split.append("a\r\nhel"));
  EXPECT_TRUE(split.line_open());
  EXPECT_TRUE(split.append("lo world"));  // past 4 octets: some of it handed on
  EXPECT_TRUE(split.line_open());
  EXPECT_TRUE(split.append("\r"));
  EXPECT_TRUE(split.line_open());
  EXPECT_TRUE(split.append("\n"));
  EXPECT_FALSE(split.line_open());
  EXPECT_TRUE(split.append("x"));
  EXPECT_TRUE(split.finish());
  EXPECT_FALSE(split.line_open());
}

TEST(CrlfLines, CrlfLinePiecesStopWhenTheOutputFails) {
  int calls = 0;
  CrlfLinePieces split([&](std::string_view, bool, bool) { return ++calls < 2; });
  EXPECT_FALSE(split.append("a\r\nb\r\nc\r\nd\r\n"));
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace mailtap
