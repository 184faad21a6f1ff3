// Parsers for command-line values: durations (host:port pairs: net/endpoint.hpp; sizes:
// CLI::AsSizeValue).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mailtap::cli {

// "500ms", "2s", "5m", "1h", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace mailtap::cli
