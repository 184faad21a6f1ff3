#include "proxy/smtp/message_body.hpp"

namespace mailtap::smtp {

const char* DataTextUnstuffer::line_start_dot(const char* p, const char* end) {
  for (const char* q = p; q != end;) {
    const auto* dot =
        static_cast<const char*>(std::memchr(q, '.', static_cast<std::size_t>(end - q)));
    if (dot == nullptr) return nullptr;
    if (dot != p && dot[-1] == '\n') return dot;
    q = dot + 1;
  }
  return nullptr;
}

std::string_view DataTextUnstuffer::hold(const char*& p) {
  if (state_ == State::terminator) {  // more text follows: the line "." was text after all
    state_ = State::line_start;
    return held_;
  }
  held_ += *p++;
  const bool line_ended = held_.back() == '\n';
  if (line_ended && held_.size() == 2) {
    state_ = State::terminator;
    return {};
  }
  if (!line_ended && held_.size() < 2) return {};
  state_ = line_ended ? State::line_start : State::in_line;
  return held_;
}

void MessageBodyAssembler::append(std::string_view wire) {
  if (via_bdat_) {
    body_.append(wire);
    return;
  }
  body_.reserve(body_.size() + wire.size());
  unstuffer_.append(wire, [this](std::string_view kept) { body_.append(kept); });
}

std::string MessageBodyAssembler::take() {
  if (!via_bdat_) unstuffer_.finish([this](std::string_view kept) { body_.append(kept); });
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

std::string body_from_events(const Message& message, const std::vector<RecordedEvent>& events) {
  MessageBodyAssembler body(message.via_bdat);
  for (const RecordedEvent& e : events) {
    if (is_body_of(*e, message)) body.append(e->bytes);
  }
  return body.take();
}

}  // namespace mailtap::smtp
