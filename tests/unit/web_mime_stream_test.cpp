// The streaming MIME reader (tools/web/mime_stream.hpp) against parse_message over the whole
// text: the same header fields and the same leaves at the same offsets, decoded to the same
// octets, wherever the text is cut into pieces.
#include "tools/web/mime_stream.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tools/web/mime.hpp"

namespace mailtap::tools::web {
namespace {

bool every_part(const MimePart&) {
  return true;
}

LocatedMessage read_in_pieces(std::string_view raw, const std::vector<std::size_t>& cuts,
                              std::size_t text_limit, std::size_t text_budget) {
  const auto in_pieces = [&](auto& reader) {
    std::size_t from = 0;
    for (std::size_t cut : cuts) {
      reader.append(raw.substr(from, cut - from));
      from = cut;
    }
    reader.append(raw.substr(from));
  };
  MimeStructureReader structure;
  in_pieces(structure);
  LocatedMessage located = structure.finish();
  LocatedPartsDecoder decoder(located, every_part, text_limit, text_budget);
  in_pieces(decoder);
  decoder.finish();
  return located;
}

// What the streaming reader gives for `raw` cut at `cuts`, as parse_message reads it whole.
void expect_as_whole(std::string_view raw, const std::vector<std::size_t>& cuts,
                     std::size_t text_limit = 5) {
  SCOPED_TRACE(::testing::Message() << "cut at " << ::testing::PrintToString(cuts) << " of "
                                    << ::testing::PrintToString(std::string(raw)));
  const ParsedMessage whole = parse_message(raw, MimeBodies::located);
  const LocatedMessage streamed = read_in_pieces(raw, cuts, text_limit, SIZE_MAX);
  ASSERT_EQ(streamed.headers.size(), whole.headers.size());
  for (std::size_t i = 0; i < whole.headers.size(); ++i) {
    EXPECT_EQ(streamed.headers[i].name, whole.headers[i].name);
    EXPECT_EQ(streamed.headers[i].value, whole.headers[i].value);
  }
  ASSERT_EQ(streamed.parts.size(), whole.parts.size());
  for (std::size_t i = 0; i < whole.parts.size(); ++i) {
    const MimePart& w = whole.parts[i];
    const LocatedPart& s = streamed.parts[i];
    EXPECT_EQ(s.part.content_type, w.content_type) << "part " << i;
    EXPECT_EQ(s.part.charset, w.charset) << "part " << i;
    EXPECT_EQ(s.part.filename, w.filename) << "part " << i;
    EXPECT_EQ(s.part.filename_is_text, w.filename_is_text) << "part " << i;
    EXPECT_EQ(s.part.attachment, w.attachment) << "part " << i;
    EXPECT_EQ(s.part.transfer_encoding, w.transfer_encoding) << "part " << i;
    EXPECT_EQ(s.offset, static_cast<std::uint64_t>(w.encoded.data() - raw.data())) << "part " << i;
    EXPECT_EQ(s.length, w.encoded.size()) << "part " << i;
    EXPECT_EQ(s.decoded_size, decoded_size(w.transfer_encoding, w.encoded)) << "part " << i;
    bool cut = false;
    EXPECT_EQ(s.text, decoded_prefix(w.transfer_encoding, w.encoded, text_limit, cut))
        << "part " << i;
    EXPECT_EQ(s.text_cut, cut) << "part " << i;
  }
}

// Every way of cutting `raw` in two and in three, and one octet at a time.
void expect_as_whole_cut_anywhere(std::string_view raw) {
  expect_as_whole(raw, {});
  for (std::size_t i = 0; i <= raw.size(); ++i) {
    expect_as_whole(raw, {i});
    for (std::size_t j = i; j <= raw.size(); j += 3) expect_as_whole(raw, {i, j});
  }
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < raw.size(); ++i) every.push_back(i);
  expect_as_whole(raw, every);
}

TEST(WebMimeStream, NestedMultipartWithEncodingsAsWholeWhereverCut) {
  const std::string raw =
      "From: a@example.com\r\n"
      "Subject: =?utf-8?q?caf=C3=A9?=\r\n"
      " folded\r\n"
      "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
      "\r\n"
      "preamble\r\n"
      "--outer\r\n"
      "Content-Type: multipart/alternative; boundary=inner\r\n"
      "\r\n"
      "--inner\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "caf=C3=A9 soft=\r\n"
      "break\r\n"
      "--inner\r\n"
      "Content-Type: text/html\r\n"
      "\r\n"
      "<p>hi</p>\r\n"
      "--inner--\r\n"
      "inner epilogue\r\n"
      "--outer \t\r\n"
      "Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
      "Content-Disposition: attachment; filename=\"b.bin\"\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "aGVs\r\n"
      "bG8=\r\n"
      "--outer-- \r\n"
      "epilogue\r\n"
      "--outer\r\n";
  expect_as_whole_cut_anywhere(raw);
}

TEST(WebMimeStream, OddShapesAsWholeWhereverCut) {
  for (const std::string& raw : {
           std::string(""),
           std::string("no headers at all, bare LF\nline 2\n"),
           std::string("Subject: headers only, no body"),
           std::string("Subject: x\n\n"),
           std::string("Content-Type: multipart/mixed; boundary=x\n\n--x\n\nonly part\n"),
           // Truncated: no close delimiter, the last part runs to the end.
           std::string("Content-Type: multipart/mixed; boundary=x\n\n--x\nA: b\n\nab\n--x\n"
                       "Content-Type: multipart/mixed; boundary=y\n\n--y\n\ncut"),
           // A multipart with no delimiter line is shown as it is.
           std::string("Content-Type: multipart/mixed; boundary=x\n\nno delimiters\n--y\n"),
           // A part whose header section ends only at the delimiter line, after an empty
           // first line.
           std::string("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nContent-Type: "
                       "image/png\n\n--b\n\r\n\r\nX\n--b\r\n\r\n--b--"),
           std::string("Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1\n\r\n--b\n--b\n"
                       "\n\nx\n--b--\n--b\n"),
           // A delimiter line that only starts like one; "--" not at the end.
           std::string("Content-Type: multipart/mixed; boundary=b\n\n--bb\n--b x\n--b --x\n"
                       "--b\r\r\n\nbody\r\r\n--b \r--\n--b\t--\t\r\n"),
           // Same boundary inside and out: the outer delimiter ends the inner part.
           std::string("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: "
                       "multipart/mixed; boundary=b\n\n--b\n\ninner\n--b--\nafter\n"),
           std::string("\r\nstarts with an empty line\r\n"),
           std::string(":no name\n\nbody"),
       }) {
    expect_as_whole_cut_anywhere(raw);
  }
}

TEST(WebMimeStream, NestingDeeperThanTheLimitIsShownAsItIs) {
  std::string raw;
  for (int depth = 0; depth < 11; ++depth)
    raw += "Content-Type: multipart/mixed; boundary=d" + std::to_string(depth) + "\n\n--d" +
           std::to_string(depth) + "\n";
  raw += "\ndeep\n";
  expect_as_whole(raw, {});
  expect_as_whole(raw, {raw.size() / 2});
}

// Messages made of lines that matter to MIME, in random order, cut at random: a small fuzzer
// that runs with the unit tests (tests/fuzz/fuzz_mime_stream.cpp is the real one).
TEST(WebMimeStream, RandomMessagesAsWhole) {
  const std::vector<std::string> lines = {
      "Content-Type: multipart/mixed; boundary=a",
      "Content-Type: multipart/alternative; boundary=\"b\"",
      "Content-Type: text/plain; charset=iso-8859-1",
      "Content-Transfer-Encoding: base64",
      "Content-Transfer-Encoding: quoted-printable",
      "Content-Disposition: attachment; filename=x",
      " folded",
      "--a",
      "--a--",
      "--b",
      "--b-- ",
      "--a\t",
      "",
      "\r",
      "aGVsbG8gd29ybGQ=",
      "a=3Db=\r",
      "=",
      "text",
      "X: y",
  };
  std::mt19937 random(20261206);
  for (int round = 0; round < 3000; ++round) {
    std::string raw;
    const int count = static_cast<int>(random() % 24);
    for (int i = 0; i < count; ++i) {
      raw += lines[random() % lines.size()];
      const auto end = random() % 4;
      if (end != 0 || i + 1 < count) raw += end == 1 ? "\r\n" : "\n";
    }
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < raw.size(); at += 1 + random() % 9) cuts.push_back(at);
    expect_as_whole(raw, cuts, 1 + random() % 12);
    if (HasFailure()) return;
  }
}

