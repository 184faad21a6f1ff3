#include "proxy/session/transcript.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/crlf_lines.hpp"

#include "tools/reply_explanation.hpp"

namespace mailtap {
namespace {

TEST(TranscriptExplain, LinesUnderEachReplyOnlyWhenAsked) {
  smtp::Event e;
  e.direction = smtp::Direction::upstream_to_client;
  e.kind = smtp::EventKind::reply;
  e.reply_code = 535;
  e.enhanced_status = "5.7.8";
  e.bytes = "535 5.7.8 Error: authentication failed\r\n";
  set_transcript_view({});
  EXPECT_EQ(transcript_lines(4, e), "[4] S: 535 5.7.8 Error: authentication failed\n");
  TranscriptView view;
  view.explain = tools::explanation_lines;
  set_transcript_view(view);
  const std::string out = transcript_lines(4, e);
  EXPECT_EQ(out.rfind("[4] S: 535 5.7.8 Error: authentication failed\n[4] #  535 5.7.8: ", 0), 0u)
      << out;
  EXPECT_NE(out.find("\n[4] #  fix: Check the user name"), std::string::npos) << out;
  // A client line is never explained.
  smtp::Event c;
  c.direction = smtp::Direction::client_to_upstream;
  c.kind = smtp::EventKind::command;
  c.bytes = "NOOP\r\n";
  EXPECT_EQ(transcript_lines(4, c), "[4] C: NOOP\n");
  view.style = Style::coloured();
  set_transcript_view(view);
  EXPECT_EQ(transcript_lines(4, c), "\x1b[36m[4] C: NOOP\x1b[0m\n");
  set_transcript_view({});
}

TEST(TranscriptEscapes, NothingAServerSendsCanDriveTheTerminal) {
  // The same escaping as mailtap's stderr lines and `mailtap show`: C0 and DEL, a C1 CSI
  // (U+009B, a control sequence on xterm), a bare CR that would overwrite the line, bytes that
  // are not UTF-8. UTF-8 text and TAB stay as they are; the CRLF is the line end.
  smtp::Event e;
  e.direction = smtp::Direction::upstream_to_client;
  e.kind = smtp::EventKind::reply;
  e.reply_code = 250;
  e.bytes =
      "250 ok \x1b]0;T\x07 \xc2\x9b"
      "31m red\x7f\tcaf\xc3\xa9 \xe9 hidden\rshown\r\n";
  set_transcript_view({});
  EXPECT_EQ(transcript_lines(2, e),
            "[2] S: 250 ok \\x1b]0;T\\x07 \\xc2\\x9b31m red\\x7f\tcaf\xc3\xa9 \\xe9 "
            "hidden\\rshown\n");
}

// ---- the live transcript: a message's text line by line ---------------------------------

smtp::Event body_read(std::string bytes, std::uint64_t transaction = 1,
                      smtp::EventKind kind = smtp::EventKind::data) {
  smtp::Event e;
  e.direction = smtp::Direction::client_to_upstream;
  e.kind = kind;
  e.verb = kind == smtp::EventKind::data ? "DATA" : "BDAT";
  e.phase = smtp::Phase::tls;
  e.transaction = transaction;
  e.bytes = std::move(bytes);
  e.wire_size = e.bytes.size();
  return e;
}

smtp::Event reply(std::string bytes) {
  smtp::Event e;
  e.direction = smtp::Direction::upstream_to_client;
  e.kind = smtp::EventKind::reply;
  e.phase = smtp::Phase::tls;
  e.reply_code = std::stoi(bytes.substr(0, 3));
  e.bytes = std::move(bytes);
  e.wire_size = e.bytes.size();
  return e;
}

smtp::Event body_note(std::string note, std::uint64_t transaction = 1) {
  smtp::Event e;
  e.direction = smtp::Direction::mailtap_note;
  e.kind = smtp::EventKind::rewrite;
  e.phase = smtp::Phase::tls;
  e.transaction = transaction;
  e.note = std::move(note);
  return e;
}

// What the live transcript prints for `events`, a session that ends after them.
std::string live(const std::vector<smtp::Event>& events) {
  LiveTranscript t(7);
  std::string out;
  for (const smtp::Event& e : events) {
    const std::size_t before = out.size();
    t.event(e, out);
    EXPECT_TRUE(out.size() == before || out.back() == '\n') << "only whole lines go out";
  }
  t.finish(out);
  return out;
}

// `bytes` as the body reads of one message, cut at `cuts` (ascending offsets).
std::vector<smtp::Event> reads(std::string_view bytes, const std::vector<std::size_t>& cuts) {
  std::vector<smtp::Event> events;
  std::size_t from = 0;
  for (const std::size_t cut : cuts) {
    if (cut > from) events.push_back(body_read(std::string(bytes.substr(from, cut - from))));
    from = cut;
  }
  if (from < bytes.size()) events.push_back(body_read(std::string(bytes.substr(from))));
  return events;
}

const std::string kBody =
    "Subject: hi\r\n\r\nhello world\r\nbare\nLF and bare\rCR\r\n\x1b[31m\r\n\r\r\n.\r\n";
const std::string kBodyLines =
    "[7] C: Subject: hi\n"
    "[7] C: \n"
    "[7] C: hello world\n"
    "[7] C: bare\\nLF and bare\\rCR\n"
    "[7] C: \\x1b[31m\n"
    "[7] C: \\r\n"
    "[7] C: .\n";

// However the client's reads cut the text (telnet's character mode: a read per key), the same
// lines are printed, each once, as mailtap show prints the same octets.
TEST(LiveTranscript, TheSameLinesWhereverTheReadsEnd) {
  set_transcript_view({});
  const smtp::Event ok = reply("250 2.0.0 Ok: queued\r\n");
  const std::string expected = kBodyLines + "[7] S: 250 2.0.0 Ok: queued\n";
  auto with_reply = [&](std::vector<smtp::Event> events) {
    events.push_back(ok);
    return events;
  };
  EXPECT_EQ(live(with_reply(reads(kBody, {}))), expected);
  for (std::size_t a = 0; a <= kBody.size(); ++a) {
    EXPECT_EQ(live(with_reply(reads(kBody, {a}))), expected) << "cut at " << a;
    for (std::size_t b = a; b <= kBody.size(); ++b)
      ASSERT_EQ(live(with_reply(reads(kBody, {a, b}))), expected) << "cut at " << a << ", " << b;
  }
  std::vector<std::size_t> every;
  for (std::size_t at = 1; at < kBody.size(); ++at) every.push_back(at);
  EXPECT_EQ(live(with_reply(reads(kBody, every))), expected) << "a read per octet";
}

// mailtap's note on the text that comes while a line is open (a bare LF made CRLF) follows
// that line rather than cut it; one that comes between lines is printed where it comes.
TEST(LiveTranscript, NotesOnTheTextFollowTheOpenLine) {
  set_transcript_view({});
  EXPECT_EQ(live({body_read("hel"), body_note("1 bare LF normalised to CRLF"),
                  body_read("lo\r\nnext\r\n"), body_note("between lines"), body_read(".\r\n")}),
            "[7] C: hello\n"
            "[7] ~  rewrite: 1 bare LF normalised to CRLF\n"
            "[7] C: next\n"
            "[7] ~  rewrite: between lines\n"
            "[7] C: .\n");
  // A note of another message's (or of none) is no note on this text: it ends it.
  EXPECT_EQ(live({body_read("hel"), body_note("other", 2), body_read("lo\r\n")}),
            "[7] C: hel\n[7] ~  rewrite: other\n[7] C: lo\n");
}

// What ends the text prints the line it left open: anything that is not the text (a reply, a
// BDAT command), the next chunk's text, and the session's end.
TEST(LiveTranscript, AnOpenLineIsPrintedWhenTheTextEnds) {
  set_transcript_view({});
  EXPECT_EQ(live({body_read("no CRLF at the end")}), "[7] C: no CRLF at the end\n");
  EXPECT_EQ(live({body_read("a\r\nb\r")}), "[7] C: a\n[7] C: b\\r\n");
  const smtp::Event chunk1 = body_read("one\r\ntw", 1, smtp::EventKind::bdat_chunk);
  smtp::Event command = body_read("BDAT 3 LAST\r\n", 1, smtp::EventKind::command);
  const smtp::Event chunk2 = body_read("o\r\n", 1, smtp::EventKind::bdat_chunk);
  EXPECT_EQ(live({chunk1, reply("250 2.0.0 Ok\r\n"), command, chunk2}),
            "[7] C: one\n[7] C: tw\n[7] S: 250 2.0.0 Ok\n[7] C: BDAT 3 LAST\n[7] C: o\n");
  // Another message's text does not go on with this one's.
  EXPECT_EQ(live({body_read("a", 1), body_read("b\r\n", 2)}), "[7] C: a\n[7] C: b\n");
  // Nothing is printed before the session ends while the line is still open.
  LiveTranscript t(7);
  std::string out;
  t.event(body_read("typing"), out);
  t.event(body_read(" on"), out);
  EXPECT_EQ(out, "");
  t.finish(out);
  EXPECT_EQ(out, "[7] C: typing on\n");
  t.finish(out);
  EXPECT_EQ(out, "[7] C: typing on\n") << "printed once";
}

// A line longer than CrlfLinePieces::kLongestHeld is printed in pieces of about that size as
// it comes, each a line: what is held stays bounded, and nothing of it is lost.
TEST(LiveTranscript, ALongLineIsPrintedInBoundedPieces) {
  set_transcript_view({});
  const std::size_t longest = CrlfLinePieces::kLongestHeld;
  const std::string line(4 * longest + 10, 'x');
  LiveTranscript t(7);
  std::string out;
  std::size_t printed_before_end = 0;
  for (std::size_t at = 0; at < line.size(); at += 4096) {
    t.event(body_read(line.substr(at, 4096)), out);
    printed_before_end = out.size();
  }
  EXPECT_GE(printed_before_end, 3 * longest) << "printed as it came";
  t.event(body_read("\r\n"), out);
  t.finish(out);
  std::string joined;
  std::size_t lines = 0;
  for (std::size_t pos = 0; pos < out.size();) {
    const std::size_t eol = out.find('\n', pos);
    const std::string_view l = std::string_view(out).substr(pos, eol - pos);
    ASSERT_TRUE(l.starts_with("[7] C: "));
    EXPECT_LE(l.size() - 7, longest + 4096);
    joined += l.substr(7);
    ++lines;
    pos = eol + 1;
  }
  EXPECT_EQ(joined, line);
  EXPECT_GE(lines, 4u);
}

// What is not the text is printed as transcript_lines prints it: a redacted client line stays
// redacted, a body event with a note (what --max-body left out) is a note.
TEST(LiveTranscript, WhatIsNotTheTextIsPrintedAsBefore) {
  set_transcript_view({});
  smtp::Event auth;
  auth.direction = smtp::Direction::client_to_upstream;
  auth.kind = smtp::EventKind::auth;
  auth.bytes = "AUTH PLAIN <redacted>\r\n";
  auth.redacted = true;
  auth.wire_size = 40;
  smtp::Event cut = body_read("");
  cut.note = "100 more octets relayed but not recorded: --max-body 10 octets";
  cut.wire_size = 100;
  smtp::Event redacted_body = body_read("<redacted>\r\n");
  redacted_body.redacted = true;
  std::string expected;
  for (const smtp::Event* e : {&auth, &cut, &redacted_body}) expected += transcript_lines(7, *e);
  EXPECT_EQ(live({body_read("par"), auth, cut, redacted_body}), "[7] C: par\n" + expected);
  EXPECT_NE(expected.find("<redacted>"), std::string::npos);
}

}  // namespace
}  // namespace mailtap
