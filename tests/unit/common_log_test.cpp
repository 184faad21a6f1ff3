// mailtap's stderr lines: whatever a server or client put in the text they quote, a line
// reaches the terminal as one line of printable text.
#include "proxy/common/log.hpp"

#include <gtest/gtest.h>

namespace mailtap::log {
namespace {

TEST(Log, PeerTextQuotedInALineCannotDriveTheTerminal) {
  testing::internal::CaptureStderr();
  error(
      "session 1: refused: 554 go away \x1b]0;PWNED\x07\x1b[2J\r\nsecond line \xc2\x9b"
      "31m");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "mailtap: session 1: refused: 554 go away \\x1b]0;PWNED\\x07\\x1b[2J\\r\\nsecond line "
            "\\xc2\\x9b31m\n");
}

TEST(Log, MailtapsOwnUtf8StaysReadable) {
  testing::internal::CaptureStderr();
  error("user jos\xc3\xa9 \xe2\x86\x92 done");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "mailtap: user jos\xc3\xa9 \xe2\x86\x92 done\n");
}

}  // namespace
}  // namespace mailtap::log
