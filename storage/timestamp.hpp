// Timestamps as stored in the database: ISO 8601 UTC with exactly six fractional digits,
// "2026-11-24T20:41:07.123456Z". The fixed width makes text order equal time order, so the
// columns sort and compare as strings, and sqlite's date functions accept them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/records.hpp"

namespace mailtap::storage {

std::string format_timestamp(Clock::time_point t);

// Accepts exactly the format format_timestamp produces (a real date, seconds up to 59); nullopt
// otherwise. A date the clock cannot hold is clamped as clamped_time_point clamps it.
std::optional<Clock::time_point> parse_timestamp(std::string_view text);

// `count` units of `unit` from the epoch (the sign of `count` says which side), or the clock's
// first or last instant for a time it cannot hold (its nanoseconds stop at 1677-09-21 and
// 2262-04-11): every recorded time lies between those, so a record compares with the clamped
// time as with the one written. Wrapping round instead turned "before 1600" into "before 2200".
Clock::time_point clamped_time_point(std::int64_t count, Clock::duration unit);

// Whether `t` is the clock's first or last instant, as clamped_time_point (and parse_timestamp)
// give for a time the clock cannot hold: a recorded time that says nothing of when it was
// ("out of range"), and a span from it overflows.
bool out_of_clock_range(Clock::time_point t);

// `to - from`, or nullopt where it does not fit the clock's 64-bit nanoseconds (two recorded
// times more than 292 years apart, as a damaged file can hold): subtracting them is undefined
// behaviour, and the wrapped value a length that was never so.
std::optional<Clock::duration> time_between(Clock::time_point from, Clock::time_point to);

}  // namespace mailtap::storage
