#include "proxy/smtp/credential_shape.hpp"

#include <gtest/gtest.h>

#include "proxy/smtp/base64.hpp"

namespace mailtap::smtp {
namespace {

TEST(CredentialShape, PlainMessage) {
  std::string user;
  EXPECT_TRUE(is_plain_message(std::string("\0u\0p", 4), user));
  EXPECT_EQ(user, "u");
  EXPECT_TRUE(is_plain_message(std::string("admin\0u\0p", 9), user));
  EXPECT_FALSE(is_plain_message(std::string("\0\0p", 3), user));
  EXPECT_FALSE(is_plain_message(std::string("\0u\0", 3), user));
  EXPECT_FALSE(is_plain_message(std::string("\0u\0p\0", 5), user));
  EXPECT_FALSE(is_plain_message(std::string("\0u\0p\n", 5), user));
  EXPECT_FALSE(is_plain_message("no nul at all", user));
}

TEST(CredentialShape, BearerToken) {
  std::size_t at = 0;
  EXPECT_TRUE(
      find_bearer_token("user=a\x01"
                        "auth=Bearer ya29.tok\x01\x01",
                        at));
  EXPECT_EQ(at, 7U);
  EXPECT_FALSE(find_bearer_token("auth=Bearer <redacted 8 bytes>", at));
  EXPECT_FALSE(find_bearer_token("auth=Bearer \x01", at));
  EXPECT_FALSE(find_bearer_token("no token", at));
}

// A line pasted where the server reads commands: a credential by its shape alone.
TEST(CredentialShape, EncodedCredentialLines) {
  EXPECT_TRUE(is_encoded_credential(base64_encode(std::string("\0alice\0s3cret-pw", 16))));
  EXPECT_TRUE(
      is_encoded_credential(base64_encode("user=carol@gmail.com\x01"
                                          "auth=Bearer ya29.tok\x01\x01")));
  EXPECT_TRUE(
      is_encoded_credential(base64_encode("n,a=carol@gmail.com,\x01"
                                          "auth=Bearer ya29.tok\x01\x01")));
  EXPECT_FALSE(is_encoded_credential("NOOP"));
  EXPECT_FALSE(is_encoded_credential("MAIL FROM:<a@b>"));
  EXPECT_FALSE(is_encoded_credential(base64_encode("just some text")));
  EXPECT_FALSE(is_encoded_credential(base64_encode(std::string("\0alice\0", 7))));
  EXPECT_FALSE(is_encoded_credential("AGFsaWNlAHB3 extra"));
}

}  // namespace
}  // namespace mailtap::smtp
