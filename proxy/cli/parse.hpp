// Parsers for command-line values: durations and sizes (host:port pairs: net/endpoint.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mailtap::cli {

// "500ms", "2s", "5m", "1h", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "64MiB", "512k", "1G", or a bare number of octets (binary multiples).
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace mailtap::cli
