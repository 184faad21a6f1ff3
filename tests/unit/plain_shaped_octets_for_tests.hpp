// Attachments whose base64 lines decode to what looks like a SASL PLAIN message, for the tests
// that `mailtap audit` does not take them for leaked credentials.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/credential_shape.hpp"

namespace mailtap::testing {

// Lines of random octets (what a base64 attachment of a photo or a ZIP decodes to, 57 octets a
// line) that have the byte shape of a SASL PLAIN message: two NULs, no ASCII control character.
// About one line in 70,000 has it; drawn from a fixed seed, so the tests always see the same.
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

// Octets that are strings between NULs (a program's symbol table, a message catalogue): many of
// their 57-octet lines are "UTF-8 NUL UTF-8 NUL UTF-8", an RFC 4616 PLAIN message by content.
inline std::string string_table(std::size_t octets) {
  std::string t;
  for (int i = 0; t.size() < octets; ++i)
    t += "_ZN7mailtap5tools" + std::to_string(i * 7919) + "scan_for_credentialsEv" + '\0';
  return t;
}

// `octets` in base64 as MIME wraps it: 76 characters (57 octets) a line, CRLF after each.
inline std::string wrapped_base64(std::string_view octets) {
  std::string out;
  for (std::size_t i = 0; i < octets.size(); i += 57)
    out += smtp::base64_encode(octets.substr(i, 57)) + "\r\n";
  return out;
}

// A message body with `octets` as a base64 attachment.
inline std::string attachment_body(std::string_view octets) {
  return "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
         "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
         wrapped_base64(octets) + "--b--\r\n";
}

}  // namespace mailtap::testing
