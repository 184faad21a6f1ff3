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

TEST(Log, JournalOnlyWhenJournalStreamNamesStderrItself) {
  struct stat st {};
  st.st_dev = 27;
  st.st_ino = 4711;
  st.st_mode = S_IFSOCK | 0777;
  EXPECT_EQ(destination_of("27:4711", st), Destination::journal);
  // stdout's stream under the unit, with stderr redirected elsewhere: not the journal.
  EXPECT_EQ(destination_of("27:4712", st), Destination::plain);
  EXPECT_EQ(destination_of("27:4711x", st), Destination::plain);
  EXPECT_EQ(destination_of("", st), Destination::plain);
  EXPECT_EQ(destination_of(nullptr, st), Destination::plain);
  st.st_mode = S_IFREG | 0644;
  EXPECT_EQ(destination_of(nullptr, st), Destination::file);
  EXPECT_EQ(destination_of("27:4711", st), Destination::journal);
}

TEST(Log, LineStartIsThePriorityForTheJournalAndTheUtcTimeForAFile) {
  using namespace std::chrono;
  const system_clock::time_point t = system_clock::from_time_t(1796553175) + milliseconds(913);
  EXPECT_EQ(line_start(Destination::journal, Priority::error, t), "<3>");
  EXPECT_EQ(line_start(Destination::journal, Priority::warning, t), "<4>");
  EXPECT_EQ(line_start(Destination::journal, Priority::notice, t), "<5>");
  EXPECT_EQ(line_start(Destination::journal, Priority::info, t), "<6>");
  EXPECT_EQ(line_start(Destination::journal, Priority::debug, t), "<7>");
  EXPECT_EQ(line_start(Destination::file, Priority::info, t), "2026-12-06T10:32:55.913Z ");
  EXPECT_EQ(line_start(Destination::plain, Priority::error, t), "");
}

}  // namespace
}  // namespace mailtap::log
