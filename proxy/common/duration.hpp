// Durations as mailtap prints them, in the three forms a reader meets: a setting as it could be
// typed back, a short elapsed time in log lines, and a session's length in the tools' tables.
#pragma once

#include <chrono>
#include <string>

namespace mailtap {

// The longest duration an option takes (proxy/cli/parse): a week. Every limit mailtap has is far
// below it, and a longer one could overflow the clocks that measure it (std::chrono::
// steady_clock counts nanoseconds in 64 bits), turning "never" into "at once". So a live session
// is never silent for longer: each of its waits ends within it (`mailtap prune` relies on it).
inline constexpr std::chrono::hours kLongestDuration{7 * 24};

// A setting, in the form the command line reads (proxy/cli/parse) and the docs write: "5m",
// "30s", "1500ms", "1h". Limits in mailtap's own lines (a timeout) are written so too.
std::string format_setting_duration(std::chrono::nanoseconds d);

// mailtap's own lines (a session's end, a timeout): "412ms" under a second, else "12.3s".
std::string format_short_duration(std::chrono::nanoseconds d);

// The tools' tables: "0.412s", "12.3s", "4m05s", "2h03m", "3d04h"; "?" when negative.
std::string format_duration(std::chrono::nanoseconds d);

}  // namespace mailtap
