// The block scan that finds a body's plain lines must stop exactly where the line-by-line scan
// does: a line it wrongly took as plain would skip the dot and line-end handling that keeps
// mailtap and a strict server agreeing on where a message ends (SMTP smuggling).
#include "proxy/smtp/plain_lines.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>

namespace mailtap::smtp {
namespace {

std::string lines_of(std::size_t count, std::size_t length) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    out.append(length, static_cast<char>('a' + i % 26));
    out += "\r\n";
  }
  return out;
}

void expect_both(std::string_view text, bool long_lines_ok, std::size_t expected) {
  EXPECT_EQ(plain_lines_length(text, long_lines_ok), expected);
  EXPECT_EQ(plain_lines_length_by_line(text, long_lines_ok), expected);
}

TEST(PlainLines, WholeCrlfLinesAreTakenAndAPartialLastLineIsNot) {
  const std::string lines = lines_of(100, 76);
  expect_both(lines, false, lines.size());
  expect_both(lines + "partial", false, lines.size());
  expect_both(lines + "partial\r", false, lines.size());
  expect_both("", false, 0);
  expect_both("\r\n\r\n", false, 4);
}

TEST(PlainLines, StopsAtTheLineThatLeavesSomethingToDecide) {
  const std::string head = lines_of(50, 70);
  for (const std::string_view odd :
       {".\r\n", "..leading dot\r\n", "bare\nlf\r\n", "bare\rcr\r\n", "cr at end\r", "\n"}) {
    for (std::size_t cut = 0; cut < 64; ++cut) {
      // The odd line at every alignment against the 64-octet blocks.
      const std::string before = head + std::string(cut, 'x') + "\r\n";
      const std::string text = before + std::string(odd) + lines_of(20, 70);
      expect_both(text, false, before.size());
    }
  }
  expect_both(".starts with a dot\r\n", false, 0);
}

TEST(PlainLines, LongLinesStopTheRunUnlessAllowed) {
  const std::string head = lines_of(30, 60);
  for (const std::size_t length : {kLongestTextLine, kLongestTextLine + 1, std::size_t{5000}}) {
    const std::string text = head + std::string(length, 'y') + "\r\n" + lines_of(5, 10);
    const std::size_t stop = length > kLongestTextLine ? head.size() : text.size();
    expect_both(text, false, stop);
    expect_both(text, true, text.size());
  }
}

// Random texts over the octets that matter, in runs that build lines of every length around the
// block size and the line limit.
TEST(PlainLines, AgreesWithTheLineByLineScanOnRandomText) {
  std::mt19937 rng(20261205);
  const std::string alphabet = std::string("ab.\r\n") + '\0' + "\xff";
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const std::size_t lines = rng() % 40;
    for (std::size_t i = 0; i < lines; ++i) {
      const std::size_t length = rng() % 4 == 0 ? rng() % 1100 : rng() % 130;
      for (std::size_t k = 0; k < length; ++k) {
        // Mostly ordinary octets, now and then one that matters.
        text += rng() % 64 == 0 ? alphabet[rng() % alphabet.size()] : 'o';
      }
      if (rng() % 16 != 0) text += "\r\n";
    }
    const std::size_t offset = rng() % 64;  // the text unaligned, as a read leaves it
    const std::string_view view = std::string_view(text).substr(std::min(offset, text.size()));
    for (const bool long_lines_ok : {false, true}) {
      ASSERT_EQ(plain_lines_length(view, long_lines_ok),
                plain_lines_length_by_line(view, long_lines_ok))
          << "round " << round << " long_lines_ok " << long_lines_ok;
    }
  }
}

// A run of bare CRs reaches the scan once per CR (the normaliser takes each as a line): a scan
// that looked past the line at hand for its LF read the rest of the read every time, quadratic
// in the run (a CPU-second per MiB). The text here ends in a page that cannot be read: the scan
// must decide each line from the octets near it and never touch that page.
TEST(PlainLinesDeathTest, ABareCrIsDecidedWithoutReadingTheRestOfTheText) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t readable = 16 * page;
  void* mapped =
      mmap(nullptr, readable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  auto* octets = static_cast<char*>(mapped);
  std::memset(octets, '\r', readable);
  ASSERT_EQ(mprotect(octets + readable, page, PROT_NONE), 0);
  // The view claims the unreadable page too: reading it is the failure.
  const std::string_view text(octets, readable + page);
  EXPECT_EXIT(
      {
        // Every start a caller stepping over one bare CR at a time would reach, up to the last
        // two blocks (the block scan reads a whole block to decide).
        std::size_t taken = 0;
        for (std::size_t start = 0; start + 128 <= readable; ++start) {
          taken += plain_lines_length(text.substr(start), false);
          taken += plain_lines_length_by_line(text.substr(start), false);
        }
        std::exit(taken == 0 ? 0 : 2);
      },
      testing::ExitedWithCode(0), "");
  munmap(mapped, readable + page);
}

}  // namespace
}  // namespace mailtap::smtp