TEST(WebMimeStream, TheTextBudgetIsSharedByAllParts) {
  const std::string raw =
      "Content-Type: multipart/mixed; boundary=x\n\n--x\n\n0123456789\n--x\n\nabcdefghij\n--x\n"
      "\nABCDEFGHIJ\n--x--\n";
  const LocatedMessage m = read_in_pieces(raw, {}, 8, 12);
  ASSERT_EQ(m.parts.size(), 3u);
  EXPECT_EQ(m.parts[0].text, "01234567");
  EXPECT_EQ(m.parts[1].text, "abcd");
  EXPECT_EQ(m.parts[2].text, "");
  for (const auto& p : m.parts) {
    EXPECT_TRUE(p.text_cut);
    EXPECT_EQ(p.decoded_size, 10u);
  }
}

TEST(WebMimeStream, ALongLineThatStartsLikeADelimiterLine) {
  // 8 MiB of blanks between a delimiter and its "--": the reader follows the line by its state.
  std::string raw = "Content-Type: multipart/mixed; boundary=x\n\n--x\n\n";
  raw += "--x" + std::string(std::size_t{8} << 20, ' ') + "--\n";
  raw += "after the close delimiter\n";
  expect_as_whole(raw, {100, 4 << 20});
}

TEST(WebMimeStream, PartsPastTheLimitAreCountedNotKept) {
  // Nothing but delimiter lines: a part every 4 octets (review: 8 MiB made 2.1 million parts,
  // half a GiB). The first kMaxParts are kept as parse_message finds them, the rest counted.
  constexpr std::size_t more = 500;
  std::string raw = "Content-Type: multipart/mixed; boundary=b\n\n";
  for (std::size_t i = 0; i < MimeStructureReader::kMaxParts + more + 1; ++i) raw += "--b\n";
  raw += "last\n";
  const ParsedMessage whole = parse_message(raw, MimeBodies::located);
  ASSERT_EQ(whole.parts.size(), MimeStructureReader::kMaxParts + more + 1);
  const LocatedMessage m = read_in_pieces(raw, {1000, 30000}, 5, SIZE_MAX);
  ASSERT_EQ(m.parts.size(), MimeStructureReader::kMaxParts);
  EXPECT_EQ(m.parts_left_out, more + 1);
  const LocatedPart& last = m.parts.back();
  const MimePart& same = whole.parts[MimeStructureReader::kMaxParts - 1];
  EXPECT_EQ(last.offset, static_cast<std::uint64_t>(same.encoded.data() - raw.data()));
  EXPECT_EQ(last.length, same.encoded.size());
}

TEST(WebMimeStream, AMessageWithinTheLimitLeavesNoPartOut) {
  const LocatedMessage m =
      locate_parts("Content-Type: multipart/mixed; boundary=x\n\n--x\n\none\n--x\n\ntwo\n--x--\n");
  EXPECT_EQ(m.parts.size(), 2u);
  EXPECT_EQ(m.parts_left_out, 0u);
}

}  // namespace
}  // namespace mailtap::tools::web
