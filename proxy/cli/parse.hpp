// Parsers for command-line values: durations (host:port pairs: net/endpoint.hpp; sizes:
// options/size_option.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/common/duration.hpp"

namespace mailtap::cli {

// "500ms", "2s", "5m", "1h", or a bare number of seconds, up to kLongestDuration; nullopt for
// anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Why parse_duration refused `text`, given as `option`: "--grace 1d: expected a duration such as
// 30s or 5m", or "--timeout-data 9999h: too long; the longest is 168h (a week)".
std::string duration_refusal(std::string_view option, std::string_view text);

// A limit in time (a timeout): a duration as parse_duration reads it, and more than zero, as a
// limit of none would end every wait at once (only --grace takes 0: stop at once). Returns why
// `text`, given as `option`, is refused ("--timeout-data 0s: must be more than zero, such as 30s
// or 5m"), or "" with `out` set.
std::string parse_time_limit(std::string_view option, std::string_view text,
                             std::chrono::milliseconds& out);

}  // namespace mailtap::cli
