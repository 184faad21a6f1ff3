// Frames the client's bytes as a strict RFC 5321 server frames the bytes mailtap sends: command
// lines (normalised, see TextNormaliser), message body text, and BDAT chunks (counted octets,
// untouched). It keeps what the client sent until the Dialogue is ready to read it, and reads
// only as far as asked: the Dialogue decides, from the server's replies, what the next bytes are.
// Every result is the same however the bytes were split into reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proxy/smtp/command.hpp"
#include "proxy/smtp/text_normaliser.hpp"

namespace mailtap::smtp {

// One command line (or SASL response) as framed.
struct FramedLine {
  std::string text;             // canonical text with its CRLF; empty if it was discarded
  LineEnd end = LineEnd::none;  // how the client ended it
  std::size_t discarded = 0;    // octets not kept: the line was longer than the limit
  std::string discarded_verb;   // the verb read from the start of a discarded line
  bool has_nul = false;         // a NUL byte was in the part discarded
  bool distrusted = false;      // received before distrust_unread() (see there)
  // Non-empty: why the line must be refused, whatever it says (a telnet sequence that could not
  // be removed safely; see TextNormaliser). Its text is then not the client's.
  std::string_view telnet_fault;
  // Not none: the line held a line ending that is not one of the client's own (see
  // ClientFramer::own_line_end) and went on to the next one that is. A strict server reads
  // such octets as one line and refuses it; splitting it where a lenient one would makes a
  // second command of text the client sent inside a line (a sender address with a bare CR and
  // a RCPT after it). Refused whole: its text is then not the client's.
  LineEnd foreign_end = LineEnd::none;
  // The line held a telnet interrupt (TextNormaliser::take_telnet_interrupt): at a SASL prompt,
  // the person cancelling.
  bool telnet_interrupt = false;
  std::size_t size() const { return discarded + text.size(); }
};

class ClientFramer {
 public:
  // Lines longer than `max_kept_line` octets are framed but not kept (FramedLine::discarded).
  explicit ClientFramer(std::size_t max_kept_line) : max_kept_line_(max_kept_line) {}

  // Bytes received: copied.
  void feed(std::string_view bytes);
  // Bytes received, lent: with nothing unread they are read where they are, not copied. The
  // caller keeps them alive and unchanged until its compact(), which copies what is unread.
  void lend(std::string_view bytes);
  // Octets received and not read yet.
  std::size_t unread() const { return input_.size() - pos_; }
  // Those octets, not read: valid until the next feed(), lend() or compact().
  std::string_view peek_unread() const { return avail(); }
  // Nothing more of what was received will be read (after QUIT, or an injection).
  void skip_unread() { pos_ = input_.size(); }
  // Keeps what is unread and frees the octets already read; views returned before are invalid
  // afterwards.
  void compact();

  // ---- command lines
  // How the client ends its lines: CRLF, LF (either always ends a command line, as at every
  // server), or a bare CR or CR NUL (a terminal in raw mode, telnet), which ends one only for a
  // client whose first line, one a person types first (EHLO, HELO, NOOP, RSET, HELP, QUIT,
  // STARTTLS, AUTH, or Enter alone), ended so. For anyone else a bare CR or CR NUL is inside the
  // line, as a strict server reads it (FramedLine::foreign_end). None before the first line ends.
  LineEnd own_line_end() const { return own_end_; }
  // The next complete line, or nullopt when the bytes at hand do not complete one.
  // `commands`: false while the lines are SASL responses (a BDAT line is then only text).
  // At a CR that is, or may be, the client's own line ending (see ends_at_held_cr) the line
  // ends at once (FramedLine::end bare CR), before the next octet is read, however the octets
  // came: what that CR was shows with the next octet (settle_line_end).
  std::optional<FramedLine> next_line(bool commands = true);
  // Reads the octets that show what the CR at which the last line was ended was: an LF (the
  // rest of a CRLF, skipped), and for the client's first line a NUL (CR NUL, skipped) or more
  // CRs and then an LF (a CR CRLF); the first line's ending makes the client's own (see
  // own_line_end). False: the input ran out first. next_line() and normalise_body() call it.
  bool settle_line_end();
  // What settle_line_end() counted of that CR (a bare CR, CRs before a CRLF): rewrites of the
  // line before, taken apart from the next line's.
  RewriteCounts take_settled_rewrites() { return std::exchange(settled_rewrites_, {}); }
  // Octets of the line begun but not complete (held CRs included).
  std::size_t partial_line() const {
    return discarded_ + line_.size() + static_cast<std::size_t>(normaliser_.crs_held());
  }
  // The line begun holds a CR (bare or CR NUL) that is not the client's own line ending, so it
  // goes on to the next one that is: which, and its octet in the line (from 1, as mailtap
  // reads it); none if not. A CR the input ran out right after counts as a bare CR.
  struct ForeignEnd {
    LineEnd end = LineEnd::none;
    std::size_t octet = 0;
  };
  ForeignEnd foreign_end_in_partial_line() const;
  void drop_partial_line();
  // The bytes received so far (the line begun included) were sent before the client could
  // know how an AUTH exchange ended: each line they are part of is marked distrusted.
  void distrust_unread();
  // The telnet option refusals owed to the client (TextNormaliser::take_telnet_answers).
  std::string take_telnet_answers() { return normaliser_.take_telnet_answers(); }
  // The client negotiated a telnet option: it is telnet (TextNormaliser::telnet_negotiated).
  bool telnet_negotiated() const { return normaliser_.telnet_negotiated(); }
  // mailtap sent IAC WILL ECHO: the client's answer is not refused (TextNormaliser::offer_echo).
  void offer_echo() { normaliser_.offer_echo(); }
  // Rewrites the normaliser made since they were last taken.
  RewriteCounts take_rewrites() { return normaliser_.take_rewrites(); }

