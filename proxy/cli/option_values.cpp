#include "proxy/cli/option_values.hpp"

#include <array>
#include <cstdint>
#include <optional>

#include "proxy/common/decimal_number.hpp"

namespace mailtap::cli {

namespace {

enum class ValueKind : std::uint8_t { yes_no, count, whole_number, other };

// A count says how often a flag was given: far below what would overflow as it is summed.
constexpr std::uint64_t kLargestCount = 1000;

ValueKind kind_of(const CLI::Option& o) {
  if (o.get_items_expected_max() == 0)
    return o.get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll ? ValueKind::count
                                                                          : ValueKind::yes_no;
  const std::string type = o.get_type_name();
  return type == "UINT" || type == "INT" ? ValueKind::whole_number : ValueKind::other;
}

constexpr std::array<std::string_view, 4> kYes{"true", "1", "yes", "on"};
constexpr std::array<std::string_view, 4> kNo{"false", "0", "no", "off"};

bool is_one_of(const std::array<std::string_view, 4>& words, std::string_view text) {
  for (std::string_view word : words)
    if (text == word) return true;
  return false;
}

bool is_yes_or_no(std::string_view text) {
  return is_one_of(kYes, text) || is_one_of(kNo, text);
}

}  // namespace

std::string expected_value(const CLI::Option& option) {
  switch (kind_of(option)) {
    case ValueKind::yes_no:
      return "expected true or false (also 1/0, yes/no, on/off)";
    case ValueKind::count:
      return "expected a count (2 is the flag given twice), or true or false";
    case ValueKind::whole_number:
      return "expected a whole number";
    case ValueKind::other:
      break;
  }
  return "expected a number";
}

std::string option_value_problem(const CLI::Option& option, std::string_view text) {
  bool good = true;
  switch (kind_of(option)) {
    case ValueKind::yes_no:
      good = is_yes_or_no(text);
      break;
    case ValueKind::count:
      good = is_yes_or_no(text) || parse_decimal(text, 0, kLargestCount).has_value();
      break;
    case ValueKind::whole_number:
      // The option's own type then says whether the number fits it.
      good = parse_decimal(text, 0, UINT64_MAX).has_value();
      break;
    case ValueKind::other:
      break;
  }
  return good ? std::string() : expected_value(option);
}

bool says_no(const CLI::Option& option, std::string_view text) {
  return kind_of(option) == ValueKind::yes_no && is_one_of(kNo, text);
}

std::int64_t flag_count(const CLI::Option& option) {
  std::int64_t count = 0;
  for (const std::string& value : option.results()) {
    if (const std::optional<std::uint64_t> n = parse_decimal(value, 0, kLargestCount))
      count = static_cast<std::int64_t>(*n);
    else if (is_one_of(kNo, value))
      count = 0;
    else if (is_one_of(kYes, value))
      ++count;
  }
  return count;
}

void check_option_values(CLI::App& app) {
  for (CLI::Option* o : app.get_options()) {
    if (kind_of(*o) == ValueKind::other) continue;
    o->check(CLI::Validator(
        [o](std::string& text) -> std::string {
          std::string why = option_value_problem(*o, text);
          return why.empty() ? why : text + ": " + why;
        },
        ""));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    check_option_values(*sub);
}

}  // namespace mailtap::cli
