// A message body is recorded once: as the data / bdat_chunk events that relayed it (dot-stuffed
// DATA text as sent upstream, or BDAT chunk payloads), tagged with the transaction's ordinal.
// This turns those events back into the body the upstream stored.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/event.hpp"

namespace mailtap::smtp {

class MessageBodyAssembler {
 public:
  // via_bdat: the pieces are BDAT chunk payloads (concatenated as they are); otherwise they are
  // DATA text as sent (CRLF lines, leading dots doubled, ending with the ".\r\n" terminator).
  explicit MessageBodyAssembler(bool via_bdat) : via_bdat_(via_bdat) {}

  void append(std::string_view wire);
  // The body; a DATA body loses its terminator (absent when the record was cut at --max-body).
  std::string take();

 private:
  bool via_bdat_;
  bool line_start_ = true;
  bool lone_dot_line_ = false;   // the last complete line was "." alone: the terminator
  bool dot_removed_ = false;     // the current line began with a transparency dot
  std::size_t line_length_ = 0;  // octets of the current line kept, its ending included
  std::string body_;
};

// `e` carries a piece of the body of `message`.
bool is_body_of(const Event& e, const Message& message);

// The body of `message` from the events of its session (those that carry its ordinal).
std::string body_from_events(const Message& message, const std::vector<Event>& events);

}  // namespace mailtap::smtp
