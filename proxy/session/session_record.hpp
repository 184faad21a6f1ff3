// The record of one session on its way to the recorder, for every owner of a recorded
// Dialogue (the proxy's sessions, `mailtap replay`): the opening and TLS records, then the
// dialogue's events and messages numbered in order, and the closing record last, with the
// outcome its ending maps to. Without a recorder (--no-record) nothing is written, and the
// numbering still runs.
#pragma once

#include <asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/smtp/dialogue.hpp"
#include "storage/recorder.hpp"
#include "storage/records.hpp"

namespace mailtap {

class SessionRecord {
 public:
  SessionRecord(storage::Recorder* recorder, storage::SessionKey key)
      : recorder_(recorder),
        key_(key),
        recorded_id_(std::make_shared<std::atomic<std::int64_t>>(0)) {}

  storage::SessionKey key() const { return key_; }
  // The database id of the session's row, once the storage thread wrote it (certain after a
  // flush() that waited for its commit); 0 before, and without a recorder. The key, unless
  // another process recording into the same file took that id first.
  std::int64_t recorded_id() const { return recorded_id_->load(std::memory_order_acquire); }
  std::uint64_t messages_taken() const { return message_seq_; }

  // Queues a record of the session itself (SessionOpened, SessionTls), in order. The
  // SessionOpened starts the steady clock the closing record's duration is read from.
  void add(storage::Record record);
  // Numbers `events` and `messages`, queues them with `unrecorded_bodies` (after the events,
  // before the messages) and clears all three.
  void take(std::vector<smtp::RecordedEvent>& events,
            std::vector<smtp::UnrecordedBody>& unrecorded_bodies,
            std::vector<smtp::Message>& messages);
  // Queues who the session authenticated as, once, as soon as `dialogue` says AUTH succeeded,
  // so that a running session shows its user.
  void note_authentication(const smtp::Dialogue& dialogue);
  // Queues the closing record; the next flush() writes it after everything taken before it.
  // `dialogue` (if the relay started) gives the byte counts, who authenticated, and the
  // messages whose end the server got without answering it (recorded with no final reply,
  // before the closing record).
  void close(storage::Outcome outcome, std::string reason, const smtp::Dialogue* dialogue,
             std::string client_tls_version = {});
  bool close_pending() const { return closed_.has_value(); }
  // Queues what became known once the closing record was committed (storage::SessionAfterEnd):
  // `note` after the session's events, and `outcome` (with `reason`) in place of a `quit`.
  // Nothing without the session's database id (no recorder, or the row was never written).
  void after_end(smtp::RecordedEvent note, std::optional<storage::Outcome> outcome = std::nullopt,
                 std::string reason = {});

  // Hands everything queued to the recorder as one batch; waits as Recorder::submit does
  // (until committed when the batch holds a message or the close).
  asio::awaitable<void> flush();
  // flush() without the wait for the commit: returns once the batch is queued, in order, and
  // the commit is then the returned Queued's to await (Recorder::queue).
  asio::awaitable<storage::Recorder::Queued> queue();

 private:
  storage::Recorder* recorder_;
  storage::SessionKey key_;
  storage::RecordedId recorded_id_;
  std::vector<storage::Record> pending_;
  std::optional<storage::SessionClosed> closed_;
  // When the opening record was added, by the steady clock, which no clock step moves: the
  // session's length in the closing record is measured from it.
  std::optional<std::chrono::steady_clock::time_point> opened_steady_;
  std::vector<smtp::Message> unanswered_;  // see close()
  std::uint64_t event_seq_ = 0;
  std::uint64_t message_seq_ = 0;
  bool authentication_noted_ = false;
};

// Opens the database at `path` for recording sessions (`created_by`: "mailtap 0.1.0"); nullptr
// with `error` set if it cannot be written. A failure later is logged when it happens.
std::unique_ptr<storage::Recorder> open_recorder(const std::string& path, std::string created_by,
                                                 std::string& error);
// Stops `recorder` once its sessions are done, after everything they submitted is committed;
// false, and logged, if recording failed at any point.
bool stop_recorder(storage::Recorder& recorder);

}  // namespace mailtap
