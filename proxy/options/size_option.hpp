// A byte-size option (--max-body 64MiB): CLI11's own size parser (binary units, any case:
// 2048, 512k, 4KiB, 10M, 1GiB), with a message that shows the value and an example rather
// than CLI11's list of every unit it knows, and a largest size: a negative or absurd value is
// a mistake, not a wish for "no limit".
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <string>

namespace mailtap::options {

// The largest size a size option takes, as --help and the messages write it.
inline constexpr std::uint64_t kLargestSize = std::uint64_t{4} << 30;
inline constexpr const char* kLargestSizeText = "4GiB";

// Turns `text` into its number of octets; else returns why not.
inline std::string to_octets(std::string& text) {
  enum { malformed, too_large } why = malformed;
  try {
    // CLI11 reads "-1" as 2^64 - 1: only digits (with a unit) make a size.
    if (text.find('-') == std::string::npos && CLI::AsSizeValue(false)(text).empty()) {
      std::uint64_t octets = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), octets);
      if (ec == std::errc() && end == text.data() + text.size() && octets <= kLargestSize)
        return {};
      if (ec == std::errc() || ec == std::errc::result_out_of_range) why = too_large;
    }
  } catch (const CLI::ValidationError& e) {
    // "... factor would cause number overflow": a size, and far too large.
    if (std::string(e.what()).find("overflow") != std::string::npos) why = too_large;
  }
  return why == too_large ? std::string("too large; the largest is ") + kLargestSizeText
                          : "expected a size such as 64MiB, 512k or 1GiB";
}

// The check leaves the text as given and the callback stores the octets: a transform would
// write the octet count back into the option's results, which are what --print-config shows
// for a flag (--max-body 64MiB as "67108864", while the same from the file shows "64MiB").
inline CLI::Option* add_size_option(CLI::App& app, std::string name, std::uint64_t& out,
                                    std::string default_text, std::string help) {
  CLI::Validator check(
      [](std::string& text) -> std::string {
        std::string octets = text;
        std::string why = to_octets(octets);
        return why.empty() ? std::string() : text + ": " + why;
      },
      "");
  return app
      .add_option_function<std::string>(
          std::move(name),
          [&out](const std::string& text) {
            std::string octets = text;
            to_octets(octets);  // checked already
            std::from_chars(octets.data(), octets.data() + octets.size(), out);
          },
          std::move(help))
      ->check(check)
      ->type_name("SIZE")
      ->default_str(std::move(default_text));
}

}  // namespace mailtap::options
