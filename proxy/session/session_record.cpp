#include "proxy/session/session_record.hpp"

#include "proxy/common/log.hpp"
#include "storage/recorder.hpp"

namespace mailtap {

void SessionRecord::add(storage::Record record) {
  if (auto* opened = std::get_if<storage::SessionOpened>(&record)) {
    opened->recorded_id = recorded_id_;
    opened_steady_ = std::chrono::steady_clock::now();
  }
  pending_.push_back(std::move(record));
}

void SessionRecord::take(std::vector<smtp::RecordedEvent>& events,
                         std::vector<smtp::UnrecordedBody>& unrecorded_bodies,
                         std::vector<smtp::Message>& messages) {
  for (smtp::RecordedEvent& e : events)
    pending_.push_back(storage::SessionEvent{key_, ++event_seq_, std::move(e)});
  events.clear();
  // After the events: a body's recorded octets come before the ones past --max-body.
  for (smtp::UnrecordedBody& b : unrecorded_bodies)
    pending_.push_back(storage::SessionBodyTail{key_, std::move(b)});
  unrecorded_bodies.clear();
  for (smtp::Message& m : messages)
    pending_.push_back(storage::SessionMessage{key_, ++message_seq_, std::move(m)});
  messages.clear();
}

void SessionRecord::note_authentication(const smtp::Dialogue& dialogue) {
  if (authentication_noted_) return;
  std::string mechanism = dialogue.auth_mechanism();
  if (mechanism.empty()) return;
  authentication_noted_ = true;
  pending_.push_back(storage::SessionAuthenticated{key_, dialogue.auth_user(), std::move(mechanism),
                                                   dialogue.authenticated_by_mailtap()});
}

void SessionRecord::close(storage::Outcome outcome, std::string reason,
                          const smtp::Dialogue* dialogue, std::string client_tls_version) {
  storage::SessionClosed c;
  c.key = key_;
  c.ended = storage::Clock::now();
  if (opened_steady_) {
    c.duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - *opened_steady_);
  }
  c.outcome = outcome;
  c.reason = std::move(reason);
  if (dialogue != nullptr) {
    c.bytes_client_to_upstream = dialogue->bytes_to_upstream();
    c.bytes_upstream_to_client = dialogue->bytes_from_upstream();
    c.auth_user = dialogue->auth_user();
    c.auth_mechanism = dialogue->auth_mechanism();
    c.auth_by_mailtap = dialogue->authenticated_by_mailtap();
    unanswered_ = dialogue->unanswered_messages();
  }
  c.client_tls_version = std::move(client_tls_version);
  closed_ = std::move(c);
}

void SessionRecord::after_end(smtp::RecordedEvent note, std::optional<storage::Outcome> outcome,
                              std::string reason) {
  const std::int64_t id = recorded_id();
  if (id == 0) return;
  pending_.push_back(
      storage::SessionAfterEnd{id, ++event_seq_, std::move(note), outcome, std::move(reason)});
}

asio::awaitable<void> SessionRecord::flush() {
  storage::Recorder::Queued queued = co_await queue();
  co_await queued.committed();
}

asio::awaitable<storage::Recorder::Queued> SessionRecord::queue() {
  if (closed_) {
    // After every event taken: their body events are what the recorder hashes them from.
    for (smtp::Message& m : unanswered_)
      pending_.push_back(storage::SessionMessage{key_, ++message_seq_, std::move(m)});
    unanswered_.clear();
    pending_.push_back(std::move(*closed_));
    closed_.reset();
  }
  if (pending_.empty() || recorder_ == nullptr) {
    pending_.clear();
    co_return storage::Recorder::Queued{};
  }
  std::vector<storage::Record> batch = std::move(pending_);
  pending_.clear();
  co_return co_await recorder_->queue(std::move(batch));
}

std::unique_ptr<storage::Recorder> open_recorder(const std::string& path, std::string created_by,
                                                 std::string& error) {
  storage::RecorderOptions options;
  options.path = path;
  options.created_by = std::move(created_by);
  options.on_failure = [](const std::string& reason) { log::error("recording failed: " + reason); };
  return storage::Recorder::open(options, error);
}

bool stop_recorder(storage::Recorder& recorder) {
  recorder.stop();
  if (!recorder.failed()) return true;
  log::error("recording failed during the run: " + recorder.failure_reason());
  return false;
}

}  // namespace mailtap
