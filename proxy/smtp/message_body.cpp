#include "proxy/smtp/message_body.hpp"

#include <cstring>

namespace mailtap::smtp {

// Undoes RFC 5321 §4.5.2 transparency the way a server does: at the start of a line a dot is
// removed. mailtap only ever sends CRLF line endings in DATA text, so lines end at "\r\n".
void MessageBodyAssembler::append(std::string_view wire) {
  if (via_bdat_) {
    body_.append(wire);
    return;
  }
  body_.reserve(body_.size() + wire.size());
  while (!wire.empty()) {
    if (line_start_) {
      line_start_ = false;
      lone_dot_line_ = false;
      line_length_ = 0;
      dot_removed_ = wire.front() == '.';
      if (dot_removed_) {
        wire.remove_prefix(1);
        continue;
      }
    }
    const void* lf = std::memchr(wire.data(), '\n', wire.size());
    const std::size_t take =
        lf == nullptr ? wire.size() : static_cast<const char*>(lf) - wire.data() + 1;
    body_.append(wire.substr(0, take));
    line_length_ += take;
    if (lf != nullptr) {
      line_start_ = true;
      // "." CRLF: the dot was removed, the line holds only its ending.
      lone_dot_line_ = dot_removed_ && line_length_ == 2;
    }
    wire.remove_prefix(take);
  }
}

std::string MessageBodyAssembler::take() {
  if (!via_bdat_ && lone_dot_line_ && line_start_) body_.resize(body_.size() - 2);
  lone_dot_line_ = false;
  return std::move(body_);
}

bool is_body_of(const Event& e, const Message& message) {
  return message.transaction != 0 && e.transaction == message.transaction &&
         (e.kind == EventKind::data || e.kind == EventKind::bdat_chunk);
}

std::string body_from_events(const Message& message, const std::vector<Event>& events) {
  MessageBodyAssembler body(message.via_bdat);
  for (const Event& e : events) {
    if (is_body_of(e, message)) body.append(e.bytes);
  }
  return body.take();
}

}  // namespace mailtap::smtp
