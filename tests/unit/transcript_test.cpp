#include "proxy/session/transcript.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mailtap
