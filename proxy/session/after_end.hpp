// What the record says of a session's end once its closing record is committed
// (storage::SessionAfterEnd): the last replies go to the client only after that commit, and
// the lingering close ends later still. Plain text from what the session saw; the session
// queues it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proxy/net/lingering_close.hpp"

namespace mailtap {

// The replies in `bytes` (what mailtap wrote to the client, in SMTP's framing), each as its
// summary ("221 2.0.0 Bye"), joined by ", ". Empty if `bytes` holds no whole reply. `bytes` may
// start inside a line a partial write had begun: that line is left out.
std::string reply_summaries(std::string_view bytes);
// The first whole reply in `bytes` and the ones after it, each as reply_summaries says them.
std::pair<std::string, std::string> first_and_other_summaries(std::string_view bytes);

// Why the last replies (`last_replies`, as reply_summaries says them) did not reach the client,
// as the record's note puts it; nullopt if nothing says they did not. `not_read` is the log's
// word for a client mailtap reset because it did not take them in time ("the client did not
// read its last reply within 5m (--timeout-command): connection reset"), empty otherwise;
// `client_gone`: a write to the client failed, or it reset the connection.
std::optional<std::string> undelivered_note(std::string_view last_replies,
                                            std::string_view not_read, bool client_gone);

// The octets the lingering close threw away, as the record's note and the log say them
// ("8 octets the client sent after the end were discarded unread"), with why mailtap closed
// first if it did; nullopt when nothing was thrown away. Never the octets themselves: they may
// hold a secret the client typed ahead (an AUTH line behind a QUIT). `reset_unread`: mailtap
// had reset the connection because the client did not read its replies, the one reason of a
// socket closed before (Lingered::closed_before) that the note may blame the client for.
// Not `greeted`: the session ended before the client got a greeting (a refusal in the set-up),
// so what it sent, typed ahead at connect as likely as after the end, was never read at all.
std::optional<std::string> discarded_note(const net::Lingered& lingered,
                                          const net::LingerLimits& limits, bool reset_unread,
                                          bool greeted = true);

}  // namespace mailtap
