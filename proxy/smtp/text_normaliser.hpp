// Turns what a client typed into the canonical text mailtap sends upstream, so that mailtap and
// a strict RFC 5321 server parse the same bytes the same way:
//   - every line ending becomes CRLF: bare LF (nc without -C) and bare CR alike, so no bare CR
//     or bare LF ever reaches the upstream. Which ending the client used is reported
//     (last_line_end), because inside DATA only the client's own kind of line ending may end
//     the message (SMTP smuggling, CVE-2023-51764 class; the Dialogue decides);
//   - in command text, telnet IAC sequences are removed, never negotiated ("IAC IAC" is a
//     literal 0xFF), and telnet's "CR NUL" is a bare CR. A telnet sequence lies within one line
//     and never consumes a CR or LF: one that a line ending cuts short, and a subnegotiation
//     (mailtap agrees to no telnet option, so no client may subnegotiate one), make the line
//     refused (take_telnet_fault), since removing them could remove text up to the next line.
//     Message bodies are data: there 0xFF is an ordinary byte, and a NUL after a bare CR is
//     kept unless CR NUL is the client's own line ending (a telnet NVT: its DATA line ended so).
// It works byte by byte across reads, and never buffers a line: the caller frames lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace mailtap::smtp {

// How the client ended a line. Every kind is sent upstream as CRLF. cr_nul is telnet's "CR NUL"
// (read so only where TextRules::cr_nul says): a client whose DATA line ended so is a telnet NVT,
// and a bare CR without the NUL is not its own line ending, nor CR NUL a bare-CR client's.
// cr_crlf is a CRLF with one or more CRs right before it (see TextRules::cr_crlf): sent as one
// CRLF, but the line's text ended in a CR, so it is nobody's own line ending.
enum class LineEnd : std::uint8_t { none, crlf, lf, cr, cr_nul, cr_crlf };
std::string_view to_string(LineEnd e);  // "CRLF", "bare LF", "bare CR", "CR NUL", "CR CRLF"
std::string_view escaped(LineEnd e);    // "\\r\\n", "\\n", "\\r", "\\r\\0", "\\r\\r\\n"

struct RewriteCounts {
  std::uint64_t bare_lf = 0;         // LF not preceded by CR, sent as CRLF
  std::uint64_t bare_cr = 0;         // CR not followed by LF, sent as CRLF
  std::uint64_t cr_before_crlf = 0;  // CR right before a CRLF, removed (TextRules::cr_crlf)
  std::uint64_t telnet_iac = 0;      // telnet command sequences removed
  // The first few of them, named ("IAC DO 24, IAC NOP"), so that the record shows what went.
  std::string telnet_removed;
  // Leading dots doubled in a message body after a line ending that cannot end the message.
  std::uint64_t dots_doubled = 0;
  bool any() const { return bare_lf || bare_cr || cr_before_crlf || telnet_iac || dots_doubled; }
  RewriteCounts& operator+=(const RewriteCounts& o);
  // "bare LF normalised to CRLF (2x); telnet IAC sequence removed (1x: IAC NOP)". Without
  // `name_telnet` the removed sequences are counted only: on a secret's line (AUTH), an option
  // byte may be one of the secret's octets.
  std::string describe(bool name_telnet = true) const;
};

// Whether a rewrite note is one describe() wrote: mailtap changed octets of the client's text
// (line ends, telnet bytes, a leading dot), not a reply it filtered (the EHLO reply's STARTTLS)
// or a line it encoded for the client. audit lists only these as the client's rewrites.
bool is_client_text_rewrite_note(std::string_view note);

// How text is read: command lines follow telnet's rules; a message body is data.
struct TextRules {
  bool telnet_iac = true;  // 0xFF begins an IAC sequence
  bool cr_nul = true;      // "CR NUL" is one bare CR (the NUL is padding, not data)
  // CRs right before a CRLF belong to it: "A\r\r\n" is the line "A" (LineEnd::cr_crlf), not
  // "A" and an empty line. A CRLF written through a text-mode stream that adds a CR before every
  // LF arrives so; read as two lines, the empty one would end a message's header (what follows
  // moves into the body), where Postfix too reads one line (it strips CRs before an LF). Only for a
  // client whose own line ending is not the bare CR (whose "A\r\r\n" is two lines).
  bool cr_crlf = false;
  // Stop right after holding a CR, so that the caller may end the line there before the next
  // byte is read (see TextNormaliser::end_at_held_cr).
  bool stop_at_cr = false;
};
inline constexpr TextRules command_text{};

class TextNormaliser {
 public:
  // Consumes bytes of `raw`, appending canonical text to `out`. Stops right after writing a
  // CRLF (so the caller can decide how to read what follows) or when `raw` is exhausted.
  // Returns the number of raw bytes consumed. A CR (or 0xFF) at the end of `raw` is consumed and
  // held until the next byte shows whether it begins a CRLF (or an IAC sequence).
  std::size_t normalise(std::string_view raw, std::string& out, TextRules rules = command_text);

