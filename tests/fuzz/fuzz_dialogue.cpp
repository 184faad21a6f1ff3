// Drives a whole Dialogue with an arbitrary interleaving of client bytes, upstream bytes and
// EOFs, as the session would (client bytes are only offered while wants_client_input()).
// Checks, beyond ASan/UBSan: the byte accounting, that nothing mailtap sends upstream has a
// bare CR or LF unless a BDAT chunk (binary by definition) was relayed, that nothing is sent
// after the dialogue finished, and that the outcome does not depend on how the client's bytes
// were split into reads. And the smuggling property: when every command line ended in CRLF,
// mailtap sends no end of data ("." line) for which the client did not send CRLF "." CRLF, and
// (BDAT chunks and SASL responses aside) never a line ".\0", the end for C-string servers. Every
// command line relayed is one a strict server frames in the client's bytes (ended at an LF; see
// command_the_client_did_not_end).
// And between the chunks of a message, no command but BDAT and a bare RSET, NOOP or QUIT goes
// upstream, nothing goes behind a chunk without LAST before its reply, none after a refused
// one until an RSET, no BDAT after a chunk mailtap discarded in a transaction until an RSET or
// MAIL (whenever the replies to what was pipelined ahead of it came), nothing goes behind an
// unanswered NOOP there (see BetweenChunks), and no chunk takes its transaction past the server's
// SIZE less mailtap's margin, nor any under a SIZE it cannot read (see chunk_past_size, with its
// own reading of SIZE).
//
// Input: byte 0 selects options; then records of [op][length][bytes...]:
//   op % 8 == 0: client bytes, 1: upstream bytes, 2: client EOF, 3: upstream EOF,
//   4: the session provides the access token asked for (the bytes), 5: the token command failed,
//   6: the client's TLS handshake succeeded, 7: it failed (both only when the dialogue asked
//   for it, as the session does).
// Options bit 64 makes mailtap authenticate itself (--auth-user, password and token command),
// bit 128 turns on --assist-auth. The last byte of the input % 3 picks --local-tls (none,
// starttls, implicit), so the seed corpus keeps its meaning.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/command.hpp"
#include "proxy/smtp/dialogue.hpp"
#include "proxy/smtp/message_body.hpp"
#include "proxy/smtp/reply_parser.hpp"

