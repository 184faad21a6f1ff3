// Timestamps as stored in the database: ISO 8601 UTC with exactly six fractional digits,
// "2026-11-24T20:41:07.123456Z". The fixed width makes text order equal time order, so the
// columns sort and compare as strings, and sqlite's date functions accept them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "storage/records.hpp"

namespace mailtap::storage {

std::string format_timestamp(Clock::time_point t);

// Accepts exactly the format format_timestamp produces; nullopt otherwise.
std::optional<Clock::time_point> parse_timestamp(std::string_view text);

}  // namespace mailtap::storage
