// Turns what a client typed into the canonical text mailtap sends upstream, so that mailtap and
// a strict RFC 5321 server parse the same bytes the same way:
//   - every line ending becomes CRLF: bare LF (nc without -C) and bare CR alike, so no bare CR
//     or bare LF ever reaches the upstream. Which ending the client used is reported
//     (last_line_end), because inside DATA only the client's own kind of line ending may end
//     the message (SMTP smuggling, CVE-2023-51764 class; the Dialogue decides);
//   - in command text, telnet IAC sequences are removed, never negotiated ("IAC IAC" is a
//     literal 0xFF), and telnet's "CR NUL" is a bare CR. Message bodies are data: there 0xFF is
//     an ordinary byte, and a NUL after a bare CR is kept unless CR NUL is the client's own line
//     ending (a telnet NVT: its DATA line ended that way).
// It works byte by byte across reads, and never buffers a line: the caller frames lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailtap::smtp {

// How the client ended a line. Every kind is sent upstream as CRLF.
enum class LineEnd : std::uint8_t { none, crlf, lf, cr };
std::string_view to_string(LineEnd e);  // "CRLF", "bare LF", "bare CR"
std::string_view escaped(LineEnd e);    // "\\r\\n", "\\n", "\\r" (as typed in a shape)

struct RewriteCounts {
  std::uint64_t bare_lf = 0;     // LF not preceded by CR, sent as CRLF
  std::uint64_t bare_cr = 0;     // CR not followed by LF, sent as CRLF
  std::uint64_t telnet_iac = 0;  // telnet command sequences removed
  // Leading dots doubled in a message body after a line ending that cannot end the message.
  std::uint64_t dots_doubled = 0;
  bool any() const { return bare_lf || bare_cr || telnet_iac || dots_doubled; }
  RewriteCounts& operator+=(const RewriteCounts& o);
  std::string describe() const;  // "bare LF normalised to CRLF (2x); ..."
};

// Whether a rewrite note is one describe() wrote: mailtap changed octets of the client's text
// (line ends, telnet bytes, a leading dot), not a reply it filtered (the EHLO reply's STARTTLS)
// or a line it encoded for the client. audit lists only these as the client's rewrites.
bool is_client_text_rewrite_note(std::string_view note);

// How text is read: command lines follow telnet's rules; a message body is data.
struct TextRules {
  bool telnet_iac = true;  // 0xFF begins an IAC sequence
  bool cr_nul = true;      // "CR NUL" is one bare CR (the NUL is padding, not data)
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
  // True when no partial CR or IAC sequence is pending: safe to switch to raw (BDAT) bytes.
  bool idle() const { return state_ == State::text && !pending_cr_; }

 private:
  enum class State : std::uint8_t { text, iac_undecided, iac, iac_option, subneg, subneg_iac };
  bool telnet_step(unsigned char c, std::string& out, std::size_t& i);
  std::size_t end_held_cr(unsigned char c, std::string& out, bool cr_nul);
  State state_ = State::text;
  bool pending_cr_ = false;
  LineEnd last_end_ = LineEnd::none;
  RewriteCounts rewrites_;
};

}  // namespace mailtap::smtp
