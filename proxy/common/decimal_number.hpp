// Numbers a person types (a session id, a count) or a URL carries, read strictly: plain
// decimal digits and nothing else. The C library's reading, which CLI11 uses, takes 0x1 for 1,
// 010 for 8 and -1 for 2^64-1, and clamps 99999999999999999999: each is a mistake to point
// out, not a number to guess at.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace mailtap {

// `text` as a number from `minimum` to `maximum`: ASCII digits only, without a sign, spaces or
// a leading zero ("0" itself is fine); nullopt for anything else, a number out of range
// included.
std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t minimum,
                                           std::uint64_t maximum);

}  // namespace mailtap
