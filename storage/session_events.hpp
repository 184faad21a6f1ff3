// Every event of a session loaded with Reader::EventRows::bodies_only or none, in seq order: those
// it holds merged with the others, read from the record a batch at a time as they are handed on;
// and with EventRows::none its messages the same way. A session's commands, replies, notes and
// messages are as many as its client chose to send, so a writer of the whole session (mailtap
// web's) holds one batch of them, never all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "storage/reader.hpp"
#include "storage/stored_body.hpp"

namespace mailtap::storage {

// Events read in one batch: a few hundred rows of a few hundred octets each, usually.
inline constexpr std::size_t kSessionEventBatch = 256;

// Messages read in one batch: each keeps a bounded share of its RCPTs (recording.md, "Messages")
// and at most kInlineBodyOctets of its body.
inline constexpr std::size_t kSessionMessageBatch = 16;

// Reader::session_events for the session, its events past `after_seq`, kSessionEventBatch at
// most, with `budget` (one per reading of them all), under whatever serialises the Reader's
// callers.
using EventBatchReader = std::function<bool(std::uint64_t after_seq, std::vector<EventRow>& out,
                                            InlineBodyBudget& budget, std::string& error)>;

// Reader::session_messages for the session, its messages past `after_seq`, kSessionMessageBatch
// at most, as above.
using MessageBatchReader =
    std::function<bool(std::uint64_t after_seq, std::vector<MessageRow>& out, std::string& error)>;

// Hands `fn` every event of `d` in seq order: those it holds, and those it left in the record
// (SessionDetail::events_left), which `read` reads a batch at a time, no batch kept past its
// events. `read` may be empty when `d` holds them all. `fn` returns false to stop: true. False
// with `error` set if a batch could not be read, or the record no longer holds every event the
// session had when it was loaded (prune removed it meanwhile): after handing on those before.
bool for_each_session_event(const SessionDetail& d, const EventBatchReader& read,
                            const std::function<bool(const EventRow&)>& fn, std::string& error);

// The same for the messages of `d`: those it holds, or those it left in the record
// (SessionDetail::messages_left), which `read` reads a batch at a time.
bool for_each_session_message(const SessionDetail& d, const MessageBatchReader& read,
                              const std::function<bool(const MessageRow&)>& fn, std::string& error);

// What reads back, on `reader`, what `d` (loaded with Reader::EventRows::none) left in the
// record: its events and messages a batch at a time, a message's body pieces (each body found
// past the one before: messages are written in order, and again from the first for a second
// writing). Each read holds `lock` if given (a Reader shared by several threads). `reader`
// must outlive them.
struct LeftInRecord {
  EventBatchReader events;
  MessageBatchReader messages;
  SessionOctets::BodyPieces body_pieces;
};
LeftInRecord left_in_record(Reader& reader, const SessionDetail& d, std::mutex* lock = nullptr);

}  // namespace mailtap::storage
