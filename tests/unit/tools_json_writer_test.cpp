// The tools' JSON writer: what it writes is strict JSON in well-formed UTF-8 whatever the
// input, and bytes that are not UTF-8 survive as base64 beside an `_encoding` member.
#include "tools/json_writer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {
namespace {

using namespace std::string_literals;

TEST(JsonWriter, EscapeCopiesUtf8AndEscapesControls) {
  EXPECT_EQ(json_escape("caf\xc3\xa9 \xf0\x9f\x93\xa7"), "caf\xc3\xa9 \xf0\x9f\x93\xa7");
  EXPECT_EQ(json_escape("\"a\\b\"\r\n\t"), R"(\"a\\b\"\r\n\t)");
  EXPECT_EQ(json_escape("\x1b[2J\x7f"s + '\0'), R"(\u001b[2J\u007f\u0000)");
  // C1 controls (U+009B is CSI) are escaped too, so JSON on a terminal cannot drive it.
  EXPECT_EQ(json_escape("\xc2\x9b"
                        "2J \xc2\x80 \xc2\xa0"),
            "\\u009b2J \\u0080 \xc2\xa0");
}

TEST(JsonWriter, EscapeNeverCopiesBytesThatAreNotUtf8) {
  // Latin-1, a UTF-16 surrogate, an overlong form, a code point above U+10FFFF, a cut-off
  // character: each byte becomes U+FFFD, so no strict parser rejects the output and no byte
  // passes for a different character (\u00e9 would read as "é").
  for (const std::string& bad : {"caf\xe9\xff"s, "sur\xed\xa0\x80x"s,
                                 "ov\xe0\x80\xaf"
                                 "er"s,
                                 "\xf4\x90\x80\x80"s, "cut\xe2\x82"s}) {
    const std::string out = json_escape(bad);
    EXPECT_TRUE(is_valid_utf8(out)) << out;
    EXPECT_EQ(out.find("\\u00"), std::string::npos) << out;
    EXPECT_NE(out.find("\\ufffd"), std::string::npos) << out;
  }
  EXPECT_EQ(json_escape("caf\xe9\xff"), R"(caf\ufffd\ufffd)");
}

TEST(JsonWriter, BytesMemberKeepsEveryOctet) {
  JsonWriter w;
  w.begin_object();
  write_bytes_member(w, "auth_user", "alice");
  write_bytes_member(w, "mail_from", "sur\xed\xa0\x80x");
  w.end_object();
  EXPECT_EQ(w.str(), R"({"auth_user":"alice","mail_from":")" +
                         smtp::base64_encode("sur\xed\xa0\x80x") +
                         R"(","mail_from_encoding":"base64"})");
}

TEST(JsonWriter, BytesArrayMemberIsBase64AsAWholeWhenOneItemIsNotUtf8) {
  JsonWriter w;
  w.begin_object();
  write_bytes_array_member(w, "ok", std::vector<std::string>{"EHLO a", "caf\xc3\xa9"});
  write_bytes_array_member(w, "sent", std::vector<std::string>{"EHLO a", "MAIL FROM:<\xff>"});
  w.end_object();
  EXPECT_EQ(w.str(), R"({"ok":["EHLO a","caf)"
                     "\xc3\xa9"
                     R"("],"sent":[")" +
                         smtp::base64_encode("EHLO a") + R"(",")" +
                         smtp::base64_encode("MAIL FROM:<\xff>") +
                         R"("],"sent_encoding":"base64"})");
}

}  // namespace
}  // namespace mailtap::tools
