// The three forms of a duration in proxy/common/duration.
#include "proxy/common/duration.hpp"

#include <gtest/gtest.h>

namespace mailtap {
namespace {

using namespace std::chrono;

TEST(CommonDuration, SettingsReadBackAsTyped) {
  EXPECT_EQ(format_setting_duration(seconds(30)), "30s");
  EXPECT_EQ(format_setting_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_setting_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_setting_duration(minutes(5)), "5m");
  EXPECT_EQ(format_setting_duration(minutes(90)), "90m");
  EXPECT_EQ(format_setting_duration(hours(2)), "2h");
  EXPECT_EQ(format_setting_duration(seconds(90)), "90s");
  EXPECT_EQ(format_setting_duration(milliseconds(0)), "0s");
}

TEST(CommonDuration, ShortFormForLogLines) {
  EXPECT_EQ(format_short_duration(milliseconds(412)), "412ms");
  EXPECT_EQ(format_short_duration(microseconds(999'999)), "999ms");
  EXPECT_EQ(format_short_duration(milliseconds(12'340)), "12.3s");
  EXPECT_EQ(format_short_duration(seconds(30)), "30.0s");
}

TEST(CommonDuration, TableFormForTheTools) {
  EXPECT_EQ(format_duration(milliseconds(412)), "0.412s");
  EXPECT_EQ(format_duration(milliseconds(12'340)), "12.3s");
  EXPECT_EQ(format_duration(seconds(245)), "4m05s");
  EXPECT_EQ(format_duration(minutes(123)), "2h03m");
  EXPECT_EQ(format_duration(hours(76)), "3d04h");
  EXPECT_EQ(format_duration(seconds(-1)), "?");
}

}  // namespace
}  // namespace mailtap
