// Minimal streaming JSON writer for the tools' --json output: objects, arrays, strings,
// numbers, bools. What it writes is always strict JSON in well-formed UTF-8.
//
// Text that may hold any octet (anything from the wire or the record) goes through
// write_bytes_member: a string when the octets are well-formed UTF-8, else base64 with a
// "<name>_encoding": "base64" member beside it, so every octet survives a round trip.
// value(string) is for text that is UTF-8 already; a byte of it that does not begin a
// well-formed UTF-8 character is written as U+FFFD, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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
  // A string value written in pieces, for one too large to hold: `text` is its inside, already
  // escaped (json_escape) or base64.
  JsonWriter& begin_string();
  JsonWriter& string_piece(std::string_view text);
  JsonWriter& end_string();
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

  // Streaming: from now on what is written is handed to `sink` whenever kFlushOctets have
  // gathered (and at flush()) rather than kept, so a document of any size costs about that much
  // memory. Once `sink` returns false (its reader has gone) nothing more is handed to it.
  using Sink = std::function<bool(std::string_view)>;
  static constexpr std::size_t kFlushOctets = std::size_t{256} * 1024;
  void stream_to(Sink sink);
  // Hands over what is buffered; false once the sink has refused.
  bool flush();
  bool sink_open() const { return sink_open_; }

  // Where the document is, to go back to if what is written after turns out unwanted (a
  // session that lost its rows while it was being written).
  struct Mark {
    std::size_t buffered = 0;
    std::uint64_t handed_over = 0;
    std::vector<bool> first;
    bool after_key = false;
  };
  Mark mark() const { return {out_.size(), handed_over_, first_, after_key_}; }
  // Drops what was written since `m` and returns true, if none of it was handed to the sink
  // yet; else false, with nothing changed.
  bool rewind(const Mark& m);

 private:
  void separator();
  void written() {
    if (sink_ && out_.size() >= kFlushOctets) flush();
  }
  std::string out_;
  Sink sink_;
  bool sink_open_ = true;
  std::uint64_t handed_over_ = 0;  // how many times the sink was handed octets
  std::vector<bool> first_;        // per open container: nothing written in it yet
  bool after_key_ = false;
};

// `s` as the inside of a JSON string: `"`, `\` and control characters escaped, well-formed
// UTF-8 characters copied, every other byte written as \ufffd.
std::string json_escape(std::string_view s);

// Writes `name` and `bytes` into the open object: as a string when `bytes` is well-formed
// UTF-8, else as base64 with `name`_encoding: "base64" beside it.
void write_bytes_member(JsonWriter& w, std::string_view name, std::string_view bytes);

// Octets too large to hold, handed to `emit` in order in bounded pieces; may be read more than
// once, each time the same. False with `error` set if they could not all be read (true once
// `emit` returned false: the reader stopped).
using Emit = std::function<bool(std::string_view)>;
using ByteSource = std::function<bool(const Emit& emit, std::string& error)>;

// As write_bytes_member, for octets read from `source` (twice: once to see whether they are
// UTF-8, once to write them), a piece at a time: the same JSON, with memory bounded by the
// pieces. False with `error` set if `source` failed (the member is then cut short: the
// document is not to be used).
bool write_bytes_member(JsonWriter& w, std::string_view name, const ByteSource& source,
                        std::string& error);

// Writes `name` and an array of `items` into the open object: strings when every item is
// well-formed UTF-8, else every item in base64 with `name`_encoding: "base64" beside it.
void write_bytes_array_member(JsonWriter& w, std::string_view name,
                              std::span<const std::string> items);

}  // namespace mailtap::tools
