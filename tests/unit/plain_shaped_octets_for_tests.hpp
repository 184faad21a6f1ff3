// Lines of random octets (what a base64 attachment of a photo or a ZIP decodes to, 57 octets a
// line) that have the byte shape of a SASL PLAIN message: two NULs, no ASCII control character.
// About one line in 70,000 has it; drawn from a fixed seed, so the tests always see the same.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "proxy/smtp/credential_shape.hpp"

namespace mailtap::testing {

inline std::vector<std::string> random_lines_of_plain_shape(std::size_t count) {
  std::mt19937 rng(20261205);
  std::vector<std::string> out;
  std::string line(57, '\0');
  while (out.size() < count) {
    for (std::size_t i = 0; i < line.size(); i += 4) {
      const std::uint32_t word = rng();
      for (std::size_t k = 0; k < 4 && i + k < line.size(); ++k)
        line[i + k] = static_cast<char>(word >> (8 * k));
    }
    if (smtp::has_plain_message_shape(line)) out.push_back(line);
  }
  return out;
}

}  // namespace mailtap::testing