  // ---- message bodies (DATA)
  // At the start of a body line: the longest run of whole CRLF lines that leave nothing to
  // decide (no leading dot, no bare CR or LF, none longer than RFC 5321 allows unless
  // `long_lines_ok`), consumed. Empty if there is none, or the normaliser holds a partial
  // CR. The view is valid until the next feed() or compact().
  std::string_view take_plain_lines(bool long_lines_ok);
  // Normalises body bytes (0xFF is data) into `segment`, up to and including the next CRLF.
  // `own_end`: how the DATA line ended. CR NUL is a line ending only where it is the client's
  // own (otherwise a NUL after a bare CR is data), and CRs right before a CRLF belong to it
  // except where a bare CR is (see TextRules). Returns the octets consumed.
  std::size_t normalise_body(std::string& segment, LineEnd own_end);
  // The input ran out right after a CR: for a client whose own line ending a bare CR is, the
  // line has ended whatever comes next (CRLF or a bare CR), and a line "." ends the message.
  bool cr_held() const { return normaliser_.cr_held(); }
  // Ends the body line at that CR now, writing its CRLF to `segment`; an LF that comes next
  // is the rest of the line ending and is skipped.
  void end_line_at_held_cr(std::string& segment) { normaliser_.end_at_held_cr(segment); }
  // The bare CR last counted is not (see TextNormaliser::uncount_bare_cr).
  void uncount_bare_cr() { normaliser_.uncount_bare_cr(); }
  // The ending the client gave the line whose CRLF was written last.
  LineEnd last_line_end() const { return normaliser_.last_line_end(); }

  // ---- BDAT chunks
  // Up to `most` octets of a chunk, as they are; valid until the next feed() or compact().
  std::string_view take_chunk(std::uint64_t most);

 private:
  std::size_t max_kept_line_;
  TextNormaliser normaliser_;
  std::string backlog_;     // received and kept
  std::string_view input_;  // received, read up to pos_: backlog_, or the caller's bytes
  bool borrowed_ = false;   // input_ is the caller's bytes, fed last
  std::size_t pos_ = 0;
  std::string_view avail() const { return input_.substr(pos_); }
  void keep_unread();           // copies the unread part of borrowed input into backlog_
  void advance(std::size_t n);  // n octets read into the line (distrust counted)
  bool ends_at_held_cr(bool commands) const;
  bool ends_own_line(LineEnd end);     // see own_line_end()
  Verb line_verb() const;              // of the line begun, read from its start
  bool line_ends_here(bool commands);  // at the line ending the normaliser wrote last
  void discard_if_over_long();
  FramedLine take_line();       // the line framed, and the next begun
  std::string line_;            // the line being framed (canonical text)
  std::size_t discarded_ = 0;   // octets of an over-long line thrown away so far
  std::string discarded_verb_;  // verb of that line, read from its start
  bool line_has_nul_ = false;   // a NUL was among them
  LineEnd own_end_ = LineEnd::none;
  LineEnd line_foreign_end_ = LineEnd::none;  // the first foreign ending in the line begun
  std::size_t line_foreign_octet_ = 0;        // its octet in the line, from 1
  RewriteCounts settled_rewrites_;
  std::size_t distrusted_octets_ = 0;  // of the backlog, received before distrust_unread()
  bool line_distrusted_ = false;
};

}  // namespace mailtap::smtp
