#include "storage/session_events.hpp"

#include <limits>
#include <string_view>

namespace mailtap::storage {

namespace {

// Hands `fn` the events `held` has with a seq before `before`, from `next` on; false once `fn`
// asked to stop.
bool hand_on_held(const std::vector<EventRow>& held, std::size_t& next, std::uint64_t before,
                  const std::function<bool(const EventRow&)>& fn) {
  for (; next < held.size() && held[next].seq < before; ++next)
    if (!fn(held[next])) return false;
  return true;
}

std::string removed_meanwhile(const SessionDetail& d, std::int64_t read, std::int64_t expected,
                              std::string_view what) {
  return "session " + std::to_string(d.session.id) + " lost " +
         (what == "messages" ? "messages" : "events") + " while it was being read (" +
         std::to_string(read) + " of its " + std::to_string(expected) + " " + std::string(what) +
         " were still there; mailtap prune?)";
}

}  // namespace

bool for_each_session_event(const SessionDetail& d, const EventBatchReader& read,
                            const std::function<bool(const EventRow&)>& fn, std::string& error) {
  error.clear();
  std::size_t held = 0;  // of d.events, the next to hand on
  constexpr std::uint64_t kPastAll = std::numeric_limits<std::uint64_t>::max();
  if (!d.events_left) {
    hand_on_held(d.events, held, kPastAll, fn);
    return true;
  }
  const SessionEventsLeft& left = *d.events_left;
  std::int64_t read_so_far = 0;
  std::uint64_t after = 0;
  std::vector<EventRow> batch;
  InlineBodyBudget budget;
  while (read_so_far < left.count) {
    batch.clear();
    if (!read(after, batch, budget, error)) return false;
    if (batch.empty()) {
      error = removed_meanwhile(d, read_so_far, left.count,
                                left.bodies ? "events" : "commands, replies and notes");
      return false;
    }
    for (const EventRow& row : batch) {
      if (!hand_on_held(d.events, held, row.seq, fn) || !fn(row)) return true;
    }
    read_so_far += static_cast<std::int64_t>(batch.size());
    after = batch.back().seq;
  }
  hand_on_held(d.events, held, kPastAll, fn);
  return true;
}

bool for_each_session_message(const SessionDetail& d, const MessageBatchReader& read,
                              const std::function<bool(const MessageRow&)>& fn,
                              std::string& error) {
  error.clear();
  if (!d.messages_left) {
    for (const MessageRow& m : d.messages)
      if (!fn(m)) return true;
    return true;
  }
  const SessionMessagesLeft& left = *d.messages_left;
  std::int64_t read_so_far = 0;
  std::uint64_t after = 0;
  std::vector<MessageRow> batch;
  while (read_so_far < left.count) {
    batch.clear();
    if (!read(after, batch, error)) return false;
    if (batch.empty()) {
      error = removed_meanwhile(d, read_so_far, left.count, "messages");
      return false;
    }
    for (const MessageRow& m : batch)
      if (!fn(m)) return true;
    read_so_far += static_cast<std::int64_t>(batch.size());
    after = batch.back().seq;
  }
  return true;
}

}  // namespace mailtap::storage
