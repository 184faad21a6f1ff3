#include "proxy/common/decimal_number.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace mailtap {
namespace {

constexpr std::uint64_t kAny = std::numeric_limits<std::uint64_t>::max();

TEST(DecimalNumber, PlainDigitsInRange) {
  EXPECT_EQ(parse_decimal("12", 1, kAny), 12u);
  EXPECT_EQ(parse_decimal("0", 0, kAny), 0u);
  EXPECT_EQ(parse_decimal("65535", 1, 65535), 65535u);
  EXPECT_EQ(parse_decimal("18446744073709551615", 0, kAny), kAny);
}

TEST(DecimalNumber, WhatTheCLibraryWouldGuessAtIsRefused) {
  // strtoull with base 0: hex, octal, a sign, spaces, and a wrap of -1 to 2^64-1.
  for (const char* text :
       {"0x1", "0X1", "010", "00", "-1", "+1", " 1", "1 ", "1.0", "1e1", "", "1,2", "١"})
    EXPECT_EQ(parse_decimal(text, 0, kAny), std::nullopt) << text;
}

TEST(DecimalNumber, OutOfRangeIsRefusedNotClamped) {
  EXPECT_EQ(parse_decimal("0", 1, kAny), std::nullopt);
  EXPECT_EQ(parse_decimal("65536", 1, 65535), std::nullopt);
  EXPECT_EQ(parse_decimal("18446744073709551616", 0, kAny), std::nullopt);
  EXPECT_EQ(parse_decimal("99999999999999999999", 0, kAny), std::nullopt);
}

}  // namespace
}  // namespace mailtap
