// Minimal streaming JSON writer for the tools' --json output: objects, arrays, strings,
// numbers, bools. What it writes is always strict JSON in well-formed UTF-8.
//
// Text that may hold any octet (anything from the wire or the record) goes through
// write_bytes_member: a string when the octets are well-formed UTF-8, else base64 with a
// "<name>_encoding": "base64" member beside it, so every octet survives a round trip.
// value(string) is for text that is UTF-8 already; a byte of it that does not begin a
// well-formed UTF-8 character is written as U+FFFD, never copied.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::tools {

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(std::int64_t n);
  JsonWriter& value(std::uint64_t n);
  JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(bool b);
  JsonWriter& null();
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void separator();
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

// `s` as the inside of a JSON string: `"`, `\` and control characters escaped, well-formed
// UTF-8 characters copied, every other byte written as \ufffd.
std::string json_escape(std::string_view s);

// Writes `name` and `bytes` into the open object: as a string when `bytes` is well-formed
// UTF-8, else as base64 with `name`_encoding: "base64" beside it.
void write_bytes_member(JsonWriter& w, std::string_view name, std::string_view bytes);

// Writes `name` and an array of `items` into the open object: strings when every item is
// well-formed UTF-8, else every item in base64 with `name`_encoding: "base64" beside it.
void write_bytes_array_member(JsonWriter& w, std::string_view name,
                              std::span<const std::string> items);

}  // namespace mailtap::tools