  // The ending the client gave the line whose CRLF normalise() wrote last.
  LineEnd last_line_end() const { return last_end_; }

  // Rewrites since the last take_rewrites().
  RewriteCounts take_rewrites();
  // Why the line whose CRLF normalise() wrote last must be refused (a telnet sequence mailtap
  // cannot remove safely, see above), or empty; cleared by the call. Its text is then not the
  // client's: only its end is.
  std::string_view take_telnet_fault() { return std::exchange(telnet_fault_, {}); }
  // mailtap's refusals of the telnet options the client asked for since the last call (IAC DO x
  // answered IAC WONT x, IAC WILL x answered IAC DONT x): telnet waits for an answer before it
  // echoes what is typed (character mode) or shows output again (after Ctrl-C's IAC DO TM).
  std::string take_telnet_answers() { return std::exchange(telnet_answers_, {}); }
  // Whether the line whose CRLF normalise() wrote last held a telnet interrupt (IAC IP, Ctrl-C;
  // IAC BRK, Ctrl-\ in telnet's line mode): the person meant to abort. Cleared by the call.
  bool take_telnet_interrupt() { return std::exchange(interrupted_, false); }
  // The client negotiated a telnet option (IAC WILL/WONT/DO/DONT x in a command line): it is
  // telnet, and reads mailtap's own negotiation (offer_echo) as such, not as text.
  bool telnet_negotiated() const { return negotiated_; }
  // mailtap sent IAC WILL ECHO (at a password prompt, so that telnet stops echoing what is
  // typed): the client's answer, IAC DO ECHO or IAC DONT ECHO, is removed like any telnet
  // sequence but not refused (a DO ECHO refused with WONT ECHO would turn telnet's echo back on).
  void offer_echo() { ++echo_offers_; }

  // True when no partial CR or IAC sequence is pending: safe to switch to raw (BDAT) bytes.
  bool idle() const { return state_ == State::text && held_crs_ == 0 && ended_cr_ == EndedCr::no; }

  // A single CR is held (input ran out right after it).
  bool cr_held() const { return held_crs_ == 1 && state_ == State::text; }
  // CRs held (the input ran out right after them), outside any telnet sequence.
  std::uint64_t crs_held() const { return state_ == State::text ? held_crs_ : 0; }
  // Ends the line at the first held CR now, writing its CRLF to `out`, for a client whose own
  // line ending a bare CR is, or may be (so the line ends there whatever comes next). Only when
  // crs_held(). What that CR was shows only with the next octet (settle_ended_cr): until then
  // it is not counted. `count`: then count it, if it was a bare CR (a command line's; a body's
  // end of data is never counted, see uncount_bare_cr).
  void end_at_held_cr(std::string& out, bool count = false);
  // A line end_at_held_cr() ended awaits the octet that shows what its CR was.
  bool ended_cr_pending() const { return ended_cr_ != EndedCr::no; }
  // Reads what follows that CR, under `rules`: an LF is the rest of a CRLF (more CRs first join
  // it where rules.cr_crlf does: a CR CRLF), a NUL makes it a CR NUL where rules.cr_nul says,
  // and anything else leaves it a bare CR (the CRs joined so far then each end an empty line).
  // last_line_end() then tells which. Returns the octets consumed; the CR stays pending when
  // all of `raw` were CRs it joined.
  std::size_t settle_ended_cr(std::string_view raw, TextRules rules);
  // The bare CR that ended the last line is taken off the count (one end_at_held_cr() ended
  // was never on it).
  void uncount_bare_cr();

 private:
  enum class State : std::uint8_t { text, iac_undecided, iac, iac_option };
  bool telnet_step(unsigned char c, std::string& out, std::size_t& i);
  void telnet_command(unsigned char c, std::string& out);
  void note_removed(std::string_view name, int option = -1);
  void refuse_option(unsigned char option);
  std::size_t end_held_cr(unsigned char c, std::string& out, TextRules rules);
  State state_ = State::text;
  unsigned char option_verb_ = 0;  // WILL/WONT/DO/DONT awaiting its option byte
  std::string_view telnet_fault_;
  std::string telnet_answers_;
  bool interrupted_ = false;       // see take_telnet_interrupt()
  bool negotiated_ = false;        // see telnet_negotiated()
  std::uint32_t echo_offers_ = 0;  // IAC WILL ECHO sent, not answered yet (offer_echo)
  std::uint64_t held_crs_ = 0;     // CRs read and not yet ended (more than one only with cr_crlf)
  // end_at_held_cr() ended a line: the next octet shows what its CR was.
  enum class EndedCr : std::uint8_t { no, uncounted, counted_if_bare };
  EndedCr ended_cr_ = EndedCr::no;
  std::uint64_t crs_after_ended_ = 0;  // CRs after it that may join a CRLF (TextRules::cr_crlf)
  LineEnd last_end_ = LineEnd::none;
  RewriteCounts rewrites_;
};

}  // namespace mailtap::smtp
