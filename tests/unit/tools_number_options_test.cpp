#include "tools/number_options.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

namespace mailtap::tools {
namespace {

// What CLI11 says when `args` are parsed; "" when they parse.
std::string parse_error(CLI::App& app, std::vector<std::string> args) {
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    EXPECT_EQ(e.get_exit_code(), static_cast<int>(CLI::ExitCodes::ValidationError));
    return e.what();
  }
  return "";
}

TEST(NumberOptions, ASessionIdIsRefusedSayingWhatOneIs) {
  CLI::App app;
  std::int64_t id = 0;
  add_session_id(app, "id", id, "session");
  EXPECT_EQ(parse_error(app, {"0x1"}),
            "not a session id: 0x1 (a session id is a number such as 12, see `mailtap sessions`)");
  EXPECT_EQ(parse_error(app, {"99999999999999999999"}).rfind("not a session id: 9999", 0), 0u);
  EXPECT_EQ(parse_error(app, {"9223372036854775807"}), "");
  EXPECT_EQ(id, 9223372036854775807);
}

TEST(NumberOptions, EverySessionIdOfAList) {
  CLI::App app;
  std::vector<std::int64_t> ids;
  add_session_ids(app, "id", ids, "sessions");
  EXPECT_EQ(parse_error(app, {"3", "1", "3"}), "");
  EXPECT_EQ(ids, (std::vector<std::int64_t>{3, 1, 3}));
  CLI::App strict;
  add_session_ids(strict, "id", ids, "sessions");
  EXPECT_EQ(parse_error(strict, {"3", "-1"}).rfind("not a session id: -1 (", 0), 0u);
}

TEST(NumberOptions, ACountNamesItsOptionAndRange) {
  const NumberKind days{"a number of days", "a whole number from 0 to 36500, such as 30", 0, 36500};
  CLI::App app;
  int expiry = 30;
  std::optional<std::size_t> keep;
  add_number_option(app, "--expiry-days", days, expiry, "days");
  add_number_option(app, "--keep", NumberKind{"a number of sessions", "such as 10"}, keep, "keep");
  EXPECT_EQ(parse_error(app, {"--expiry-days", "-1"}),
            "--expiry-days: not a number of days: -1 (a whole number from 0 to 36500, such as "
            "30)");
  CLI::App again;
  add_number_option(again, "--expiry-days", days, expiry, "days");
  add_number_option(again, "--keep", NumberKind{"a number of sessions", "such as 10"}, keep,
                    "keep");
  EXPECT_EQ(parse_error(again, {"--expiry-days", "7"}), "");
  EXPECT_EQ(expiry, 7);
  EXPECT_FALSE(keep.has_value()) << "not given, not set";
}

}  // namespace
}  // namespace mailtap::tools
