// "Did you mean": the known name a mistyped one was probably meant to be (MAILTAP_UPSTREM,
// `mailtap sesions`).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap {

// Levenshtein distance, enough for names of a few dozen letters.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The name of `known` closest to `name`, if it is within two slips of it (MAILTAP_UPSTREM,
// MAILTAP_LISTN, sesions); "" if none is.
std::string closest_name(std::string_view name, const std::vector<std::string>& known);

}  // namespace mailtap
