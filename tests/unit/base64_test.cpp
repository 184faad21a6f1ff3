#include "proxy/smtp/base64.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailtap::smtp {
namespace {

using namespace std::string_literals;

TEST(Base64, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("\xfb\xff"s), "+/8=");
}

TEST(Base64, DecodesRfc4648Vectors) {
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("Zg=="), "f");
  EXPECT_EQ(base64_decode("Zm8="), "fo");
  EXPECT_EQ(base64_decode("Zm9v"), "foo");
  EXPECT_EQ(base64_decode("Zm9vYg=="), "foob");
  EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(base64_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64_decode("+/8="), "\xfb\xff"s);
  EXPECT_EQ(base64_decode("AGFsaWNlAHB3"), "\0alice\0pw"s);
}

TEST(Base64, RoundTripsEveryByteAndLength) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n <= all.size(); ++n) {
    const std::string in = all.substr(all.size() - n);
    const std::string enc = base64_encode(in);
    EXPECT_EQ(enc.size() % 4, 0u);
    EXPECT_EQ(base64_decode(enc), in) << enc;
  }
}

TEST(Base64, RejectsBadLength) {
  EXPECT_FALSE(base64_decode("Z"));
  EXPECT_FALSE(base64_decode("Zg"));
  EXPECT_FALSE(base64_decode("Zg="));
  EXPECT_FALSE(base64_decode("Zm9vY"));
  EXPECT_FALSE(base64_decode("="));
}

TEST(Base64, RejectsBadPadding) {
  EXPECT_FALSE(base64_decode("===="));
  EXPECT_FALSE(base64_decode("Z==="));
  EXPECT_FALSE(base64_decode("Zg==Zg=="));  // padding in the middle
  EXPECT_FALSE(base64_decode("Z=g="));
  EXPECT_FALSE(base64_decode("Zm=v"));
  EXPECT_FALSE(base64_decode("Zg==="));
}

TEST(Base64, RejectsNonCanonicalPadBits) {
  EXPECT_FALSE(base64_decode("Zh=="));  // "Zg==" is the only encoding of "f"
  EXPECT_FALSE(base64_decode("Zm9="));  // "Zm8=" is the only encoding of "fo"
}

TEST(Base64, RejectsForeignCharacters) {
  EXPECT_FALSE(base64_decode("Zm9v YmFy"));
  EXPECT_FALSE(base64_decode("Zm9v\r\n"));
  EXPECT_FALSE(base64_decode(" Zm9v"));
  EXPECT_FALSE(base64_decode("-_8="));  // URL-safe alphabet is not SASL's
  EXPECT_FALSE(base64_decode("Zm9\0"s));
  EXPECT_FALSE(base64_decode("Zm9\xff"s));
}

// Secrets decode into a Secret sized once (no reallocation leaves a copy behind); a rejected
// line gives nothing (what was decoded of it is wiped with the Secret).
TEST(Base64, DecodeSecretGivesAllOrNothing) {
  EXPECT_FALSE(base64_decode_secret("Zm9vYmF!"));
  const std::optional<Secret> s = base64_decode_secret("Zm9vYmFy");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->view(), "foobar");
  EXPECT_EQ(s->capacity(), 6u);
}

TEST(Base64, EncodeAppendFillsASecretInPlace) {
  Secret s(4 + base64_encoded_size(100) + 2);
  ASSERT_TRUE(s.append("AUTH"));
  const std::string long_input(100, '\x7f');  // more than one internal chunk
  ASSERT_TRUE(base64_encode_append(long_input, s));
  ASSERT_TRUE(s.append("\r\n"));
  EXPECT_EQ(s.view(), "AUTH" + base64_encode(long_input) + "\r\n");
  EXPECT_EQ(s.room(), 0u);
}

TEST(Base64, EncodeAppendRefusesWhatDoesNotFit) {
  Secret s(7);
  ASSERT_TRUE(s.append("x"));
  EXPECT_FALSE(base64_encode_append("foobar", s));  // needs 8
  EXPECT_EQ(s.view(), "x");
  EXPECT_TRUE(base64_encode_append("", s));
  EXPECT_EQ(s.view(), "x");
}

TEST(Base64, DecodeSecretFollowsTheSameRules) {
  const std::optional<Secret> plain = base64_decode_secret("AGFsaWNlAHB3");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->view(), "\0alice\0pw"s);
  ASSERT_TRUE(base64_decode_secret(""));
  EXPECT_TRUE(base64_decode_secret("")->empty());
  EXPECT_EQ(base64_decode_secret("Zg==")->view(), "f");
  EXPECT_EQ(base64_decode_secret("Zm8=")->view(), "fo");
  EXPECT_FALSE(base64_decode_secret("Zh=="));
  EXPECT_FALSE(base64_decode_secret("Zm9="));
  EXPECT_FALSE(base64_decode_secret("Zg"));
  EXPECT_FALSE(base64_decode_secret("Zm9v\r\n"));
  EXPECT_FALSE(base64_decode_secret("Zg==Zg=="));
}

TEST(Base64, LongInputsRoundTrip) {
  std::string big;
  for (int i = 0; i < 20000; ++i) big += static_cast<char>(i * 7);
  const std::string enc = base64_encode(big);
  EXPECT_EQ(base64_decode(enc), big);
  EXPECT_EQ(base64_decode_secret(enc)->view(), big);
}

}  // namespace
}  // namespace mailtap::smtp