namespace {

using namespace mailtap::smtp;

struct RunOutcome {
  std::string to_upstream;
  std::string to_client;
  std::vector<std::string> bodies;
  bool finished = false;
  bool abandon = false;
  std::uint64_t up = 0, down = 0, to_client_count = 0;
};

std::size_t count_overlapping(std::string_view s, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string_view::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// A client line (command or SASL response) whose bare CR or LF mailtap rewrote: its rewrite
// note follows the line's event.
bool command_line_end_rewritten(const std::vector<RecordedEvent>& events) {
  for (std::size_t i = 1; i < events.size(); ++i) {
    const Event& e = *events[i];
    const Event& line = *events[i - 1];
    if (e.kind != EventKind::rewrite || e.direction != Direction::mailtap_note) continue;
    const bool from_client = line.direction == Direction::client_to_upstream ||
                             line.direction == Direction::client_to_mailtap;
    if (e.note.find("bare") == std::string::npos) continue;
    if (from_client && line.kind != EventKind::data) return true;
    // The CR a command line was ended at, counted once the next octet showed it was bare: its
    // note comes later, with that line's verb (a body's notes are DATA's or BDAT's).
    if (e.verb != "DATA" && e.verb != "BDAT") return true;
  }
  return false;
}

std::string escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// A command line mailtap relayed that the client did not end as a strict server frames lines
// (at an LF, the CRs before it dropped), or "". Every server ends a command line at LF only, so
// a bare CR inside a CRLF or bare-LF client's line must never make two commands of it (SMTP
// smuggling: "RCPT TO:<b>\rRCPT TO:<c>\r\n" is one line, refused). So the relayed line must
// be in the client's bytes followed by its LF (CRs before it), not right after a bare CR or CR NUL.
// Not checked for a client whose first line ending is a bare CR (its own line ending may be
// that), when the client's bytes hold a 0xFF (telnet sequences are removed from command lines)
// or a BDAT (a chunk is binary: a CR at its end ends no line; the chunks have oracles of their
// own).
std::string command_the_client_did_not_end(std::string_view client,
                                           const std::vector<RecordedEvent>& events) {
  const std::size_t first = client.find_first_of("\r\n");
  if (first != std::string_view::npos && client[first] == '\r' &&
      (first + 1 == client.size() || client[first + 1] != '\n'))
    return {};
  if (client.find('\xff') != std::string_view::npos) return {};
  for (std::size_t at = 0; at + 4 <= client.size(); ++at)
    if (iequals(client.substr(at, 4), "bdat")) return {};
  auto ended_by_the_client = [client](std::string_view line) {
    for (std::size_t at = client.find(line); at != std::string_view::npos;
         at = client.find(line, at + 1)) {
      const std::string_view before = client.substr(0, at);
      const std::string_view after = client.substr(at + line.size());
      if (before.ends_with('\r') || before.ends_with(std::string_view("\r\0", 2))) continue;
      const std::size_t crs = std::min(after.find_first_not_of('\r'), after.size());
      if (after.substr(crs).starts_with('\n')) return true;  // CRs before a CRLF join it
    }
    return false;
  };
  for (const RecordedEvent& recorded : events) {
    const Event& e = *recorded;
    if (e.direction != Direction::client_to_upstream || e.kind != EventKind::command || e.redacted)
      continue;
    std::string_view line = e.bytes;
    if (line.ends_with("\r\n")) line.remove_suffix(2);
    if (!ended_by_the_client(line)) return e.bytes;
  }
  return {};
}

// A line a server reading lines as C strings (OpenSMTPD: strcmp(line, ".")) takes as the end of
// data where a strict server reads on: one that begins "." then NUL.
bool has_c_string_only_end(std::string_view s) {
  for (std::size_t pos = 0; pos < s.size();) {
    if (s.substr(pos, 2) == std::string_view(".\0", 2)) return true;
    const std::size_t eol = s.find("\r\n", pos);
    if (eol == std::string_view::npos) break;
    pos = eol + 2;
  }
  return false;
}

bool has_bare_cr_or_lf(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

bool sent_upstream(const Event& e) {
  return e.direction == Direction::client_to_upstream ||
         e.direction == Direction::mailtap_to_upstream;
}

// A line every server reads as a bare RSET, NOOP or QUIT: the verb from the line's first octet
// (Exim matches none after white space), nothing after it but white space (which Exim strips);
// or a NOOP with a string both Postfix and Exim ignore: printable ASCII after single SPs.
bool bare_between_chunks(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.size() > 5 && iequals(line.substr(0, 5), "NOOP ") && line.back() != ' ' &&
      line.find("  ") == std::string_view::npos &&
      std::all_of(line.begin(), line.end(), [](char c) { return c >= ' ' && c < '\x7f'; }))
    return true;
  line = trim_trailing_separators(line);
  return iequals(line, "RSET") || iequals(line, "NOOP") || iequals(line, "QUIT");
}

// Whether an EHLO reply has a line (after the first) that is CHUNKING, any case, alone and with
// nothing after it (stricter than mailtap's reading: the oracle may only miss its refusals).
bool advertises_chunking(const std::string& raw) {
  ReplyParser parser;
  parser.feed(raw);
  const std::optional<Reply> reply = parser.next();
  if (!reply) return false;
  for (std::size_t i = 1; i < reply->lines.size(); ++i)
    if (iequals(reply->lines[i], "CHUNKING")) return true;
  return false;
}

// smuggle3-F1: once a chunk without LAST went upstream in a transaction, until that message's
// BDAT ... LAST or an RSET, a line sent upstream is a BDAT with a chunk or LAST, or a bare RSET,
// NOOP or QUIT: anything else makes Exim answer the next BDAT line without reading its chunk,
// so the chunk's text would be its commands. A refused MAIL ends the state too (a chunk pipelined
// behind it is recorded for the transaction it would have opened; no server has it open).
// And nothing goes upstream behind a BDAT without LAST before its reply, the client's lines
// and mailtap's own alike: a server that stopped reading the chunk short (a size limit below its
// SIZE) runs the rest as commands, and a hidden "BDAT <n> LAST" there would take what follows
// as its chunk while the replies still matched the commands in number. Whether the server reads
// the next chunk as a chunk depends on that reply too, and
// after a server refused such a chunk in a transaction (Exim's 504 or 554 then take the next
// chunk as commands), none goes until an RSET went upstream. Between chunks nothing goes upstream
// behind a NOOP before its reply: Exim answers a NOOP with input behind it "503 only BDAT
// permissible after non-LAST BDAT" and from then on takes the next chunk as commands.
// A chunk mailtap discarded itself (its BDAT line answered by mailtap, with octets) after a MAIL
// went upstream and before anything ended that transaction leaves the server holding it without
// that chunk: no BDAT goes upstream until an RSET, MAIL, EHLO or HELO did after it, however late
// the replies to the commands pipelined ahead of that BDAT came (a BDAT ... LAST let through
// would end a message without the chunk). Nor, where CHUNKING was advertised (so it was its own
// refusal, past SIZE or under one it cannot read), a MAIL, RCPT or DATA until an RSET, EHLO or
// HELO went upstream or that transaction's MAIL was refused, even when the discarded chunk was
// the transaction's first: the server still holds it, and would take a RCPT of the client's next
// message into it and end it at its DATA (Postfix), or end it without the chunk at a DATA.
class BetweenChunks {
 public:
  // What went wrong, empty when nothing.
  std::string check(const Event& e) {
    if (e.kind == EventKind::reply && !sent_upstream(e) && e.direction != Direction::mailtap_note) {
      on_reply(e);
      return {};
    }
    // The client's side of TLS began: CHUNKING is not known until its next EHLO is answered.
    if (e.kind == EventKind::tls && e.direction == Direction::mailtap_note &&
        e.note.find("client side: TLS established") != std::string::npos)
      chunking_ = false;
    if (e.direction == Direction::client_to_mailtap && e.kind == EventKind::command &&
        e.verb == "BDAT") {
      const BdatArgs args = parse_bdat_line(e.bytes);
      if (args && args.size > 0 && mail_open_) {
        chunk_discarded_ = true;
        if (chunking_) commands_held_ = true;
      }
      return {};
    }
    if (!sent_upstream(e)) return {};
    if (commands_held_ && e.kind == EventKind::command &&
        (e.verb == "MAIL" || e.verb == "RCPT" || e.verb == "DATA"))
      return "a " + e.verb + " after a chunk mailtap discarded, with no RSET since: " + e.bytes;
    if (e.kind == EventKind::command) on_command_sent(e.verb, e.bytes);
    if (e.kind == EventKind::bdat_chunk) {
      if (e.transaction != 0) {
        between_ = !last_bdat_final_;
        if (!bdats_.empty()) bdats_.back().in_transaction = true;
      }
      return {};
    }
    if (std::any_of(bdats_.begin(), bdats_.end(), [](const SentBdat& b) { return !b.last; }))
      return "behind a chunk without LAST before its reply: " + (e.redacted ? e.verb : e.bytes);
    if (noops_between_ > 0 && (e.kind == EventKind::command || e.kind == EventKind::auth))
      return "behind an unanswered NOOP between chunks: " + (e.redacted ? e.verb : e.bytes);
    if (e.kind == EventKind::command && e.verb == "BDAT") return bdat_line(e.bytes);
    if (e.kind == EventKind::command && e.verb == "RSET") chunk_refused_ = false;
    if (e.kind == EventKind::command && e.verb == "NOOP") noops_.push_back(between_);
    if (e.kind == EventKind::command && e.verb == "NOOP" && between_) ++noops_between_;
    if (!between_ || (e.kind != EventKind::command && e.kind != EventKind::auth)) return {};
    if (e.redacted) return e.verb;
    if (!bare_between_chunks(e.bytes)) return e.bytes;
    if (e.verb == "RSET") between_ = false;
    return {};
  }

 private:
  struct SentBdat {
    bool last = false;
    bool in_transaction = false;
  };

  // What a transaction's state as the oracle keeps it (mail_open_, chunk_discarded_) learns from
  // a command sent upstream. Ending the transaction early only makes the oracle weaker.
  void on_command_sent(const std::string& verb, const std::string& line) {
    if (verb == "MAIL" || verb == "RSET" || verb == "EHLO" || verb == "HELO")
      chunk_discarded_ = false;
    if (verb == "RSET" || verb == "EHLO" || verb == "HELO") commands_held_ = false;
    if (verb == "MAIL") mail_open_ = true;
    if (verb == "RSET" || verb == "EHLO" || verb == "HELO" || verb == "DATA") mail_open_ = false;
    if (verb == "BDAT") {
      const BdatArgs args = parse_bdat_line(line);
      if (!args || args.last) mail_open_ = false;
    }
  }

  void on_reply(const Event& e) {
    if (e.verb == "MAIL" && e.reply_code >= 300) between_ = false;
    if (e.verb == "MAIL" && e.reply_code >= 300) mail_open_ = false;
    // The MAIL ahead of the discarded chunk refused: the server has no transaction for it.
    if (e.verb == "MAIL" && e.reply_code >= 300) commands_held_ = false;
    // Whether a BDAT mailtap answers is its refusal past SIZE, as the latest greeting says.
    if ((e.verb == "EHLO" || e.verb == "HELO") && e.reply_code / 100 == 2)
      chunking_ = e.verb == "EHLO" && advertises_chunking(e.bytes);
    if (e.verb == "NOOP" && !noops_.empty()) {
      if (noops_.front() && noops_between_ > 0) --noops_between_;
      noops_.pop_front();
    }
    if (e.verb != "BDAT" || bdats_.empty()) return;
    const SentBdat answered = bdats_.front();
    bdats_.pop_front();
    if (!answered.last && answered.in_transaction && (e.reply_code < 200 || e.reply_code >= 300))
      chunk_refused_ = true;
  }

  std::string bdat_line(const std::string& line) {
    const BdatArgs args = parse_bdat_line(line);
    last_bdat_final_ = args && args.last;
    bdats_.push_back(SentBdat{last_bdat_final_, false});
    if (chunk_refused_) return "BDAT after a refused chunk, with no RSET since: " + line;
    if (chunk_discarded_)
      return "BDAT after a chunk mailtap discarded, with no RSET or MAIL since: " + line;
    if (!between_) return {};
    if (!args || (args.size == 0 && !args.last)) return line;
    if (args.last) between_ = false;
    return {};
  }

  bool between_ = false;
  bool last_bdat_final_ = false;
  bool chunk_refused_ = false;
  bool mail_open_ = false;        // a MAIL went upstream, and nothing known has ended it since
  bool chunk_discarded_ = false;  // mailtap discarded a chunk of it (see above)
  bool chunking_ = false;         // the latest accepted greeting's reply advertised CHUNKING
  bool commands_held_ = false;    // a chunk discarded as past SIZE: no MAIL, RCPT, DATA (above)
  std::deque<SentBdat> bdats_;    // sent upstream, reply not yet seen, oldest first
  std::deque<bool> noops_;        // the same for NOOPs: sent between chunks?
  int noops_between_ = 0;
};

std::string command_between_chunks(const std::vector<RecordedEvent>& events) {
  BetweenChunks state;
  for (const RecordedEvent& e : events)
    if (std::string line = state.check(*e); !line.empty()) return line;
  return {};
}

// The SIZE an EHLO reply advertises, read here on its own rather than by parse_capabilities (an
// oracle sharing the code it checks cannot catch its misreadings): a line after the first that
// is "SIZE" (any case) alone or followed by SP, HT or "="; its limit is the run of digits after
// that and any more SP/HT, saturating, when the digits end the line or SP/HT follows them; none
// is no limit (RFC 1870), as is 0; any other parameter is a limit not known (nullopt), under
// which no chunk octet may go upstream. Of several SIZE lines: not known if any is, else the
// smallest non-zero limit.
std::optional<std::uint64_t> size_in(const Reply& ehlo_reply) {
  std::optional<std::uint64_t> size = 0;
  for (std::size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
    const std::string& line = ehlo_reply.lines[i];
    if (line.size() < 4 || !iequals(std::string_view(line).substr(0, 4), "size")) continue;
    if (line.size() > 4 && line[4] != ' ' && line[4] != '\t' && line[4] != '=') continue;
    std::size_t at = std::min<std::size_t>(line.size(), 5);
    while (at < line.size() && (line[at] == ' ' || line[at] == '\t')) ++at;
    const std::size_t digits = at;
    std::uint64_t n = 0;
    for (; at < line.size() && line[at] >= '0' && line[at] <= '9'; ++at) {
      const std::uint64_t digit = static_cast<std::uint64_t>(line[at] - '0');
      n = n > (UINT64_MAX - digit) / 10 ? UINT64_MAX : n * 10 + digit;
    }
    const bool readable =
        at == line.size() || (at > digits && (line[at] == ' ' || line[at] == '\t'));
    if (!readable) size = std::nullopt;
    if (size && n != 0 && (*size == 0 || n < *size)) size = n;
  }
  return size;
}

// servers-F1: Exim at its size limit reads the rest of a chunk as commands. The SIZE in force is
// the one of the last EHLO reply the server accepted with (as recorded); the chunk octets sent
// upstream for each transaction (every piece's wire_size, what --max-body cut included) may not
// pass it less the margin docs/dialogue.md gives (8 KiB, or 1/64 of SIZE when larger) at any
// point, nor be more than 0 under a SIZE not known. Returns what went past, empty when nothing
// did.
std::string chunk_past_size(const std::vector<RecordedEvent>& events) {
  std::optional<std::uint64_t> size = 0;
  std::map<std::uint64_t, std::uint64_t> octets;  // by transaction
  for (const RecordedEvent& recorded : events) {
    const Event& e = *recorded;
    if (!sent_upstream(e) && e.kind == EventKind::reply && e.verb == "EHLO" &&
        e.reply_code / 100 == 2) {
      ReplyParser parser;
      parser.feed(e.bytes);
      if (const std::optional<Reply> reply = parser.next()) size = size_in(*reply);
    }
    if (e.direction != Direction::client_to_upstream || e.kind != EventKind::bdat_chunk ||
        e.transaction == 0)
      continue;
    const std::uint64_t total = octets[e.transaction] += e.wire_size;
    if (!size) {
      if (total > 0)
        return "transaction " + std::to_string(e.transaction) + " at " + std::to_string(total) +
               " octets, SIZE unreadable";
      continue;
    }
    const std::uint64_t margin = std::max<std::uint64_t>(8 * 1024, *size / 64);
    if (*size != 0 && total > (*size > margin ? *size - margin : 0))
      return "transaction " + std::to_string(e.transaction) + " at " + std::to_string(total) +
             " octets, SIZE " + std::to_string(*size);
  }
  return {};
}

RunOutcome drive(const std::uint8_t* data, std::size_t size, bool split) {
  DialogueOptions options;
  options.upstream_label = "up.example:587";
  options.starttls_refusal = "not needed";
  const std::uint8_t flags = data[0];
  if (flags & 1) options.max_pending_replies = 4;
  if (flags & 2) options.max_body_capture = 16;
  if (flags & 4) options.max_client_backlog = 64;
  if (flags & 8) options.max_command_line = 64;
  if (flags & 16) options.max_auth_line = 128;
  options.redaction.redact_users = (flags & 32) != 0;
  options.upstream_host = "up.example";
  options.upstream_port = 587;
  if (flags & 64) {
    UpstreamLoginOptions login;
    login.user = "alice";
    login.password = std::make_shared<const Secret>(Secret::copy_of("pw"));
    login.token_command = true;
    login.host = "up.example";
    login.port = 587;
    options.login = std::move(login);
  }
  options.assist_auth = (flags & 128) != 0;
  options.token_command = (flags & 192) != 0;
  options.client_tls = static_cast<ClientTls>(data[size - 1] % 3);

  std::vector<RecordedEvent> events;
  std::vector<Message> messages;
  std::vector<UnrecordedBody> unrecorded;
  RunOutcome out;
  {
    Dialogue d(options, events, messages);
    ReplyParser greeting;
    greeting.feed("220 up.example ESMTP\r\n");
    d.relay_greeting(*greeting.next(), Phase::tls);
    out.to_client = d.take_to_client();
    bool client_closed = false;
    bool upstream_closed = false;
    std::string client_fed;
    std::size_t pos = 1;
    while (pos + 2 <= size) {
      const std::uint8_t op = data[pos] % 8;
      const std::size_t len = std::min<std::size_t>(data[pos + 1], size - pos - 2);
      const std::string_view bytes(reinterpret_cast<const char*>(data + pos + 2), len);
      pos += 2 + len;
      const bool was_finished = d.finished();
      const std::size_t up_before = out.to_upstream.size();
      switch (op) {
        case 0:
          if (client_closed || !d.wants_client_input()) break;
          client_fed += bytes;
          if (split && bytes.size() > 1) {
            for (std::size_t i = 0; i < bytes.size(); ++i) d.client_bytes(bytes.substr(i, 1));
          } else {
            d.client_bytes(bytes);
          }
          break;
        case 1:
          if (upstream_closed) break;
          // Upstream reads are not split: where a reply read ends legitimately decides how many
          // buffered client commands go out before a later reply in it (a 421, garbage) ends
          // the session. ReplyParser's own fuzzer covers upstream read boundaries.
          d.upstream_bytes(bytes);
          break;
        case 2:
          if (client_closed) break;
          client_closed = true;
          d.client_closed();
          break;
        case 3:
          if (upstream_closed) break;
          upstream_closed = true;
          d.upstream_closed();
          break;
        case 4:
          d.provide_token(Secret::copy_of(bytes), /*fresh=*/true);
          break;
        case 5:
          d.token_unavailable(std::string(bytes));
          break;
        case 6:
          if (d.client_tls_due())
            d.client_tls_started("TLSv1.3");
          else if (!bytes.empty())  // --record-failure stop: the owner tells, and tells again
            d.recording_failed("disk full (fuzz)", static_cast<std::uint8_t>(bytes[0]) % 3);
          break;
        case 7:
          if (d.client_tls_due()) d.client_tls_failed(std::string(bytes));
          break;
      }
      // While the client's handshake is due, no client byte is read (they belong to TLS).
      if (d.client_tls_due() && d.wants_client_input()) std::abort();
      for (UnrecordedBody& b : d.take_unrecorded_bodies()) unrecorded.push_back(std::move(b));
      const UpstreamOutput up = d.take_to_upstream();  // named: pieces() points into it
      for (const UpstreamOutput::Piece& piece : up.pieces()) out.to_upstream += piece.view();
      out.to_client += d.take_to_client();
      if (was_finished && out.to_upstream.size() != up_before) std::abort();
    }
    out.finished = d.finished();
    out.abandon = d.abandon_upstream();
    // The input ran out: the session would stop here, and the record must still add up.
    if (!out.finished) d.end(Ending{Ending::Kind::error, "fuzz input ended"});
    for (UnrecordedBody& b : d.take_unrecorded_bodies()) unrecorded.push_back(std::move(b));
    const UpstreamOutput last = d.take_to_upstream();
    for (const UpstreamOutput::Piece& piece : last.pieces()) out.to_upstream += piece.view();
    out.to_client += d.take_to_client();
    bool bdat_relayed = false;
    for (const RecordedEvent& e : events) bdat_relayed |= e->kind == EventKind::bdat_chunk;
    if (!bdat_relayed && !command_line_end_rewritten(events) &&
        d.data_ends_sent() > count_overlapping(client_fed, "\r\n.\r\n")) {
      std::fprintf(stderr, "end of data the client did not send\nclient: %s\nup: %s\n",
                   escaped(client_fed).c_str(), escaped(out.to_upstream).c_str());
      std::abort();
    }
    // Nor one a C-string server ends a message at: outside BDAT chunks (binary) and SASL
    // responses (relayed as they come; no server reads them as body lines), none may begin ".\0".
    bool client_auth = false;
    for (const RecordedEvent& e : events)
      client_auth |= e->kind == EventKind::auth && e->direction == Direction::client_to_upstream;
    if (!bdat_relayed && !client_auth && has_c_string_only_end(out.to_upstream)) {
      std::fprintf(stderr, "a line \".\" NUL sent upstream\nclient: %s\nup: %s\n",
                   escaped(client_fed).c_str(), escaped(out.to_upstream).c_str());
      std::abort();
    }
    if (const std::string line = command_the_client_did_not_end(client_fed, events);
        !line.empty()) {
      std::fprintf(stderr, "a command line the client did not end: %s\nclient: %s\n",
                   escaped(line).c_str(), escaped(client_fed).c_str());
      std::abort();
    }
    if (const std::string line = command_between_chunks(events); !line.empty()) {
      std::fprintf(stderr, "between BDAT chunks: %s\nclient: %s\nup: %s\n", escaped(line).c_str(),
                   escaped(client_fed).c_str(), escaped(out.to_upstream).c_str());
      std::abort();
    }
    if (const std::string past = chunk_past_size(events); !past.empty()) {
      std::fprintf(stderr, "a BDAT chunk past the server's SIZE sent upstream: %s\nclient: %s\n",
                   past.c_str(), escaped(client_fed).c_str());
      std::abort();
    }
    out.up = d.bytes_to_upstream();
    out.down = d.bytes_from_upstream();
    out.to_client_count = d.bytes_to_client();
  }

  std::uint64_t relayed_up = 0, relayed_down = 0;
  bool bdat = false;
  for (const RecordedEvent& recorded : events) {
    const Event& e = *recorded;
    if (e.direction == Direction::client_to_upstream) relayed_up += e.wire_size;
    // Octets relayed but dropped unsent (an abandoned upstream) are taken off the count.
    if (is_unsent_note(e)) relayed_up -= e.wire_size;
    if (e.direction == Direction::upstream_to_client) relayed_down += e.wire_size;
    if (e.kind == EventKind::bdat_chunk) bdat = true;
  }
  if (relayed_up != out.up || relayed_down != out.down) std::abort();
  if (out.to_client_count != out.to_client.size()) std::abort();
  if (!bdat && has_bare_cr_or_lf(out.to_upstream)) std::abort();
  for (const Message& m : messages) {
    std::string body = body_from_events(m, events);
    if (body.size() > options.max_body_capture || body.size() > m.size) std::abort();
    if (!m.body_truncated && body.size() != m.size) std::abort();
    // What the recorder hashes (the recorded pieces, then what --max-body cut) un-stuffs to
    // exactly the octets the dialogue counted as the stored body.
    MessageBodyAssembler hashed(m.via_bdat);
    for (const RecordedEvent& e : events)
      if (is_body_of(*e, m)) hashed.append(e->bytes);
    for (const UnrecordedBody& b : unrecorded)
      if (b.transaction == m.transaction) hashed.append(b.wire);
    if (hashed.take().size() != m.size) std::abort();
    out.bodies.push_back(std::move(body));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const RunOutcome whole = drive(data, size, false);
  const RunOutcome split = drive(data, size, true);
  if (whole.to_upstream != split.to_upstream || whole.to_client != split.to_client ||
      whole.bodies != split.bodies || whole.finished != split.finished ||
      whole.abandon != split.abandon) {
    std::fprintf(stderr,
                 "read boundaries changed the outcome\nwhole up: %s\nsplit up: %s\n"
                 "whole client: %s\nsplit client: %s\nfinished %d/%d abandon %d/%d\n",
                 escaped(whole.to_upstream).c_str(), escaped(split.to_upstream).c_str(),
                 escaped(whole.to_client).c_str(), escaped(split.to_client).c_str(), whole.finished,
                 split.finished, whole.abandon, split.abandon);
    std::abort();
  }
  return 0;
}
