#include "tools/chunk_command_scan.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

namespace mailtap::tools {
namespace {

// The chunk handed over whole, then one octet at a time: both must find the same lines.
std::set<std::string> found_in(std::string_view chunk) {
  ChunkCommandScan whole;
  whole.add(chunk);
  const std::set<std::string> found = whole.take();
  ChunkCommandScan bytewise;
  for (const char c : chunk) bytewise.add(std::string_view(&c, 1));
  EXPECT_EQ(bytewise.take(), found) << chunk;
  return found;
}

TEST(ChunkCommandScan, FindsTheTransactionCommandsAtLineStarts) {
  EXPECT_EQ(found_in("Subject: x\r\n\r\nRSET\r\nmail from:<ceo@x>\r\nRCPT TO:<c@y>\r\nBDAT 8 "
                     "LAST\r\n"),
            (std::set<std::string>{"BDAT", "MAIL FROM", "RCPT TO", "RSET"}));
  EXPECT_EQ(found_in("text\ndata\n"), (std::set<std::string>{"DATA"}));
  EXPECT_EQ(found_in("text\r\nRSET"), (std::set<std::string>{"RSET"}));  // the chunk's end
  EXPECT_EQ(found_in("text\r\nRSET \t\r\n"), (std::set<std::string>{"RSET"}));
  EXPECT_EQ(found_in("text\r\nDATA "), (std::set<std::string>{"DATA"}));
}

// DATA and RSET take no parameter: prose that begins with the word is no command.
TEST(ChunkCommandScan, DataOrRsetFollowedByWordsIsProse) {
  EXPECT_TRUE(found_in("Data protection notice\r\n").empty());
  EXPECT_TRUE(found_in("Hello,\r\nRSET the counter first\r\n").empty());
  EXPECT_TRUE(found_in("DATA\tsheet\r\n").empty());
  EXPECT_TRUE(found_in("Database\r\nresets\r\n").empty());
  EXPECT_TRUE(found_in("text RSET\r\n MAIL FROM:<a@x>\r\n").empty());  // not at a line start
}

// A line that spans two pieces is judged once whole.
TEST(ChunkCommandScan, ALineAcrossPiecesIsReadAsOne) {
  ChunkCommandScan scan;
  scan.add("x\r\nDA");
  scan.add("TA protection\r\nRC");
  scan.add("PT TO:<a@x>\r\n");
  EXPECT_EQ(scan.take(), (std::set<std::string>{"RCPT TO"}));
  scan.add("RSET\r\n");  // a new chunk starts at a line start
  EXPECT_EQ(scan.take(), (std::set<std::string>{"RSET"}));
}

}  // namespace
}  // namespace mailtap::tools
