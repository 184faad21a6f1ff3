// Finds telnet's "IAC DO TIMING-MARK" (octets 0xFF 0xFD 0x06) in a DATA body, however the body
// was split into pieces. Line-mode telnet sends it after Ctrl-C (IAC IP IAC DO TM), and then
// shows the person nothing the server sends until the DO TM is answered (RFC 860): typed in a
// message, it would hide the 250 and everything after it. The body itself is data and goes on
// unchanged (0xFF is an ordinary octet there); the Dialogue only answers the DO TM (IAC WONT TM).
//   - "IAC IAC" is telnet's escaped 0xFF: "0xFF 0xFF 0xFD 0x06" is data 0xFF, then "0xFD 0x06";
//   - other option requests (DO x, WILL x) in a body are left unanswered: telnet sends those only
//     when it negotiates (at connect, on "mode character"), which it does not do mid-line, so in
//     a body they are some other client's 8-bit data, and an answer would be noise to it.
// Not for BDAT chunks: binary by definition, and sent by programs, not by telnet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mailtap::smtp {

class TimingMarkScanner {
 public:
  // The IAC DO TMs that end in `bytes`, one begun at the end of the previous piece included.
  // Only 0xFF is looked for (memchr): a body without it costs one pass.
  std::size_t scan(std::string_view bytes);
  // A new body begins: nothing carries over from the last one.
  void reset() { matched_ = 0; }

 private:
  // Octets of "0xFF 0xFD 0x06" matched at the end of what was scanned (0..2); 1 is a lone 0xFF,
  // which an 0xFF next escapes (IAC IAC) rather than continues.
  std::uint8_t matched_ = 0;
};

}  // namespace mailtap::smtp
