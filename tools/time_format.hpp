// Times as the tools accept and print them. Input (--since/--until/--before): an ISO date or
// date-time in UTC ("2026-11-24", "2026-11-24T20:41", "2026-11-24 20:41:07Z"), a date-time
// with its offset from UTC ("2026-11-24T21:41+01:00", "+0100", "+01"), or an age relative to
// now ("90s", "30m", "2h", "3d", "1w"). Output: UTC, to the second.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "storage/records.hpp"

namespace mailtap::tools {

using storage::Clock;

// nullopt if `text` is neither form. A relative age is subtracted from `now`. A time the clock
// cannot hold (before 1677-09-21 or after 2262-04-11, its range of nanoseconds) is its first or
// last instant: older or newer than every record, as the time written is.
std::optional<Clock::time_point> parse_time_spec(std::string_view text, Clock::time_point now);
// The forms parse_time_spec takes, for a refusal to name: "(use " + kTimeSpecForms + ")".
inline constexpr std::string_view kTimeSpecForms =
    "2026-11-24, 2026-11-24T20:00 (UTC), 2026-11-24T21:00+01:00 (a local time and its offset: "
    "+01:00, +0100 or +01), or an age 90s/30m/2h/3d/1w";

// "2026-11-24 20:41:07Z"
std::string format_utc(Clock::time_point t);
// "+0.123s" / "+12.345s": offset of an event from the session start.
std::string format_offset(Clock::duration d);

}  // namespace mailtap::tools
