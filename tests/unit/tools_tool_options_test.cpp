// What the read-the-record tools share: here, what they add to "no database at PATH".
#include <gtest/gtest.h>

#include <string>

#include "tools/tool_options.hpp"

namespace mailtap::tools {
namespace {

// D14: a unit user runs `mailtap sessions` and meets "no database at ~/.local/share/...": the
// message says the path was the default, where the proxy and its unit record (one default).
TEST(ToolOptions, AMissingDefaultDatabaseSaysItIsWhereTheProxyAndTheUnitRecord) {
  ToolOptions given;  // --db, MAILTAP_DB or the config file's db: the user named it
  given.db = "/given.db";
  EXPECT_EQ(given.missing_database_note("/given.db"), "");

  const std::string note = ToolOptions{}.missing_database_note("/nonexistent/mailtap.db");
  EXPECT_EQ(note.rfind("the default database", 0), 0u) << note;
  EXPECT_NE(note.find("where mailtap proxy and its systemd user unit record"), std::string::npos)
      << note;
  EXPECT_EQ(note.find("local/state"), std::string::npos) << note;
}

}  // namespace
}  // namespace mailtap::tools
