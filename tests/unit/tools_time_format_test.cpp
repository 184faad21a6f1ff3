#include "tools/time_format.hpp"

#include <gtest/gtest.h>

namespace mailtap::tools {
namespace {

using namespace std::chrono;

Clock::time_point at(std::time_t t) {
  return Clock::from_time_t(t);
}

TEST(TimeSpec, RelativeAges) {
  const auto now = at(1'800'000'000);
  EXPECT_EQ(parse_time_spec("90s", now), now - seconds(90));
  EXPECT_EQ(parse_time_spec("30m", now), now - minutes(30));
  EXPECT_EQ(parse_time_spec("2h", now), now - hours(2));
  EXPECT_EQ(parse_time_spec("3d", now), now - hours(72));
  EXPECT_EQ(parse_time_spec("1w", now), now - hours(168));
}

TEST(TimeSpec, IsoDatesAndTimesInUtc) {
  const auto now = at(0);
  EXPECT_EQ(parse_time_spec("2026-11-24", now), at(1'795'478'400));
  EXPECT_EQ(parse_time_spec("2026-11-24T20:41", now), at(1'795'478'400 + 20 * 3600 + 41 * 60));
  EXPECT_EQ(parse_time_spec("2026-11-24 20:41:07Z", now),
            at(1'795'478'400 + 20 * 3600 + 41 * 60 + 7));
  EXPECT_EQ(parse_time_spec("2026-11-24T20:41:07.123456Z", now),
            at(1'795'478'400 + 20 * 3600 + 41 * 60 + 7) + microseconds(123456));
  EXPECT_TRUE(parse_time_spec("2028-02-29", now));  // a leap day
  EXPECT_TRUE(parse_time_spec("2000-02-29", now));
  // certificate validity as certificate_facts writes it
  EXPECT_TRUE(parse_time_spec("2028-11-23T21:47:01Z", now));
}

// The clock counts nanoseconds in 64 bits: 1678 to 2262. A date or an age beyond that (a web
// page's since=1000-01-01, --since 100000000w) is before or after every session, in order, not
// a signed overflow that wraps it around (found by fuzz_web_request).
TEST(TimeSpec, DatesAndAgesBeyondTheClocksRangeKeepTheirOrder) {
  const auto now = at(1'800'000'000);
  const auto y1970 = parse_time_spec("1970-01-01", now);
  const auto y2200 = parse_time_spec("2200-01-01", now);
  ASSERT_TRUE(y1970 && y2200);
  for (const char* early : {"1000-01-01", "0000-01-01", "1677-01-01T00:00+23:59", "100000000w",
                            "100000000d", "99999999h"}) {
    const auto t = parse_time_spec(early, now);
    ASSERT_TRUE(t) << early;
    EXPECT_LT(*t, *y1970) << early;
  }
  for (const char* late : {"9999-12-31T23:59:59.999999Z", "2263-01-01", "2262-12-31T23:00-23:59"}) {
    const auto t = parse_time_spec(late, now);
    ASSERT_TRUE(t) << late;
    EXPECT_GT(*t, *y2200) << late;
  }
}

// A local time with its UTC offset, as a reader elsewhere writes it (03:00 in New York).
TEST(TimeSpec, IsoTimesWithAnOffset) {
  const auto now = at(0);
  const auto eight_utc = at(1'795'478'400 + 8 * 3600);
  EXPECT_EQ(parse_time_spec("2026-11-24T03:00-05:00", now), eight_utc);
  EXPECT_EQ(parse_time_spec("2026-11-24T03:00-0500", now), eight_utc);
  EXPECT_EQ(parse_time_spec("2026-11-24 09:00:00+01:00", now), eight_utc);
  EXPECT_EQ(parse_time_spec("2026-11-24T13:30:00.5+05:30", now), eight_utc + milliseconds(500));
  EXPECT_EQ(parse_time_spec("2026-11-24T08:00+00:00", now), eight_utc);
  EXPECT_EQ(parse_time_spec("2026-11-24T23:00-09:00", now), eight_utc + hours(24));
  // ISO 8601's hours alone (+hh), at the end.
  EXPECT_EQ(parse_time_spec("2026-11-24T09:00+01", now), eight_utc);
  EXPECT_EQ(parse_time_spec("2026-11-24T03:00:00-05", now), eight_utc);
  EXPECT_EQ(parse_time_spec("2026-11-24 08:00+00", now), eight_utc);
}

// The clock holds nanoseconds in 64 bits: 1677-09-21 .. 2262-04-11. A time outside stands for
// the first or last instant, never for one wrapped round to the other end (prune --before
// 1600-01-01 removed every session).
TEST(TimeSpec, TimesTheClockCannotHoldAreItsFirstOrLastInstant) {
  const auto now = at(1'800'000'000);
  const auto first = Clock::time_point::min(), last = Clock::time_point::max();
  for (const char* before :
       {"1677-09-21", "1600-01-01", "1026-12-01", "0000-01-01", "1677-09-21T00:12:43Z", "300000d",
        "99999999999d", "999999999999999999999999w"})
    EXPECT_EQ(parse_time_spec(before, now), first) << before;
  for (const char* after : {"2262-04-12", "3000-01-01", "9999-12-31T23:59:59.999999Z",
                            "2262-04-11T23:47:17Z", "2262-04-11T20:00-05:00"})
    EXPECT_EQ(parse_time_spec(after, now), last) << after;
  // Just inside, each is itself.
  EXPECT_EQ(parse_time_spec("1677-09-22", now), at(-9'223'286'400));
  EXPECT_EQ(parse_time_spec("1677-09-21T00:12:44Z", now), at(-9'223'372'036));
  EXPECT_EQ(parse_time_spec("2262-04-11", now), at(9'223'286'400));
  EXPECT_EQ(parse_time_spec("2262-04-11T23:47:16Z", now), at(9'223'372'036));
  EXPECT_EQ(parse_time_spec("106751d", at(0)), at(-106'751LL * 86'400));
  EXPECT_EQ(parse_time_spec("106752d", at(0)), first);
  EXPECT_EQ(parse_time_spec("15251w", at(0)), first);
  // So every filter keeps its order: since 3000 lists nothing, until 1600 nothing.
  EXPECT_LT(parse_time_spec("1600-01-01", now), parse_time_spec("2026-11-24", now));
  EXPECT_LT(parse_time_spec("2026-11-24", now), parse_time_spec("3000-01-01", now));
}

TEST(TimeSpec, RejectsEverythingElse) {
  const auto now = at(0);
  for (const char* bad :
       {"", "2h ago", "h", "2", "2x", "-2h", "yesterday", "2026-13-01", "2026-11-24T25:00",
        "2026-11-24T20", "2026/11/24", "2026-11-24Tx", "2026-11-24T20:41:07.1234567", "2026-02-29",
        "2026-02-30", "2026-04-31", "2100-02-29"})
    EXPECT_FALSE(parse_time_spec(bad, now)) << bad;
  // An offset only after a time of day, whole, in range, and not beside a Z.
  for (const char* bad :
       {"2026-11-24+01:00", "2026-11-24T20:41+1", "2026-11-24T20:41+01:", "2026-11-24T20:41-05:00Z",
        "2026-11-24T20:41+24:00", "2026-11-24T20:41+01:60", "2026-11-24T20:41 +01:00",
        "2026-11-24+01", "2026-11-24T20:41+24", "2026-11-24T20:41+013", "2026-11-24T20:41+01Z",
        "2026-11-24T20:41+-1"})
    EXPECT_FALSE(parse_time_spec(bad, now)) << bad;
}

TEST(TimeFormat, UtcAndOffsets) {  // durations: common_duration_test
  EXPECT_EQ(format_utc(at(1'795'478'400 + 20 * 3600 + 41 * 60 + 7) + milliseconds(900)),
            "2026-11-24 20:41:07Z");
  EXPECT_EQ(format_offset(microseconds(123'456)), "+0.123s");
  EXPECT_EQ(format_offset(-seconds(1)), "+0.000s");
}

}  // namespace
}  // namespace mailtap::tools
