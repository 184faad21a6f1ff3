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

}  // namespace
}  // namespace mailtap
