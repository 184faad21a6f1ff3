#include "proxy/smtp/timing_mark_scanner.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailtap::smtp {
namespace {

// Whole, and cut into two pieces at every position (and into single octets): the same count.
std::size_t marks(const std::string& bytes) {
  TimingMarkScanner whole;
  const std::size_t expected = whole.scan(bytes);
  for (std::size_t at = 0; at <= bytes.size(); ++at) {
    TimingMarkScanner s;
    const std::size_t got =
        s.scan(std::string_view(bytes).substr(0, at)) + s.scan(std::string_view(bytes).substr(at));
    EXPECT_EQ(got, expected) << "split at " << at;
  }
  TimingMarkScanner octets;
  std::size_t got = 0;
  for (const char c : bytes) got += octets.scan(std::string_view(&c, 1));
  EXPECT_EQ(got, expected) << "one octet at a time";
  return expected;
}

TEST(TimingMarkScanner, FindsEachDoTimingMarkWhereverThePiecesEnd) {
  EXPECT_EQ(marks(""), 0u);
  EXPECT_EQ(marks("plain text\r\n"), 0u);
  EXPECT_EQ(marks("\xff\xfd\x06"), 1u);
  EXPECT_EQ(marks("abo\xff\xf4\xff\xfd\x06.\r\n"), 1u);  // Ctrl-C: IAC IP, IAC DO TM
  EXPECT_EQ(marks("\xff\xfd\x06\xff\xfd\x06x\xff\xfd\x06"), 3u);
  EXPECT_EQ(marks("\xff\xff\xff\xfd\x06"), 1u);  // an escaped 0xFF, then IAC DO TM
}

TEST(TimingMarkScanner, IgnoresWhatIsNoDoTimingMark) {
  EXPECT_EQ(marks("\xff\xff\xfd\x06"), 0u);  // IAC IAC is data 0xFF: "0xFD 0x06" follows it
  EXPECT_EQ(marks("\xff\xfd\x01\xff\xfb\x06\xff\xfe\x06"), 0u);  // DO ECHO, WILL TM, DONT TM
  EXPECT_EQ(marks("\xff\xfd\r\n\x06"), 0u);
  EXPECT_EQ(marks("\xfd\x06\xff\xfd"), 0u);
  EXPECT_EQ(marks("caf\xff\xe9 \xff"), 0u);
}

TEST(TimingMarkScanner, ANewBodyForgetsASequenceBegunInTheLast) {
  TimingMarkScanner s;
  EXPECT_EQ(s.scan("x\xff\xfd"), 0u);
  s.reset();
  EXPECT_EQ(s.scan("\x06"), 0u);
}

}  // namespace
}  // namespace mailtap::smtp
