#include "tools/json_writer.hpp"

#include <cstdio>

#include "proxy/common/terminal_escape.hpp"
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
    } else if (n = utf8_char_length(s); n > 0 && is_c1_control(s.substr(0, n))) {
      // Valid JSON either way; escaped, a C1 control (U+009B is CSI) cannot drive a terminal
      // the JSON is printed on.
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(s[1]));
      out += buf;
    } else if (n > 0) {
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

namespace {

// The length of `s` without a last character it may hold only the start of (a lead byte and
// fewer continuation bytes than it announces): the rest of it comes with the next piece.
std::size_t whole_characters(std::string_view s) {
  for (std::size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const std::size_t needs = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return needs > back ? s.size() - back : s.size();
  }
  return s.size();
}

// Whether the octets `source` hands out are well-formed UTF-8, a piece at a time.
bool source_is_utf8(const ByteSource& source, bool& utf8, std::string& error) {
  utf8 = true;
  std::string held;  // the start of a character the piece before ended in
  const bool ok = source(
      [&](std::string_view piece) {
        held.append(piece);
        const std::size_t whole = whole_characters(held);
        utf8 = is_valid_utf8(std::string_view(held).substr(0, whole));
        held.erase(0, whole);
        return utf8;  // one bad octet decides it
      },
      error);
  if (utf8 && !held.empty()) utf8 = false;  // ends inside a character
  return ok;
}

}  // namespace

bool write_bytes_member(JsonWriter& w, std::string_view name, const ByteSource& source,
                        std::string& error) {
  bool utf8 = true;
  if (!source_is_utf8(source, utf8, error)) return false;
  w.key(name).begin_string();
  std::string held;  // utf8: a character's start; base64: fewer than 3 octets
  const bool ok = source(
      [&](std::string_view piece) {
        held.append(piece);
        const std::size_t whole = utf8 ? whole_characters(held) : held.size() - held.size() % 3;
        const std::string_view ready = std::string_view(held).substr(0, whole);
        w.string_piece(utf8 ? json_escape(ready) : smtp::base64_encode(ready));
        held.erase(0, whole);
        return w.sink_open();
      },
      error);
  if (!ok) return false;
  w.string_piece(utf8 ? json_escape(held) : smtp::base64_encode(held));
  w.end_string();
  if (!utf8) w.key(std::string(name) + "_encoding").value("base64");
  return true;
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

void JsonWriter::stream_to(Sink sink) {
  sink_ = std::move(sink);
  written();
}

bool JsonWriter::flush() {
  if (sink_ && sink_open_ && !out_.empty()) {
    sink_open_ = sink_(out_);
    ++handed_over_;
  }
  out_.clear();
  return sink_open_;
}

bool JsonWriter::rewind(const Mark& m) {
  if (m.handed_over != handed_over_ || out_.size() < m.buffered) return false;
  out_.resize(m.buffered);
  first_ = m.first;
  after_key_ = m.after_key;
  return true;
}

JsonWriter& JsonWriter::begin_string() {
  separator();
  out_.push_back('"');
  return *this;
}
JsonWriter& JsonWriter::string_piece(std::string_view text) {
  out_ += text;
  written();
  return *this;
}
JsonWriter& JsonWriter::end_string() {
  out_.push_back('"');
  written();
  return *this;
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
  written();
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
  written();
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
  written();
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
