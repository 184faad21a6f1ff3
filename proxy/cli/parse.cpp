#include "proxy/cli/parse.hpp"

#include <charconv>

namespace mailtap::cli {

namespace {
std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}
}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto value = number(text.substr(0, digits));
  if (!value) return std::nullopt;
  std::string_view unit = text.substr(digits);
  std::uint64_t ms = 0;
  if (unit == "ms")
    ms = *value;
  else if (unit.empty() || unit == "s")
    ms = *value * 1000;
  else if (unit == "m" || unit == "min")
    ms = *value * 60'000;
  else if (unit == "h")
    ms = *value * 3'600'000;
  else
    return std::nullopt;
  return std::chrono::milliseconds(ms);
}

}  // namespace mailtap::cli
