// Parsers for command-line values: durations, sizes, host:port pairs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailtap::cli {

// "500ms", "2s", "5m", "1h", or a bare number of seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "64MiB", "512k", "1G", or a bare number of octets (binary multiples).
std::optional<std::uint64_t> parse_size(std::string_view text);

struct HostPort {
  std::string host;  // without brackets for IPv6 literals
  std::optional<std::uint16_t> port;
};
// "host", "host:25", "[::1]:25", "::1"; nullopt if malformed.
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace mailtap::cli
