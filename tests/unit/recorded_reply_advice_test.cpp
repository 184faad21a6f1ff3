// A recorded reply is explained for the command it answers: a BDAT reply for its chunk (a
// chunk before the last or the LAST one), told by the BDAT lines before it, pipelined or not.
#include "tools/recorded_reply_advice.hpp"

#include <gtest/gtest.h>

namespace mailtap::tools {
namespace {

smtp::Event bdat_line(std::string line) {
  smtp::Event e;
  e.direction = smtp::Direction::client_to_upstream;
  e.kind = smtp::EventKind::command;
  e.verb = "BDAT";
  e.bytes = std::move(line);
  return e;
}

smtp::Event bdat_reply(std::string line) {
  smtp::Event e;
  e.direction = smtp::Direction::upstream_to_client;
  e.kind = smtp::EventKind::reply;
  e.verb = "BDAT";
  e.reply_code = 250;
  e.enhanced_status = "2.0.0";
  e.bytes = std::move(line);
  return e;
}

std::string meaning(AnsweredCommands& answered, const smtp::Event& e) {
  const auto advice = recorded_reply_advice(answered.as_answered(e));
  return advice ? advice->meaning : "";
}

TEST(RecordedReplyAdvice, ABdatReplyIsExplainedForTheChunkItAnswers) {
  AnsweredCommands answered;
  answered.as_answered(bdat_line("BDAT 41\r\n"));
  const std::string first = meaning(answered, bdat_reply("250 2.0.0 Ok: 41 bytes\r\n"));
  EXPECT_NE(first.find("the message is not yet"), std::string::npos) << first;
  answered.as_answered(bdat_line("BDAT 36 LAST\r\n"));
  EXPECT_EQ(meaning(answered, bdat_reply("250 2.0.0 Ok: 77 bytes queued as X\r\n")),
            "message accepted");
}

TEST(RecordedReplyAdvice, PipelinedChunksAreAnsweredInOrder) {
  AnsweredCommands answered;
  answered.as_answered(bdat_line("BDAT 10\r\n"));
  answered.as_answered(bdat_line("bdat 0 last\r\n"));
  EXPECT_NE(meaning(answered, bdat_reply("250 2.0.0 Ok\r\n")).find("chunk accepted"),
            std::string::npos);
  EXPECT_EQ(meaning(answered, bdat_reply("250 2.0.0 Ok\r\n")), "message accepted");
  // A reply no BDAT line before it explains: which chunk is not known.
  EXPECT_NE(meaning(answered, bdat_reply("250 2.0.0 Ok\r\n")).find("if it was the LAST"),
            std::string::npos);
}

}  // namespace
}  // namespace mailtap::tools
