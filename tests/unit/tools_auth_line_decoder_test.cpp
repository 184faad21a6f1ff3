// `mailtap decode` of a bare line: what the recorder keeps out of the record as a credential is
// shown as <secret, N bytes>, well-formed or not (docs/tools/decode.md).
#include "tools/auth_line_decoder.hpp"

#include <gtest/gtest.h>

#include <string>

#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {
namespace {

using namespace std::string_literals;
using smtp::base64_encode;

std::string decode(std::string_view line, bool show_secret = false) {
  AuthLineDecoder decoder(show_secret);
  return decoder.line(line).value_or("(nothing)");
}

std::string url_safe(std::string s) {
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

// A PLAIN blob built by hand and slightly wrong (secrets exploration finding 5): the recorder
// redacts it as a line without a verb, so decode does not show its password either.
TEST(AuthLineDecoder, AMalformedPlainBlobKeepsItsPasswordSecret) {
  const std::string pw = "Hunter2-pw";
  for (const std::string& decoded :
       {"alice\0"s + pw, "\0\0"s + pw + "\0"s + pw, "\0"s + pw + "\0"s + pw,
        "\0alice\0"s + pw + "\0extra", "\0alice\0"s + pw + "\0"s + pw}) {
    for (const std::string& line :
         {base64_encode(decoded), url_safe(base64_encode(decoded)),
          base64_encode(decoded).substr(0, base64_encode(decoded).find('='))}) {
      SCOPED_TRACE(line);
      const std::string out = decode(line);
      EXPECT_EQ(out.find("Hunter2"), std::string::npos) << out;
      EXPECT_NE(out.find("<secret, "), std::string::npos) << out;
      EXPECT_NE(decode(line, /*show_secret=*/true).find("Hunter2"), std::string::npos);
    }
  }
  EXPECT_EQ(decode(base64_encode("alice\0"s + pw)),
            "PLAIN response, malformed (1 NUL where RFC 4616 has 2: authzid NUL authcid NUL "
            "password; the leading NUL left out?), kept out of the record whole: <secret, 16 "
            "bytes>");
  EXPECT_EQ(decode(base64_encode("\0"s + pw + "\0"s + pw)),
            "PLAIN response kept out of the record whole (a name in it gives the password away, "
            "or is no text): <secret, 22 bytes>");
}

// A well-formed blob in the URL-safe alphabet or without its padding is read as the recorder
// reads it: a PLAIN response.
TEST(AuthLineDecoder, AUrlSafeOrUnpaddedBlobIsAPlainResponse) {
  const std::string blob = base64_encode("\0alice\0p>?~"s);  // "AGFsaWNlAHA+P34="
  for (const std::string& line : {blob, url_safe(blob), url_safe(blob.substr(0, blob.find('=')))})
    EXPECT_EQ(decode(line),
              "PLAIN response: authzid=\"\" authcid=\"alice\" password=<secret, 4 bytes>")
        << line;
}

// A bearer token that no XOAUTH2 or OAUTHBEARER form holds, and a blob with junk after it.
TEST(AuthLineDecoder, OtherCredentialsOutsideAnExchangeAreNotShown) {
  const std::string out = decode(base64_encode("auth=Bearer ya29.secret-token"));
  EXPECT_EQ(out.find("secret-token"), std::string::npos) << out;
  EXPECT_NE(out.find("<secret, 29 bytes>"), std::string::npos) << out;
  const std::string junk = decode(base64_encode("\0alice\0Hunter2-pw"s) + " junk");
  EXPECT_EQ(junk.find("Hunter2"), std::string::npos) << junk;
  EXPECT_NE(junk.find("keeps the line out of the record"), std::string::npos) << junk;
}

// What is no credential is shown as before.
TEST(AuthLineDecoder, TextIsShownAsText) {
  EXPECT_EQ(decode("UGFzc3dvcmQ6"), "base64 of \"Password:\"");
  EXPECT_EQ(decode("hello world"),
            "not an AUTH line, a 334 challenge, a reply or base64 (11 "
            "characters)");
  EXPECT_EQ(decode(base64_encode("\0u\0p\0"s)), "base64 of \"\\x00u\\x00p\\x00\"");
}

}  // namespace
}  // namespace mailtap::tools
