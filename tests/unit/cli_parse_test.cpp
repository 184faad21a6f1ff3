// Durations on the command line: the units, and a clear refusal of a value too long for the
// clocks that measure it (a huge --timeout-command used to end every session at once).
#include "proxy/cli/parse.hpp"

#include <gtest/gtest.h>

#include "proxy/options/timeout_options.hpp"

namespace mailtap::cli {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, Units) {
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("2s"), 2s);
  EXPECT_EQ(parse_duration("7"), 7s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("5min"), 5min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_EQ(parse_duration("0"), 0ms);
  for (const char* bad : {"", "1d", "-5s", "s", "1.5s", "5 s"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(ParseDuration, UpToAWeek) {
  EXPECT_EQ(parse_duration("168h"), 168h);
  EXPECT_EQ(parse_duration("604800s"), 168h);
  for (const char* too_long :
       {"169h", "604801s", "2562047h", "2562048h", "99999999999h", "99999999999999999999999999s"})
    EXPECT_FALSE(parse_duration(too_long)) << too_long;
}

TEST(ParseDuration, TheRefusalSaysWhy) {
  EXPECT_EQ(duration_refusal("--grace", "1d"), "--grace 1d: expected a duration such as 30s or 5m");
  EXPECT_EQ(duration_refusal("--grace", "169h"),
            "--grace 169h: too long; the longest is 168h (a week)");
}

// "0s" is written as the example is: a refusal that named the syntax ("expected a duration")
// left the rule unsaid, a timeout above zero (--grace alone takes 0).
TEST(ParseDuration, AZeroLimitIsRefusedSayingTheRule) {
  std::chrono::milliseconds limit{};
  for (const char* zero : {"0", "0s", "0ms", "0m"})
    EXPECT_EQ(
        parse_time_limit("--timeout-data", zero, limit),
        std::string("--timeout-data ") + zero + ": must be more than zero, such as 30s or 5m");
  EXPECT_EQ(parse_time_limit("--timeout", "1d", limit),
            "--timeout 1d: expected a duration such as 30s or 5m");
  EXPECT_EQ(parse_time_limit("--timeout", "169h", limit),
            "--timeout 169h: too long; the longest is 168h (a week)");
  EXPECT_EQ(parse_time_limit("--timeout", "1ms", limit), "");
  EXPECT_EQ(limit, 1ms);
}

TEST(TimeoutOptions, AHugeTimeoutIsRefusedNamingTheLongest) {
  options::TimeoutOptions timeouts;
  options::TimeoutOptions::Limits limits;
  timeouts.command = "99999999999h";
  EXPECT_EQ(timeouts.parse(limits),
            "--timeout-command 99999999999h: too long; the longest is 168h (a week)");
  timeouts.command = "0";
  EXPECT_EQ(timeouts.parse(limits),
            "--timeout-command 0: must be more than zero, such as 30s or 5m");
  timeouts.command = "168h";
  EXPECT_EQ(timeouts.parse(limits), "");
  EXPECT_EQ(limits.command, std::chrono::hours(168));
}

}  // namespace
}  // namespace mailtap::cli
