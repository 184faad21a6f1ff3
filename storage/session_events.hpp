// Every event of a session loaded with Reader::EventRows::bodies_only, in seq order: the body
// events it holds merged with the others, read from the record a batch at a time as they are
// handed on. A session's commands, replies and notes are as many as its client chose to send, so
// a writer of the whole session (mailtap web's) holds one batch of them, never all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "storage/reader.hpp"

namespace mailtap::storage {

// Events read in one batch: a few hundred rows of a few hundred octets each, usually.
inline constexpr std::size_t kSessionEventBatch = 256;

// Reader::session_events for the session, its events past `after_seq`, kSessionEventBatch at
// most, under whatever serialises the Reader's callers.
using EventBatchReader =
    std::function<bool(std::uint64_t after_seq, std::vector<EventRow>& out, std::string& error)>;

// Hands `fn` every event of `d` in seq order: those it holds, and those it left in the record
// (SessionDetail::events_left), which `read` reads a batch at a time, no batch kept past its
// events. `read` may be empty when `d` holds them all. `fn` returns false to stop: true. False
// with `error` set if a batch could not be read, or the record no longer holds every event the
// session had when it was loaded (prune removed it meanwhile): after handing on those before.
bool for_each_session_event(const SessionDetail& d, const EventBatchReader& read,
                            const std::function<bool(const EventRow&)>& fn, std::string& error);

}  // namespace mailtap::storage
