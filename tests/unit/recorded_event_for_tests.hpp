// Tests build recorded rows by hand; production code cannot (smtp::RecordedEvent is made only
// by the dialogue and mailtap_event()). This is the one door, for tests/unit only.
#pragma once

#include <utility>
#include <vector>

#include "proxy/smtp/event.hpp"

namespace mailtap::smtp {

struct RecordedEventForTests {
  static RecordedEvent make(Event e) { return RecordedEvent(std::move(e)); }
  static Event& edit(RecordedEvent& r) { return r.event_; }
};

}  // namespace mailtap::smtp

namespace mailtap::test_support {

inline smtp::RecordedEvent recorded(smtp::Event e = {}) {
  return smtp::RecordedEventForTests::make(std::move(e));
}

inline smtp::Event& edit(smtp::RecordedEvent& r) {
  return smtp::RecordedEventForTests::edit(r);
}

inline std::vector<smtp::Event> plain_events(const std::vector<smtp::RecordedEvent>& in) {
  std::vector<smtp::Event> out;
  out.reserve(in.size());
  for (const auto& e : in) out.push_back(*e);
  return out;
}

}  // namespace mailtap::test_support
