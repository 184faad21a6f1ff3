// Pieces of the Dialogue shared by its implementation files (dialogue.cpp, dialogue_auth.cpp);
// not part of its interface.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/common/text.hpp"
#include "proxy/smtp/backspace_octet.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/dialogue.hpp"

namespace mailtap::smtp {

struct Dialogue::Pending {
  using Kind = Expect;
  Kind kind = Kind::command;
  std::string verb;            // as the reply event names it (empty: kept out of the record)
  Verb command = Verb::other;  // what the reply answers
  std::string line;   // MAIL/RCPT/EHLO/HELO line without CRLF, or the local reply with CRLF
  bool sync = false;  // reading stopped until this reply arrives
  bool bdat_last = false;
  bool starts_tls = false;           // a local 220 to STARTTLS: the client's handshake follows it
  LineEnd line_end = LineEnd::crlf;  // how the client ended the command line (DATA's decides)
  Clock::time_point since{};
  TransactionTracker::Handle transaction;  // the transaction this command belongs to
  // Its place in the order the server is sent what awaits a reply (push_pending counts from 1):
  // whether a reply answers something sent before or after a given moment (see
  // bdat_chunk_refused_after_).
  std::uint64_t sequence = 0;
  // The end of a message (an end of data, BDAT ... LAST): bytes_to_upstream_ once its last
  // octet is relayed. The server can have the message only if that much reached it.
  std::uint64_t relayed_through = 0;
  // Of the output for the upstream (counted as Dialogue::upstream_answered_through), the octets
  // through its command line: a reply to it says the server had those.
  std::uint64_t queued_through = 0;
  // A local 421 that ends the session once the replies owed ahead of it are relayed (`line` is
  // its text, without "421 " and CRLF; see end_at_unframable_bdat).
  std::optional<Ending> ends_session;
  // A relayed command line that held a Backspace octet (DEL or BS): a refusal of it is noted
  // with why the line differs from what the screen showed (note_backspace_refused).
  std::optional<BackspaceOctet> backspace;
};

// An upstream reply on its way to the client: its event, the bytes the client gets, and the
// event that records how those differ from the reply, if they do.
struct Dialogue::Relayed {
  Event event;
  std::string to_client;
  std::optional<Event> rewrite;
  // A password prompt to a telnet client: telnet's echo is turned off after it (withhold_echo).
  bool withhold_echo = false;
};

// After the client's STARTTLS (RFC 3207 §4.2), until it greets again: without CRLF, so that
// a refused BDAT can add what became of its chunk.
inline constexpr std::string_view greet_again_reply =
    "503 5.5.1 mailtap: send EHLO again after STARTTLS (RFC 3207: what was said before TLS no "
    "longer counts)";

inline std::string first_line(const Reply& r) {
  return std::to_string(r.code) + (r.lines.front().empty() ? "" : " " + r.lines.front());
}

}  // namespace mailtap::smtp
