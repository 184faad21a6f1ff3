// A recorded reply explained, the same for every reader of the record: `mailtap show`'s "#" line
// under it and the web page's explanation beside it (docs/web.md: "from the same table").
#pragma once

#include <optional>

#include "proxy/smtp/event.hpp"
#include "tools/reply_codes.hpp"

namespace mailtap::tools {

// advise_reply() over the event's code, enhanced status and text (a well-known server's wording
// gives that server's meaning and advice), for a reply the server or mailtap sent; nullopt for
// any other event, and for a code with no meaning.
std::optional<ReplyAdvice> recorded_reply_advice(const smtp::Event& e);

}  // namespace mailtap::tools
