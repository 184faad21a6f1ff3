#include "tools/json_writer.hpp"

#include <cstdio>

#include "proxy/common/text.hpp"
#include "proxy/smtp/base64.hpp"

namespace mailtap::tools {

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  while (!s.empty()) {
    const auto c = static_cast<unsigned char>(s.front());
    std::size_t n = 1;
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (n = utf8_char_length(s); n > 0) {
      out.append(s.substr(0, n));
    } else {
      out += "\\ufffd";  // not UTF-8: never copied, so the output stays strict JSON
      n = 1;
    }
    s.remove_prefix(n);
  }
  return out;
}

void write_bytes_member(JsonWriter& w, std::string_view name, std::string_view bytes) {
  if (is_valid_utf8(bytes)) {
    w.key(name).value(bytes);
    return;
  }
  w.key(name).value(smtp::base64_encode(bytes));
  w.key(std::string(name) + "_encoding").value("base64");
}

void write_bytes_array_member(JsonWriter& w, std::string_view name,
                              std::span<const std::string> items) {
  bool utf8 = true;
  for (const std::string& item : items) utf8 = utf8 && is_valid_utf8(item);
  w.key(name).begin_array();
  for (const std::string& item : items) w.value(utf8 ? item : smtp::base64_encode(item));
  w.end_array();
  if (!utf8) w.key(std::string(name) + "_encoding").value("base64");
}

void JsonWriter::separator() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::begin_object() {
  separator();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}
JsonWriter& JsonWriter::end_object() {
  out_.push_back('}');
  first_.pop_back();
  return *this;
}
JsonWriter& JsonWriter::begin_array() {
  separator();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}
JsonWriter& JsonWriter::end_array() {
  out_.push_back(']');
  first_.pop_back();
  return *this;
}
JsonWriter& JsonWriter::key(std::string_view k) {
  separator();
  out_ += '"' + json_escape(k) + "\":";
  after_key_ = true;
  return *this;
}
JsonWriter& JsonWriter::value(std::string_view s) {
  separator();
  out_ += '"' + json_escape(s) + '"';
  return *this;
}
JsonWriter& JsonWriter::value(std::int64_t n) {
  separator();
  out_ += std::to_string(n);
  return *this;
}
JsonWriter& JsonWriter::value(std::uint64_t n) {
  separator();
  out_ += std::to_string(n);
  return *this;
}
JsonWriter& JsonWriter::value(bool b) {
  separator();
  out_ += b ? "true" : "false";
  return *this;
}
JsonWriter& JsonWriter::null() {
  separator();
  out_ += "null";
  return *this;
}

}  // namespace mailtap::tools
