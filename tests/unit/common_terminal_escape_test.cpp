// Text made safe for the terminal: wire text fully escaped, mailtap's own UTF-8 text kept
// readable while its control characters are still neutralised.
#include "proxy/common/terminal_escape.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailtap {
namespace {

using namespace std::string_literals;

TEST(TerminalEscape, WireTextShowsEveryNonAsciiByteEscaped) {
  EXPECT_EQ(escape_line("RFC 5321 \xc2\xa7"
                        "4.5.3.1.6\r\n"),
            "RFC 5321 \\xc2\\xa74.5.3.1.6\\r\\n");
}

TEST(TerminalEscape, MailtapsOwnTextKeepsItsUtf8) {
  EXPECT_EQ(escape_text("message line longer than 1000 octets with CRLF (RFC 5321 \xc2\xa7"
                        "4.5.3.1.6)"),
            "message line longer than 1000 octets with CRLF (RFC 5321 \xc2\xa7"
            "4.5.3.1.6)");
  EXPECT_EQ(escape_text("user=\"jos\xc3\xa9\" \xe2\x82\xac \xf0\x9f\x93\xa7\t"),
            "user=\"jos\xc3\xa9\" \xe2\x82\xac \xf0\x9f\x93\xa7\t");
}

TEST(TerminalEscape, MailtapsOwnTextStillCannotDriveTheTerminal) {
  // A note quotes what a client sent (user="..."): escape sequences, a C1 CSI (U+009B),
  // line breaks and bytes that are not UTF-8 are escaped as in wire text.
  EXPECT_EQ(escape_text("user=\"a\x1b]0;T\x07\x1b[2J\r\nb\""),
            "user=\"a\\x1b]0;T\\x07\\x1b[2J\\r\\nb\"");
  EXPECT_EQ(escape_text("\xc2\x9b"
                        "31m\x7f"),
            "\\xc2\\x9b31m\\x7f");
  EXPECT_EQ(escape_text("caf\xe9 \xed\xa0\x80"s + '\0'), "caf\\xe9 \\xed\\xa0\\x80\\x00");
}

}  // namespace
}  // namespace mailtap
