#include "proxy/cli/parse.hpp"

#include <charconv>

namespace mailtap::cli {

namespace {

enum class Reading : std::uint8_t { ok, malformed, too_long };

// The duration `text` gives, in `out`; too_long past kLongestDuration, overflow included.
Reading read_duration(std::string_view text, std::chrono::milliseconds& out) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return Reading::malformed;
  const std::string_view unit = text.substr(digits);
  std::uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit.empty() || unit == "s")
    factor = 1000;
  else if (unit == "m" || unit == "min")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else
    return Reading::malformed;
  std::uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  const auto longest = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(kLongestDuration).count());
  if (ec == std::errc::result_out_of_range || value > longest / factor) return Reading::too_long;
  if (ec != std::errc() || ptr != text.data() + digits) return Reading::malformed;
  out = std::chrono::milliseconds(value * factor);
  return Reading::ok;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::chrono::milliseconds out{};
  if (read_duration(text, out) != Reading::ok) return std::nullopt;
  return out;
}

std::string duration_refusal(std::string_view option, std::string_view text) {
  std::chrono::milliseconds ignored{};
  const std::string given = std::string(option) + " " + std::string(text);
  if (read_duration(text, ignored) == Reading::too_long)
    return given + ": too long; the longest is " + std::to_string(kLongestDuration.count()) +
           "h (a week)";
  return given + ": expected a duration such as 30s or 5m";
}

std::string parse_time_limit(std::string_view option, std::string_view text,
                             std::chrono::milliseconds& out) {
  const auto limit = parse_duration(text);
  if (!limit) return duration_refusal(option, text);
  if (limit->count() == 0)
    return std::string(option) + " " + std::string(text) +
           ": must be more than zero, such as 30s or 5m";
  out = *limit;
  return {};
}

}  // namespace mailtap::cli
