// A recorded reply explained, the same for every reader of the record: `mailtap show`'s "#" line
// under it and the web page's explanation beside it (docs/web.md: "from the same table").
#pragma once

#include <deque>
#include <optional>

#include "proxy/smtp/event.hpp"
#include "tools/reply_codes.hpp"

namespace mailtap::tools {

// advise_reply() over the event's code, enhanced status and text (a well-known server's wording
// gives that server's meaning and advice), for a reply the server or mailtap sent; nullopt for
// any other event, and for a code with no meaning.
std::optional<ReplyAdvice> recorded_reply_advice(const smtp::Event& e);

// The command a recorded reply answers where its verb alone does not tell: a reply to BDAT
// answers a chunk before the last (kBdatChunkVerb) or the LAST one (kBdatLastVerb), which the
// BDAT lines before it say, replies coming in the order of the commands (pipelined or not).
// Fed every event of one session in order.
class AnsweredCommands {
 public:
  // `e` itself; for a reply to a BDAT line seen before it, a copy whose verb names the chunk.
  const smtp::Event& as_answered(const smtp::Event& e);

 private:
  std::deque<bool> unanswered_;  // the client's BDAT lines not yet answered: LAST or not
  smtp::Event reply_;
};

}  // namespace mailtap::tools
