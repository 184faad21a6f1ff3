#include "tools/credential_scan.hpp"

#include <gtest/gtest.h>

#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {
namespace {

using smtp::base64_encode;

std::vector<std::string> whats(std::string_view bytes, CredentialScanOptions o = {}) {
  std::vector<std::string> out;
  for (const auto& f : scan_for_credentials(bytes, o)) out.push_back(f.what);
  return out;
}

TEST(CredentialScan, FindsAPlainBlobAndNamesOnlyTheUser) {
  const std::string blob = base64_encode(std::string("\0alice\0s3cret-pw", 16));
  const auto found = scan_for_credentials("AUTH PLAIN " + blob + "\r\n", {});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].offset, 11u);
  EXPECT_EQ(found[0].what, "base64 SASL PLAIN blob (user \"alice\")");
  EXPECT_EQ(found[0].what.find("s3cret"), std::string::npos);
}

TEST(CredentialScan, RedactedRenderingsAndOrdinaryTextAreClean) {
  EXPECT_TRUE(whats("AUTH PLAIN [authzid=\"\" authcid=\"alice\" password=<redacted 14 bytes>]\r\n")
                  .empty());
  EXPECT_TRUE(whats("334 VXNlcm5hbWU6\r\n").empty());
  EXPECT_TRUE(whats("Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29ybGQhIQ==\r\n").empty());
  EXPECT_TRUE(whats("user=alice\x01"
                    "auth=Bearer <redacted 20 bytes>\x01\x01")
                  .empty());
}

TEST(CredentialScan, FindsBearerTokensInClearAndInBase64) {
  const std::string xoauth2 =
      "user=alice\x01"
      "auth=Bearer ya29.tokenvalue\x01\x01";
  EXPECT_EQ(whats(xoauth2), std::vector<std::string>{"OAuth bearer token (auth=Bearer) in clear"});
  EXPECT_EQ(whats("AUTH XOAUTH2 " + base64_encode(xoauth2)),
            std::vector<std::string>{"base64 XOAUTH2/OAUTHBEARER blob with a bearer token"});
}

TEST(CredentialScan, FindsAKnownPasswordInEveryDisguise) {
  CredentialScanOptions o;
  o.known_password = "hunter22";
  EXPECT_EQ(whats("note: hunter22", o),
            std::vector<std::string>{"the --password-env password, in clear"});
  EXPECT_EQ(whats(base64_encode("hunter22") + "\r\n", o),
            std::vector<std::string>{"the --password-env password, base64-encoded"});
  const auto in_blob = whats(base64_encode("user hunter22 here"), o);
  EXPECT_EQ(in_blob, std::vector<std::string>{"the --password-env password, inside a base64 blob"});
  EXPECT_TRUE(whats("nothing to see", o).empty());
}

TEST(CredentialScan, Base64TextLines) {
  EXPECT_TRUE(looks_like_base64_text(base64_encode("bob-secret-2")));
  EXPECT_FALSE(looks_like_base64_text("*"));
  EXPECT_FALSE(looks_like_base64_text("="));
  EXPECT_FALSE(looks_like_base64_text("[password=<redacted 12 bytes>]"));
  EXPECT_FALSE(looks_like_base64_text(base64_encode(std::string("\x01\x02", 2))));
}

TEST(SmugglingShapes, OnlyNonCrlfDotLinesAreReported) {
  EXPECT_TRUE(find_smuggling_shapes("a\r\n..b\r\n.\r\n").empty());
  auto s = find_smuggling_shapes("a\n.\nMAIL FROM:<x>\r\n.\r\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].shape, "\\n.\\n");
  EXPECT_EQ(s[0].offset, 2u);
  s = find_smuggling_shapes("a\r.\rb\r\n.\r\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].shape, "\\r.\\r");
  s = find_smuggling_shapes("a\r\n.\nb\n.\r\nc\r\n.\r\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].shape, "\\r\\n.\\n");
  EXPECT_EQ(s[1].shape, "\\n.\\r\\n");
}

}  // namespace
}  // namespace mailtap::tools
