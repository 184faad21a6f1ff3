#include "storage/session_events.hpp"

#include <limits>
#include <memory>
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

LeftInRecord left_in_record(Reader& reader, const SessionDetail& d, std::mutex* lock) {
  const std::int64_t id = d.session.id;
  const SessionEventsLeft events = d.events_left.value_or(SessionEventsLeft{});
  const SessionMessagesLeft messages = d.messages_left.value_or(SessionMessagesLeft{});
  const auto locked = [lock] {
    return lock != nullptr ? std::unique_lock(*lock) : std::unique_lock<std::mutex>();
  };
  // Where the last message's body ended; a body may be read twice in a row (its UTF-8 checked
  // before it is written), and one StoredBodyReader read twice (its size, then its octets) asks
  // for the batches after its first again, from the first's end: the budget then is the one
  // the first batch left, not the one the first read ended with.
  struct Cursor {
    std::uint64_t message_seq = 0;
    std::uint64_t from = 0;   // the message's body is past this event
    std::uint64_t end = 0;    // and ends here
    InlineBodyBudget budget;  // of the reading of the body under way
    std::uint64_t first_batch_end = 0;
    InlineBodyBudget after_first_batch;
  };
  auto cursor = std::make_shared<Cursor>();
  LeftInRecord left;
  left.events = [&reader, id, events, locked](std::uint64_t after_seq, std::vector<EventRow>& out,
                                              InlineBodyBudget& budget, std::string& error) {
    const auto held = locked();  // a batch at a time: other requests are answered between
    return reader.session_events(id, events, after_seq, kSessionEventBatch, out, error, &budget);
  };
  left.messages = [&reader, id, messages, locked](
                      std::uint64_t after_seq, std::vector<MessageRow>& out, std::string& error) {
    const auto held = locked();
    return reader.session_messages(id, messages, after_seq, kSessionMessageBatch, out, error);
  };
  // A batch at a time (`after_piece`: the last piece of the batch before, 0 for the first).
  left.body_pieces = [&reader, id, started_at = events.started_at, cursor, locked](
                         const MessageRow& m, std::uint64_t after_piece,
                         std::vector<StoredBodyPiece>& out, std::string& error) {
    if (m.seq != cursor->message_seq) cursor->from = m.seq > cursor->message_seq ? cursor->end : 0;
    cursor->message_seq = m.seq;
    const std::uint64_t after = after_piece != 0 ? after_piece : cursor->from;
    if (after_piece == 0)
      cursor->budget = {};
    else if (after_piece == cursor->first_batch_end)  // a read begins past the first batch
      cursor->budget = cursor->after_first_batch;
    const std::size_t had = out.size();
    const auto held = locked();
    if (!reader.message_body_pieces(id, started_at, m, after, kBodyPieceBatch, cursor->budget, out,
                                    error))
      return false;
    cursor->end = out.size() > had ? out.back().seq : after;
    if (after_piece == 0) {
      cursor->first_batch_end = cursor->end;
      cursor->after_first_batch = cursor->budget;
    }
    return true;
  };
  return left;
}

}  // namespace mailtap::storage
