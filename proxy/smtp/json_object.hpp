// A lenient reader for the small, flat JSON objects of OAuth 2.0: a server's SASL error
// challenge (RFC 7628 §3.2.2, Google's XOAUTH2) and a token endpoint's response (RFC 6749 §5.1).
// Servers and scripts are sloppy with them (a trailing newline, numbers where strings belong,
// a trailing comma), so whitespace around anything, a trailing comma, and bytes after the
// closing brace are accepted. Values are returned as views into the input, escapes still in
// place, so a token inside is never copied into anything but the Secret the caller unescapes
// it into. Sans-IO, no exceptions, bounded work: linear in the input, nesting depth capped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

struct JsonMember {
  enum class Type : std::uint8_t { string, number, literal, object, array };
  std::string_view key;    // between the quotes, escapes not decoded
  std::string_view value;  // strings: between the quotes, escapes not decoded; others: the text
  Type type = Type::string;
};

// The members of the object `text` holds, in order, or nullopt if it is not a JSON object.
// More than `max_members` members, or nesting deeper than 32, is refused.
std::optional<std::vector<JsonMember>> parse_json_object(std::string_view text,
                                                         std::size_t max_members = 64);

// The first member named `key` (compared with the key as written), or nullptr.
const JsonMember* find_member(const std::vector<JsonMember>& members, std::string_view key);

// Decodes the escapes of a JSON string (\uXXXX to UTF-8, lone surrogates to U+FFFD): false for a
// malformed escape. The output is never longer than `raw`.
bool json_unescape(std::string_view raw, std::string& out);
// Same into a Secret, which needs room for raw.size() bytes; on failure `out` is cleared.
bool json_unescape_into(std::string_view raw, Secret& out);

}  // namespace mailtap::smtp
