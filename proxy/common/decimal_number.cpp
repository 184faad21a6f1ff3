#include "proxy/common/decimal_number.hpp"

#include <charconv>

namespace mailtap {

std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t minimum,
                                           std::uint64_t maximum) {
  // from_chars alone would take a leading '-' (for a signed type) and leading zeros; digits
  // are checked first so that neither gets that far.
  if (text.empty() || (text.size() > 1 && text.front() == '0')) return std::nullopt;
  for (char c : text)
    if (c < '0' || c > '9') return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < minimum || value > maximum) return std::nullopt;
  return value;
}

}  // namespace mailtap
