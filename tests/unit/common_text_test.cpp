// The shared helpers of proxy/common: hex digits, \xHH escapes, line ends, UTF-8.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap {
namespace {

TEST(CommonHex, LowerCaseTwoDigitsAByte) {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff};
  EXPECT_EQ(to_hex(bytes, sizeof bytes), "000fa5ff");
  EXPECT_EQ(to_hex(std::string_view("\x01\x7f", 2)), "017f");
  EXPECT_EQ(to_hex(bytes, 0), "");
}

TEST(CommonHex, FingerprintsAreUpperCaseWithColons) {
  const unsigned char bytes[] = {0x9f, 0x86, 0x0d};
  EXPECT_EQ(to_hex_colons(bytes, sizeof bytes), "9F:86:0D");
  EXPECT_EQ(to_hex_colons(bytes, 1), "9F");
  EXPECT_EQ(to_hex_colons(bytes, 0), "");
}

TEST(CommonHex, AppendsIntoAnyCharContainer) {
  std::string s = "fp=";
  append_hex(s, 0xab);
  EXPECT_EQ(s, "fp=ab");
  smtp::Secret secret(4);
  append_hex(secret, 0x0c);
  EXPECT_EQ(secret.view(), "0c");
}

TEST(CommonHex, EscapeIsBackslashXAndTwoLowerCaseDigits) {
  std::string s;
  append_hex_escape(s, 0x1b);
  append_hex_escape(s, 0x00);
  append_hex_escape(s, 0xff);
  EXPECT_EQ(s, "\\x1b\\x00\\xff");
}

std::string unescaped(std::string_view in, char escape, char as_space = '\0') {
  std::string out;
  append_hex_unescaped(in, escape, out, as_space);
  return out;
}

TEST(CommonHex, APairOfDigitsInEitherCaseIsAnOctet) {
  EXPECT_EQ(hex_pair_value("3D"), '=');
  EXPECT_EQ(hex_pair_value("fFx"), 0xff);
  EXPECT_EQ(hex_pair_value("3"), -1);
  EXPECT_EQ(hex_pair_value("3g"), -1);
  EXPECT_EQ(hex_pair_value(""), -1);
}

TEST(CommonHex, AnEscapeWithoutTwoDigitsStaysAsWritten) {
  EXPECT_EQ(unescaped("a%20b+c%2", '%', '+'), "a b c%2");
  EXPECT_EQ(unescaped("50%.pdf%zz%", '%'), "50%.pdf%zz%");
  EXPECT_EQ(unescaped("caf=E9_=3D=", '=', '_'), "caf\xe9 ==");
  EXPECT_EQ(unescaped("a+b", '%'), "a+b");
}

TEST(CommonText, StripCrlfRemovesEveryTrailingLineEndByte) {
  EXPECT_EQ(strip_crlf("EHLO x\r\n"), "EHLO x");
  EXPECT_EQ(strip_crlf("EHLO x\n"), "EHLO x");
  EXPECT_EQ(strip_crlf("EHLO x\r\r\n\n"), "EHLO x");
  EXPECT_EQ(strip_crlf("a\r\nb"), "a\r\nb");  // only at the end
  EXPECT_EQ(strip_crlf("\r\n"), "");
  EXPECT_EQ(strip_crlf(""), "");
}

TEST(CommonText, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\r\n"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(CommonText, Utf8CharLengthIsTheValidatorsStep) {
  EXPECT_EQ(utf8_char_length(""), 0u);
  EXPECT_EQ(utf8_char_length("ab"), 1u);
  EXPECT_EQ(utf8_char_length("\xc3\xa9x"), 2u);
  EXPECT_EQ(utf8_char_length("\xe2\x82\xac"), 3u);
  EXPECT_EQ(utf8_char_length("\xf0\x9f\x93\xa7"), 4u);
  EXPECT_EQ(utf8_char_length("\xff"), 0u);
  EXPECT_EQ(utf8_char_length("\xe9t"), 0u);             // Latin-1, not UTF-8
  EXPECT_EQ(utf8_char_length("\xe0\x80\xaf"), 0u);      // overlong
  EXPECT_EQ(utf8_char_length("\xed\xa0\x80"), 0u);      // surrogate
  EXPECT_EQ(utf8_char_length("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(utf8_char_length("\xe2\x82"), 0u);          // truncated
}

TEST(CommonText, PutUtf8EncodesEachLength) {
  std::string out;
  auto put = [&out](char c) { out.push_back(c); };
  for (std::uint32_t cp : {0x41u, 0xe9u, 0x20acu, 0x1f4e7u}) put_utf8(cp, put);
  EXPECT_EQ(out, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\xa7");
  EXPECT_TRUE(is_valid_utf8(out));
}

// The suggested commands (`mailtap proxy --db PATH`) must run as printed whatever PATH holds.
TEST(CommonText, ShellQuotedIsOneWordForTheShell) {
  EXPECT_EQ(shell_quoted("/home/ann/mailtap.db"), "'/home/ann/mailtap.db'");
  EXPECT_EQ(shell_quoted("/home/o'brien/m.db"), "'/home/o'\\''brien/m.db'");
  EXPECT_EQ(shell_quoted(""), "''");
  EXPECT_EQ(shell_quoted("a $b `c` \\d"), "'a $b `c` \\d'");
}

}  // namespace
}  // namespace mailtap
