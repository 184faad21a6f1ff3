#include "tools/credential_scan.hpp"

#include <gtest/gtest.h>

#include "proxy/smtp/base64.hpp"
#include "tests/unit/plain_shaped_octets_for_tests.hpp"

namespace mailtap::tools {
namespace {

using smtp::base64_encode;
using namespace std::string_literals;

std::vector<std::string> whats(std::string_view bytes, const CredentialScanOptions& o = {}) {
  std::vector<std::string> out;
  for (const auto& f : scan_for_credentials(bytes, o)) out.push_back(f.what);
  return out;
}

// What a scan of a message body finds.
std::vector<std::string> body_whats(std::string_view bytes) {
  std::vector<std::string> out;
  for (const auto& f : scan_for_credentials(bytes, {}, 0, /*message_body=*/true))
    out.push_back(f.what);
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

// A blob whose user name is its password ("\0pw\0pw", the password typed into both fields):
// naming the user would print the password.
TEST(CredentialScan, DoesNotNameAUserWhoIsThePassword) {
  const std::string blob = base64_encode(std::string("\0s3cret-pw\0s3cret-pw", 20));
  for (const bool body : {false, true}) {
    const auto found = scan_for_credentials("AUTH PLAIN " + blob + "\r\n", {}, 0, body);
    ASSERT_EQ(found.size(), 1u) << body;
    EXPECT_EQ(found[0].what, "base64 SASL PLAIN blob (its user name is its password: not shown)");
  }
}

// RFC 4616 texts are UTF-8: a user or password beyond ASCII is still a PLAIN blob.
TEST(CredentialScan, FindsPlainBlobsWithUtf8Texts) {
  for (const auto& [message, user] :
       {std::pair{"\0jörg\0pässwörd-§"s, "jörg"}, std::pair{"admin\0用户\0密码🔑"s, "用户"}}) {
    const auto found = scan_for_credentials("AUTH PLAIN " + base64_encode(message) + "\r\n", {});
    ASSERT_EQ(found.size(), 1u) << message;
    EXPECT_EQ(found[0].offset, 11u);
    // As audit.md has findings: UTF-8 as it is.
    EXPECT_EQ(found[0].what, "base64 SASL PLAIN blob (user \"" + std::string(user) + "\")");
  }
}

// Outside a body the test is the byte shape the dialogue redacts by: a password in Latin-1 that
// the redaction missed (an old recording, a bug) is a leak there, as in the proxy. In a body,
// where attachment lines have that shape by chance, only RFC 4616 UTF-8 text counts.
TEST(CredentialScan, ALatin1PasswordIsAPlainBlobOutsideABodyOnly) {
  const std::string blob = base64_encode("\0alice\0p\xe4sswort"s);
  const auto found = scan_for_credentials(blob + "\r\n", {});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].what, "base64 SASL PLAIN blob (user \"alice\")");
  EXPECT_TRUE(scan_for_credentials(blob + "\r\n", {}, 0, /*message_body=*/true).empty());
}

// The quotes around the user hold all of it: a quote or a backslash in it is escaped.
TEST(CredentialScan, AUserWithQuotesIsQuotedUnambiguously) {
  const auto found = whats(base64_encode("\0say \"hi\" \\o/\0pw"s));
  EXPECT_EQ(found,
            std::vector<std::string>{"base64 SASL PLAIN blob (user \"say \\\"hi\\\" \\\\o/\")"});
}

// A base64 attachment decodes, line by line, to random octets; some lines have two NULs and no
// ASCII control (about one in 70,000), which is not what a PLAIN blob is.
TEST(CredentialScan, Base64LinesOfRandomOctetsAreNoPlainBlob) {
  std::string body = "Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  for (const std::string& line : mailtap::testing::random_lines_of_plain_shape(6)) {
    EXPECT_TRUE(body_whats(base64_encode(line)).empty()) << base64_encode(line);
    body += base64_encode(line) + "\r\n";
  }
  EXPECT_TRUE(body_whats(body).empty());
}

// The lines of a wrapped base64 encoding (MIME's 76 characters) are slices of something larger,
// cut wherever the width falls: whatever their octets, no PLAIN blob. A line of its own is.
TEST(CredentialScan, ALineOfAWrappedEncodingIsNoPlainBlob) {
  const std::string wrapped =
      mailtap::testing::wrapped_base64(mailtap::testing::string_table(4000));
  EXPECT_TRUE(whats(wrapped).empty());
  std::string line;  // one that decodes to "text NUL text NUL text"
  for (std::size_t i = 78; line.empty() && i < wrapped.size(); i += 78) {
    if (!whats(wrapped.substr(i, 76)).empty()) line = wrapped.substr(i, 76);
  }
  ASSERT_FALSE(line.empty());
  // Whether `line`, after `before`, is found.
  const auto found_after = [&line](const std::string& before) {
    for (const auto& f : scan_for_credentials(before + line + "\r\n", {}))
      if (f.offset == before.size()) return true;
    return false;
  };
  EXPECT_TRUE(found_after("Subject: x\r\n\r\n"));
  EXPECT_TRUE(found_after("AUTH PLAIN\r\n"));
  EXPECT_TRUE(found_after(line.substr(0, 64) + "\r\n"));   // a shorter line before it
  EXPECT_TRUE(found_after(line.substr(0, 75) + "=\r\n"));  // the end of an encoding before it
  EXPECT_FALSE(found_after(line + "\r\n"));                // it continues the line before
  // The line before the scanned bytes, as the caller knows it.
  EXPECT_TRUE(scan_for_credentials(line + "\r\n", {}, 76).empty());
  EXPECT_EQ(scan_for_credentials(line + "\r\n", {}, 0).size(), 1u);
  EXPECT_EQ(wrapped_width_before(wrapped, 78, 0), 76u);
  EXPECT_EQ(wrapped_width_before("Subject: x\r\n", 12, 0), 0u);
  EXPECT_EQ(wrapped_width_before("abc", 0, 76), 76u);
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
  const CredentialScanOptions o(smtp::Secret::copy_of("hunter22"));
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
