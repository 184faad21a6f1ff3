// Turns what a client typed into the canonical text mailtap sends upstream, so that mailtap and
// a strict RFC 5321 server parse the same bytes the same way:
//   - every line ending becomes CRLF: bare LF (nc without -C) and bare CR alike, so no bare CR
//     or bare LF ever reaches the upstream and "\n.\n" / "\r.\r" cannot end DATA differently
//     for mailtap and the server (SMTP smuggling, CVE-2023-51764 class);
//   - telnet IAC sequences are removed, never negotiated ("IAC IAC" is a literal 0xFF), and
//     telnet's "CR NUL" is a bare CR.
// It works byte by byte across reads, and never buffers a line: the caller frames lines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailtap::smtp {

struct RewriteCounts {
  std::uint64_t bare_lf = 0;     // LF not preceded by CR, sent as CRLF
  std::uint64_t bare_cr = 0;     // CR not followed by LF, sent as CRLF
  std::uint64_t telnet_iac = 0;  // telnet command sequences removed
  bool any() const { return bare_lf || bare_cr || telnet_iac; }
  std::string describe() const;  // "bare LF normalised to CRLF (2x); ..."
};

class TextNormaliser {
 public:
  // Consumes bytes of `raw`, appending canonical text to `out`. Stops right after writing a
  // CRLF (so the caller can decide how to read what follows) or when `raw` is exhausted.
  // Returns the number of raw bytes consumed. A CR (or 0xFF) at the end of `raw` is consumed and
  // held until the next byte shows whether it begins a CRLF (or an IAC sequence).
  std::size_t normalise(std::string_view raw, std::string& out);

  // Rewrites since the last take_rewrites().
  RewriteCounts take_rewrites();
  // True when no partial CR or IAC sequence is pending: safe to switch to raw (BDAT) bytes.
  bool idle() const { return state_ == State::text && !pending_cr_; }

 private:
  enum class State : std::uint8_t { text, iac_undecided, iac, iac_option, subneg, subneg_iac };
  State state_ = State::text;
  bool pending_cr_ = false;
  RewriteCounts rewrites_;
};

}  // namespace mailtap::smtp
