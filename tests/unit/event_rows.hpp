// Recorded event rows written by hand, for tests of the tools that read a recording (mock,
// replay): each row gets the next sequence number, as the recorder would give it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "storage/reader.hpp"

namespace mailtap::tools {

inline storage::EventRow ev(smtp::Direction d, smtp::EventKind k, std::string verb,
                            std::string bytes, int code = 0, bool redacted = false) {
  static std::uint64_t seq = 0;
  storage::EventRow r;
  r.seq = ++seq;
  r.event.direction = d;
  r.event.kind = k;
  r.event.verb = std::move(verb);
  r.event.reply_code = code;
  r.event.wire_size = bytes.size();
  r.event.bytes = std::move(bytes);
  r.event.redacted = redacted;
  return r;
}

// A line the client sent.
inline storage::EventRow client(std::string verb, std::string bytes) {
  return ev(smtp::Direction::client_to_upstream, smtp::EventKind::command, std::move(verb),
            std::move(bytes));
}

// A reply the server sent to the client.
inline storage::EventRow reply(std::string verb, int code, std::string bytes) {
  return ev(smtp::Direction::upstream_to_client, smtp::EventKind::reply, std::move(verb),
            std::move(bytes), code);
}

// The dialogue's note that the last `octets` relayed were dropped unsent when it abandoned the
// upstream (Dialogue::upstream_output_dropped): `kind` data or bdat_chunk inside a body, command
// elsewhere; no bytes.
inline storage::EventRow unsent_note(smtp::EventKind kind, std::size_t octets,
                                     std::uint64_t transaction = 0) {
  storage::EventRow r = ev(smtp::Direction::client_to_mailtap, kind,
                           kind == smtp::EventKind::command ? "" : "DATA", "");
  r.event.wire_size = octets;
  r.event.transaction = transaction;
  r.event.note = std::string(smtp::unsent_note_prefix) + "the last " + std::to_string(octets) +
                 " octets relayed were still queued for the upstream when mailtap stopped "
                 "writing to it (it abandoned the upstream): the server never received them";
  return r;
}

// The server answered a NOOP and closed before answering the lone "." command line the client
// had pipelined behind it; mailtap told the client so with its own 421, naming `upstream`
// (HOST:PORT). The client had pipelined a NOOP behind the dot too, which nothing answered. (The
// session's outcome, upstream_closed, is not an event: note_session_outcome says it.)
inline std::vector<storage::EventRow> server_closed_rows(const std::string& upstream) {
  return {
      ev(smtp::Direction::upstream_to_client, smtp::EventKind::greeting, "", "220 mx ESMTP\r\n",
         220),
      client("EHLO", "EHLO client.test\r\n"),
      reply("EHLO", 250, "250 mx\r\n"),
      client("NOOP", "NOOP\r\n"),
      client(".", ".\r\n"),
      client("NOOP", "NOOP\r\n"),
      reply("NOOP", 250, "250 2.0.0 Ok\r\n"),
      ev(smtp::Direction::mailtap_to_client, smtp::EventKind::local_reply, "",
         "421 4.4.2 mailtap: " + upstream + " closed the connection\r\n", 421),
  };
}

// Postfix answered a lone "." command line with 221 and closed, as recorded by a mailtap older
// than the one that ends the session on such a reply: it went on until the close and recorded
// its own 421 saying so after the 221, which the client read too. The client had pipelined a
// NOOP behind the dot, which nothing answered; `after_close`, if not empty, is a line the client
// sent once it had read the 221 (mailtap read it before it saw the close). server_closed_rows
// with the 221 before mailtap's 421.
inline std::vector<storage::EventRow> older_break_rules_rows(const std::string& upstream,
                                                             const std::string& after_close = "") {
  std::vector<storage::EventRow> rows = server_closed_rows(upstream);
  storage::EventRow notice = std::move(rows.back());
  rows.pop_back();
  rows.push_back(reply(".", 221, "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n"));
  if (!after_close.empty())
    rows.push_back(client(after_close.substr(0, after_close.find_first_of(" \r")), after_close));
  rows.push_back(std::move(notice));
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i].seq = i + 1;  // in recorded order
  return rows;
}

}  // namespace mailtap::tools
