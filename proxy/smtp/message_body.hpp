// A message body is recorded once: as the data / bdat_chunk events that relayed it (dot-stuffed
// DATA text as sent upstream, or BDAT chunk payloads), tagged with the transaction's ordinal.
// This turns those events back into the body the upstream stored.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/event.hpp"

namespace mailtap::smtp {

// Undoes RFC 5321 §4.5.2 transparency the way a server does, a piece of DATA text (as mailtap
// sent it) at a time: what the server stores goes to `emit(std::string_view)` in order, in as
// few spans as the dots allow. A line "." is held back until something follows it, and
// dropped by finish() if nothing does: it is the terminator (mailtap doubles any other).
class DataTextUnstuffer {
 public:
  template <typename Emit>
  void append(std::string_view wire, Emit&& emit);
  // The text ended here (the terminator, or the cut of --max-body).
  template <typename Emit>
  void finish(Emit&& emit);

 private:
  enum class State {
    line_start,
    in_line,
    after_dot,   // a transparency dot was removed: its line's first octets are held
    terminator,  // held_ is the ending of a line "."
  };
  // The first dot in [p, end) that begins a line, or nullptr; `p` itself begins none.
  static const char* line_start_dot(const char* p, const char* end);
  // after_dot / terminator: takes the octet at `p` into held_ (after_dot), and returns held_
  // once it is known to be text; "" while it may still be the terminator.
  std::string_view hold(const char*& p);

  State state_ = State::line_start;
  std::string held_;
};

template <typename Emit>
void DataTextUnstuffer::append(std::string_view wire, Emit&& emit) {
  const char* p = wire.data();
  const char* const end = p + wire.size();
  const char* span = p;  // kept octets from here to p, not yet emitted
  while (p != end) {
    if (state_ == State::in_line) {
      // Only a line that begins with a dot changes anything: look for dots, not for every line
      // end (base64 has none).
      const char* dot = line_start_dot(p, end);
      p = dot != nullptr ? dot : end;
      if (dot != nullptr || end[-1] == '\n') state_ = State::line_start;
    } else if (state_ == State::line_start) {
      state_ = *p == '.' ? State::after_dot : State::in_line;
      if (state_ == State::after_dot) {  // the server removes it
        if (p != span) emit(std::string_view(span, static_cast<std::size_t>(p - span)));
        span = ++p;
      }
    } else if (const std::string_view released = hold(p); !released.empty()) {
      emit(released);
      held_.clear();
      span = p;
    } else {
      span = p;
    }
  }
  if (p != span) emit(std::string_view(span, static_cast<std::size_t>(p - span)));
}

template <typename Emit>
void DataTextUnstuffer::finish(Emit&& emit) {
  if (state_ == State::after_dot && !held_.empty()) emit(std::string_view(held_));
  held_.clear();
  state_ = State::line_start;
}

// The whole body at once, for readers.
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
  DataTextUnstuffer unstuffer_;
  std::string body_;
};

// `e` carries a piece of the body of `message`.
bool is_body_of(const Event& e, const Message& message);

// The body of `message` from the events of its session (those that carry its ordinal).
std::string body_from_events(const Message& message, const std::vector<Event>& events);
std::string body_from_events(const Message& message, const std::vector<RecordedEvent>& events);

}  // namespace mailtap::smtp
