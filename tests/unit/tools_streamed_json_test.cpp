// Octets written as they are read: JSON byte values from a source handed out in pieces
// (write_bytes_member with a ByteSource), a JsonWriter that streams to a sink, and an mboxrd
// entry quoted a piece at a time. Each must write exactly what the whole-value code writes,
// wherever the pieces are cut: inside a UTF-8 character, a base64 group, a CRLF, a "From ".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/json_writer.hpp"
#include "tools/mboxrd.hpp"

namespace mailtap::tools {
namespace {

using namespace std::string_literals;

// A source handing out `bytes` in pieces of `each` octets.
ByteSource pieces_of(const std::string& bytes, std::size_t each) {
  return [bytes, each](const Emit& emit, std::string&) {
    for (std::size_t i = 0; i < bytes.size(); i += each)
      if (!emit(std::string_view(bytes).substr(i, each))) break;
    return true;
  };
}

std::string whole(const std::string& bytes) {
  JsonWriter w;
  w.begin_object();
  write_bytes_member(w, "body", bytes);
  w.end_object();
  return w.take();
}

std::string streamed(const std::string& bytes, std::size_t each) {
  JsonWriter w;
  w.begin_object();
  std::string error;
  EXPECT_TRUE(write_bytes_member(w, "body", pieces_of(bytes, each), error)) << error;
  w.end_object();
  return w.take();
}

TEST(StreamedJson, ByteValueInPiecesIsWrittenAsTheWholeValue) {
  const std::vector<std::string> values = {
      ""s,
      "plain ascii \"quoted\" \\ \r\n\t"s,
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7 \x1b[2J"s,  // 2-, 3- and 4-octet characters
      "caf\xe9 latin-1"s,                                    // not UTF-8: base64
      "ends inside a character \xf0\x9f\x93"s,               // cut short: not UTF-8
      "\xf0\x9f\x93\xa7\xf0\x9f\x93\xa7\xf0\x9f\x93\xa7"s,
      std::string("\0\x01\xff\xfe", 4),
  };
  for (const std::string& v : values)
    for (std::size_t each : {1u, 2u, 3u, 4u, 5u, 7u, 64u})
      EXPECT_EQ(streamed(v, each), whole(v)) << "pieces of " << each << ": " << whole(v);
}

TEST(StreamedJson, LargeValuesCutAnywhere) {
  std::string utf8;
  while (utf8.size() < 300000) utf8 += "line \xc3\xa9\xe2\x82\xac\xf0\x9f\x93\xa7 \"x\"\r\n";
  std::string binary(300001, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 131 % 251);
  for (const std::string* v : {&utf8, &binary})
    for (std::size_t each : {1000u, 4095u, 65536u, 300000u})
      EXPECT_EQ(streamed(*v, each), whole(*v));
}

TEST(StreamedJson, ASourceThatFailsIsAnError) {
  JsonWriter w;
  w.begin_object();
  std::string error;
  EXPECT_FALSE(write_bytes_member(
      w, "body",
      [](const Emit& emit, std::string& e) {
        emit("a");
        e = "body file gone";
        return false;
      },
      error));
  EXPECT_EQ(error, "body file gone");
}

TEST(StreamedJson, WriterStreamsInBoundedPiecesAndStopsWhenTheSinkDoes) {
  const std::string big(3 * JsonWriter::kFlushOctets, 'a');
  std::string out;
  std::size_t largest = 0;
  JsonWriter w;
  w.stream_to([&](std::string_view piece) {
    out.append(piece);
    largest = std::max(largest, piece.size());
    return true;
  });
  w.begin_object();
  std::string error;
  ASSERT_TRUE(write_bytes_member(w, "body", pieces_of(big, 100000), error)) << error;
  w.end_object();
  ASSERT_TRUE(w.flush());
  EXPECT_EQ(out, whole(big));
  EXPECT_TRUE(w.str().empty());
  // A flush comes once a piece has passed the mark: never much more than it plus a piece.
  EXPECT_LT(largest, JsonWriter::kFlushOctets + 2 * 100000);

  std::size_t calls = 0;
  JsonWriter refusing;
  refusing.stream_to([&](std::string_view) { return ++calls < 2; });
  refusing.begin_object();
  ASSERT_TRUE(write_bytes_member(refusing, "body", pieces_of(big, 1000), error)) << error;
  EXPECT_FALSE(refusing.sink_open());
  EXPECT_EQ(calls, 2u);  // nothing handed on after the refusal
  EXPECT_FALSE(refusing.flush());
}

// What was written since a mark can be taken back while none of it was handed to the sink (a
// session export could not read to its end, left out of an array that then ends valid), and
// only then.
TEST(StreamedJson, WriterRewindsToAMarkOnlyWhileNothingSinceWasHandedOver) {
  std::string out;
  JsonWriter w;
  w.stream_to([&](std::string_view piece) {
    out.append(piece);
    return true;
  });
  w.begin_array();
  w.begin_object().key("id").value(1).end_object();
  ASSERT_TRUE(w.flush());
  const JsonWriter::Mark before_small = w.mark();
  w.begin_object().key("id").value(2).key("events").begin_array();
  ASSERT_TRUE(w.rewind(before_small));
  w.begin_object().key("id").value(3).end_object();
  const JsonWriter::Mark before_large = w.mark();
  w.begin_object().key("body").begin_string();
  w.string_piece(std::string(JsonWriter::kFlushOctets, 'a'));  // handed over
  EXPECT_FALSE(w.rewind(before_large));
  w.end_string().end_object();
  w.end_array();
  ASSERT_TRUE(w.flush());
  EXPECT_EQ(out, "[{\"id\":1},{\"id\":3},{\"body\":\"" +
                     std::string(JsonWriter::kFlushOctets, 'a') + "\"}]");
}

// mboxrd quoting of the whole body at once, as export wrote it before it streamed: every line
// (LF-ended, a CR before the LF dropped) with one more '>' when it matches ^>*From .
std::string mboxrd_reference(std::string_view body) {
  std::string out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto eol = body.find('\n', pos);
    std::string_view line =
        body.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? body.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::size_t k = 0;
    while (k < line.size() && line[k] == '>') ++k;
    if (line.substr(k).rfind("From ", 0) == 0) out.push_back('>');
    out += line;
    out.push_back('\n');
  }
  return out;
}

TEST(Mboxrd, QuotedInPiecesAsTheWholeBody) {
  const std::vector<std::string> bodies = {
      ""s,
      "no line end"s,
      "From here\r\n>From there\r\n>>From x\nFrom\r\nFro\r\n>Fro\nFrom:x\r\n"s,
      "\r\n\r\n\n\r\r\n\r\rx\r\nends with CR\r"s,
      ">>>\r\nFrom \r\n>\r\n From x\r\nFrom"s,
      "a\rb\r\n\rFrom \r\r\n"s,
  };
  for (const std::string& b : bodies) {
    EXPECT_EQ(mboxrd_quote(b), mboxrd_reference(b)) << b;
    for (std::size_t each : {1u, 2u, 3u, 5u}) {
      std::string out;
      MboxrdQuoter q([&out](std::string_view piece) { out.append(piece); });
      for (std::size_t i = 0; i < b.size(); i += each)
        q.append(std::string_view(b).substr(i, each));
      q.finish();
      EXPECT_EQ(out, mboxrd_reference(b)) << "pieces of " << each << ": " << b;
    }
  }
}

// What docs/tools/export.md says an mbox keeps: LF line ends (CRLF, a bare LF and a missing last
// line ending, which BDAT bodies may hold, all come out the same), every other octet as it was.
TEST(Mboxrd, LineEndsBecomeLfAndNothingElseChanges) {
  EXPECT_EQ(mboxrd_quote("x\r\ny\r\n"), "x\ny\n");
  EXPECT_EQ(mboxrd_quote("x\ny\r\n"), "x\ny\n");
  EXPECT_EQ(mboxrd_quote("x\r\ny"), "x\ny\n");
  EXPECT_EQ(mboxrd_quote("B\r\r\n"), "B\r\n");  // the CR that ends no line is kept
  EXPECT_EQ(mboxrd_quote("a\0\xff\rb\n"s), "a\0\xff\rb\n"s);
}

}  // namespace
}  // namespace mailtap::tools
