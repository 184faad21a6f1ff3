#include "storage/recorder.hpp"

#include <malloc.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include <algorithm>
#include <asio/associated_executor.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "proxy/common/duration.hpp"
#include "proxy/common/hex.hpp"
#include "proxy/common/log.hpp"
#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/directory_access.hpp"
#include "storage/message_digests.hpp"
#include "storage/schema.hpp"
#include "storage/session_writer.hpp"
#include "storage/threads.hpp"
#include "storage/timestamp.hpp"

namespace mailtap::storage {

namespace {

// One-shot, thread-safe "your batch is committed" signal from the storage thread to a producer.
// Deliberately not an asio I/O object (a channel, a timer): those must be destroyed while their
// execution context lives, and whichever side drops the last reference here may do so after
// the other side's io_context is gone.
class CommitAck {
 public:
  template <typename Token>
  auto async_wait(Token&& token) {
    return asio::async_initiate<Token, void()>(
        [this](auto handler) {
          auto waiter = std::make_unique<Waiter<decltype(handler)>>(std::move(handler));
          std::unique_lock lk(mutex_);
          if (!fired_) {
            waiter_ = std::move(waiter);
            return;
          }
          lk.unlock();
          waiter->complete();
        },
        token);
  }

  // Storage thread. Posts the waiter's continuation to its own executor.
  void fire() {
    std::unique_ptr<WaiterBase> waiter;
    {
      std::lock_guard lk(mutex_);
      fired_ = true;
      waiter = std::move(waiter_);
    }
    if (waiter) waiter->complete();
  }

 private:
  struct WaiterBase {
    virtual ~WaiterBase() = default;
    virtual void complete() = 0;
  };

  template <typename Handler>
  struct Waiter final : WaiterBase {
    explicit Waiter(Handler h)
        : handler(std::move(h)),
          // Outstanding work keeps the producer's io_context::run() from returning while the
          // producer waits on another thread's progress.
          work(asio::prefer(asio::get_associated_executor(handler),
                            asio::execution::outstanding_work.tracked)) {}
    void complete() override { asio::post(work, std::move(handler)); }

    Handler handler;
    std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                                       asio::execution::outstanding_work.tracked))>
        work;
  };

  std::mutex mutex_;
  bool fired_ = false;
  std::unique_ptr<WaiterBase> waiter_;
};

// What travels through the queue. `ack` is set when the producer waits for the commit.
struct Batch {
  std::vector<Record> records;
  std::shared_ptr<CommitAck> ack;
  std::size_t weight = 0;  // octets counted against RecorderOptions::queue_bytes
};

// Roughly what a batch holds in memory: the relayed bytes dominate.
std::size_t weight_of(const std::vector<Record>& records) {
  constexpr std::size_t per_record = 128;
  std::size_t w = 0;
  for (const Record& r : records) {
    w += per_record;
    if (const auto* e = std::get_if<SessionEvent>(&r)) {
      w += e->event->bytes.size() + e->event->note.size();
    } else if (const auto* t = std::get_if<SessionTls>(&r)) {
      for (const Certificate& c : t->chain) w += c.der.size();
    } else if (const auto* m = std::get_if<SessionMessage>(&r)) {
      w += m->message.body.size();
    } else if (const auto* b = std::get_if<SessionBodyTail>(&r)) {
      w += b->body.wire.size();
    }
  }
  return w;
}

// Errors caused by one record's content rather than by the database: the record is skipped and
// the transaction goes on.
bool is_record_error(int code) {
  switch (primary_code(code)) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return true;
    default:
      return false;
  }
}

std::string timestamp_or_now(Clock::time_point t) {
  return format_timestamp(t == Clock::time_point{} ? Clock::now() : t);
}

// Records are allocated on the relay's threads and freed here, up to `queue_bytes` at a time.
// glibc hands the top of its heap back to the kernel whenever more than 128 KiB of it is free, so
// each queue's worth of a large body was faulted in afresh: page faults and `brk` took a sixth
// of the relay thread's time (docs/benchmarks.md). The heap now keeps twice the budget.
// Setting that turns off glibc's own raising of the size from which blocks are mapped rather
// than taken from the heap (128 KiB): a read's worth of body (256 KiB) would then be mapped and
// faulted in afresh for every record. Blocks up to 1 MiB come from the heap.
void keep_freed_heap_for(std::size_t queue_bytes) {
  const std::size_t keep = std::min<std::size_t>(2 * queue_bytes, INT_MAX);
  constexpr int kMapFrom = 1 << 20;
  static std::mutex mutex;
  static std::size_t kept = 0;
  std::lock_guard lk(mutex);
  if (keep <= kept) return;
  if (mallopt(M_TRIM_THRESHOLD, static_cast<int>(keep)) == 1) kept = keep;
  mallopt(M_MMAP_THRESHOLD, kMapFrom);
}

std::optional<std::int64_t> nonzero(std::int64_t v) {
  return v == 0 ? std::nullopt : std::optional<std::int64_t>(v);
}

// messages.recipients_left_out and accepted_recipients_left_out at `first` and the next: both
// NULL where the count is unknown (never for a message the dialogue recorded).
void bind_recipients_left_out(Statement& st, int first,
                              const std::optional<smtp::RecipientsLeftOut>& left_out) {
  if (!left_out) {
    st.bind_null(first).bind_null(first + 1);
    return;
  }
  st.bind_int(first, static_cast<std::int64_t>(left_out->rcpts))
      .bind_int(first + 1, static_cast<std::int64_t>(left_out->accepted));
}

// Owns the connection and prepared statements; used only on the storage thread.
class Writer {
 public:
  enum class Result { ok, rejected, fatal };

  Status query_max_session_id(std::int64_t& out) {
    return db_.query_int("SELECT COALESCE(MAX(id), 0) FROM sessions", out);
  }

  // `next_key`: the recorder's next session key, moved past an id another writer took.
  Status init(Database db, std::atomic<SessionKey>* next_key) {
    db_ = std::move(db);
    next_key_ = next_key;
    // Read once: every session this process records names it ("" where /proc cannot tell).
    if (const auto& self = this_process()) writer_ = format_writer(*self);
    // The vocabulary triggers cost an event row about a third of its SQLite time
    // (docs/benchmarks.md) to check names this writer takes from the tables they are made of.
    if (Status st = db_.disable_triggers(); !st.ok()) return st;
    bodies_ = std::make_unique<BodyFileWriter>(db_.path());
    if (Status st = bodies_->check_directory(); !st.ok()) return st;
    struct {
      Statement* stmt;
      const char* sql;
    } const all[] = {
        {&begin_, "BEGIN IMMEDIATE"},
        {&user_version_, "PRAGMA user_version"},
        {&commit_, "COMMIT"},
        {&savepoint_, "SAVEPOINT record"},
        {&release_, "RELEASE record"},
        {&rollback_to_, "ROLLBACK TO record"},
        {&insert_session_,
         "INSERT INTO sessions(started_at, client_address, listen_address, upstream_host, "
         "upstream_port, tls_mode, ehlo_name, insecure, replay_of, writer, id) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, "
         // The key becomes the row id, so "session 12" in mailtap's log is `mailtap show 12`;
         // if another writer took that id meanwhile, SQLite picks a fresh one (see
         // write_one(SessionOpened)).
         "(SELECT CASE WHEN EXISTS(SELECT 1 FROM sessions WHERE id = ?10) THEN NULL ELSE ?10 "
         "END))"},
        {&update_tls_,
         "UPDATE sessions SET resolved_address = ?2, tls_version = ?3, cipher = ?4, sni = ?5, "
         "verified_name = ?6, verify_status = ?7, verify_reason = ?8, tls_resumed = ?9, "
         "client_cert_sha256 = ?10, client_cert_subject = ?11 WHERE id = ?1"},
        {&insert_certificate_der_,
         "INSERT INTO certificate_ders(sha256, der) VALUES (?1, ?2) ON CONFLICT DO NOTHING"},
        {&insert_certificate_,
         "INSERT INTO certificates(session_id, position, der, sha256, subject, issuer, "
         "not_before, not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
        {&insert_event_,
         "INSERT INTO events(session_id, seq, at, direction, phase, kind, verb, reply_code, "
         "enhanced_status, bytes, wire_size, redacted, note, mail_transaction, file_offset, "
         "file_length) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
         "?15, ?16)"},
        {&insert_message_,
         "INSERT INTO messages(session_id, seq, mail_from, size, sha256, body, body_truncated, "
         "via_bdat, final_code, final_reply, started_at, finished_at, mail_transaction, "
         "recipients_left_out, accepted_recipients_left_out) "
         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"},
        {&insert_recipient_,
         "INSERT INTO recipients(message_id, position, command, reply_code, reply) "
         "VALUES (?1, ?2, ?3, ?4, ?5)"},
        {&authenticated_,
         "UPDATE sessions SET auth_user = ?2, auth_mechanism = ?3, auth_by = ?4 "
         "WHERE id = ?1 AND ended_at IS NULL"},
        {&after_end_outcome_,
         "UPDATE sessions SET outcome = ?2, outcome_reason = ?3 WHERE id = ?1 AND outcome = ?4"},
        {&close_session_,
         "UPDATE sessions SET ended_at = ?2, outcome = ?3, outcome_reason = ?4, "
         "bytes_client_to_upstream = ?5, bytes_upstream_to_client = ?6, auth_user = ?7, "
         "auth_mechanism = ?8, auth_by = ?9, client_tls_version = ?10, duration_us = ?11 "
         "WHERE id = ?1 AND ended_at IS NULL"},
    };
    for (const auto& s : all) {
      if (Status st = db_.prepare(s.sql, *s.stmt); !st.ok()) return st;
    }
    wal_frame_octets_ = db_.wal_frame_octets();
    return db_.checkpoint_after_commits(
        [this](const Database::CheckpointProgress& p) { on_checkpoint(p); });
  }

  bool in_transaction() const { return in_tx_; }
  std::size_t records_in_transaction() const { return tx_records_; }
  const std::string& path() const { return db_.path(); }

  Status begin() {
    if (Status st = begin_.run(); !st.ok()) return located(st, "cannot start a transaction");
    in_tx_ = true;
    tx_records_ = 0;
    // Before the first write: rows of a schema another mailtap migrated to would fail (no such
    // table or column), or be rejected, for a cause they do not name.
    if (Status st = still_this_schema(); !st.ok()) {
      rollback();
      return st;
    }
    return {};
  }

  Status commit() {
    if (Status st = still_at_its_path(); !st.ok()) {
      rollback();
      return st;
    }
    // The body bytes this transaction refers to are durable before it is.
    if (Status st = bodies_->sync(); !st.ok()) {
      rollback();
      return st;
    }
    Status st = commit_.run();
    if (!st.ok()) {
      // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY): end it for good.
      rollback();
      return located(st, "cannot commit");
    }
    in_tx_ = false;
    body_written_ = false;
    return {};
  }

  // A database file deleted or renamed while recording goes on taking commits without an
  // error, into an inode that goes with the last descriptor or under a name nobody looks at:
  // what is recorded from then on is lost to its readers, so recording has failed. So do its
  // -wal file and, when the transaction wrote to a body file, the body directory. One stat of
  // each path per commit.
  Status still_at_its_path() {
    if (!db_.is_open()) return {};
    if (gone(db_.check_path(), "database", db_.path(), database_unchecked_said_)) {
      // What was committed is partly in the WAL, still under the old name, and SQLite does not
      // checkpoint a file that has moved when it closes: copy it into the file now, wherever it
      // went (renamed, it keeps all of it), and empty that WAL, which a new database made at
      // the old path would otherwise take for its own.
      rollback();
      db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      database_gone_ = true;
      return Status::error(SQLITE_IOERR, "the database file '" + db_.path() +
                                             "' was deleted or renamed while recording: the "
                                             "sessions since are not in it (restart mailtap to "
                                             "record to a new file at that path)");
    }
    if (gone(db_.check_wal_path(), "WAL", db_.wal_path(), wal_unchecked_said_)) {
      rollback();
      return wal_gone();
    }
    // Only a commit that refers to a body file depends on the directory (and stop, to say
    // once more what became of the run's record).
    if ((body_written_ || !in_tx_) && gone(bodies_->check_directory_path(), "body directory",
                                           bodies_->directory(), bodies_unchecked_said_)) {
      rollback();
      return body_directory_gone();
    }
    return {};
  }

  // A newer mailtap migrates the database in place when it opens it (docs/install.md
  // "Upgrading"), under this proxy too if it still records to it (the unit's instances share
  // one file): the rows written from then on would be of a schema this mailtap does not know.
  // Read inside the transaction, right after BEGIN IMMEDIATE took the write lock, so no
  // migration can come between this check and the commit. One read of the header per
  // transaction.
  Status still_this_schema() {
    if (!user_version_.valid()) return {};
    const bool read = user_version_.step() == Statement::Step::row;
    const std::int64_t version = read ? user_version_.column_int(0) : 0;
    const Status error = read ? Status{} : user_version_.last_error();
    user_version_.reset();
    if (!read) return located(error, "cannot read the schema version");
    if (version == kSchemaVersion) return {};
    return Status::error(SQLITE_ERROR,
                         "'" + db_.path() + "' was changed to schema version " +
                             std::to_string(version) + " by another mailtap while this one (" +
                             std::to_string(kSchemaVersion) +
                             ") recorded to it: this proxy cannot write to it any more; stop every "
                             "proxy of this version that records to it, then start them with the "
                             "new version");
  }

  // Renamed, the directory keeps the body files, under a name the events do not know; the
  // files made in it since are referred to by nothing committed (the commit is rolled back).
  Status body_directory_gone() const {
    return Status::error(SQLITE_IOERR, "the body directory '" + bodies_->directory() +
                                           "' was deleted or renamed while recording: the "
                                           "database finds the bodies of large messages only "
                                           "under that name, so the sessions since are not "
                                           "recorded (if it was renamed, give it its name "
                                           "back; then restart mailtap)");
  }

  // Whether `check` (of the `what` at `path`) found the path leading elsewhere. One that cannot
  // be looked at (EACCES on a directory, a transient error) may well lead to the file: no
  // reason to stop recording. Said once, until the path can be checked again.
  static bool gone(const Database::PathCheck& check, std::string_view what, const std::string& path,
                   bool& unchecked_said) {
    if (check.state == Database::PathState::unknown) {
      if (!unchecked_said) {
        log::warning("cannot check the " + std::string(what) + " path '" + path + "' (" +
                     std::strerror(check.error) + "); recording goes on");
        unchecked_said = true;
      }
      return false;
    }
    unchecked_said = false;
    return check.state == Database::PathState::moved;
  }

  // The -wal file deleted (or renamed) under the connection: SQLite goes on appending commits to
  // the file it holds open, which nobody else can read, and which goes with the process: a
  // crash would lose every session since the last checkpoint, those committed before the
  // deletion too. The checkpoint copies them into the database file (still at its path) from
  // that open file, so they outlive it; a reader's open transaction can keep back those
  // committed after it began, until mailtap closes the database (see close()).
  Status wal_gone() {
    wal_gone_ = true;
    std::int64_t busy = 1;
    const bool copied = db_.query_int("PRAGMA wal_checkpoint(TRUNCATE)", busy).ok() && busy == 0;
    const std::string lost = "the WAL file '" + db_.wal_path() +
                             "' was deleted or renamed while recording: the sessions since are "
                             "not recorded, ";
    if (copied) {
      return Status::error(SQLITE_IOERR,
                           lost + "those committed before were copied into '" + db_.path() +
                               "' (restart mailtap to record again, and leave the -wal file of "
                               "a database in use alone: it holds the last commits)");
    }
    return Status::error(SQLITE_IOERR,
                         lost + "and those committed before are only partly in '" + db_.path() +
                             "', because " + std::string(kReaderHoldsTheCheckpoint) +
                             ": close the programs reading it (" +
                             std::string(kReadersThatHoldCheckpoints) +
                             ") before mailtap stops, which copies the rest in (a kill -9 "
                             "would lose it); then restart mailtap, and leave the -wal file of a "
                             "database in use alone");
  }

  // A reader's open transaction (sqlite3 after BEGIN, a notebook) keeps every checkpoint from
  // copying what was committed after it began, and the WAL grows by the pages each commit
  // touches, without bound, until the disk is full; SQLite says nothing. Said when what is
  // held back first reaches the size from which checkpoints run (wal_autocheckpoint, about
  // 16 MiB: far more than a passing reader holds back), again at each doubling, and once the
  // checkpoints go through again. A long read of mailtap's own (audit's scan of a large record
  // beside a busy proxy) can reach the first: that line says such a read ends by itself; the
  // doublings are what a read that never ends makes.
  void on_checkpoint(const Database::CheckpointProgress& p) {
    const std::int64_t held = p.wal_frames - p.copied_frames;
    if (held == 0) {
      if (wal_held_said_) {
        log::notice("recording's WAL checkpoint went through again: '" + db_.wal_path() +
                    "' is copied into '" + db_.path() + "'");
      }
      wal_held_said_ = false;
      wal_warn_at_frames_ = 0;
      return;
    }
    if (wal_warn_at_frames_ == 0) wal_warn_at_frames_ = p.wal_autocheckpoint;
    if (wal_warn_at_frames_ <= 0 || held < wal_warn_at_frames_) return;
    while (wal_warn_at_frames_ <= held) wal_warn_at_frames_ *= 2;
    const std::string held_back = std::string(kReaderHoldsTheCheckpoint) + " '" + db_.path() +
                                  "', so the checkpoint cannot copy the last " +
                                  mebibytes(held * wal_frame_octets_) +
                                  " of commits into it, and '" + db_.wal_path() + "' (" +
                                  mebibytes(p.wal_frames * wal_frame_octets_) +
                                  ") grows with every session until that read ends";
    const std::string readers =
        "close the programs reading it (" + std::string(kReadersThatHoldCheckpoints) + ")";
    if (!wal_held_said_) {
      log::warning("recording's WAL grows while a reader holds its snapshot: " + held_back +
                   ". A long read (mailtap audit of a large record, a search in mailtap web) ends "
                   "by itself, and the checkpoint catches up; a read that never ends grows it "
                   "until the disk is full, said again at each doubling: then " +
                   readers);
    } else {
      log::warning("recording's WAL still grows: " + held_back +
                   "; a read that never ends grows it until the disk is full: " + readers);
    }
    wal_held_said_ = true;
  }

  static std::string mebibytes(std::int64_t octets) {
    constexpr double kMiB = 1024.0 * 1024.0;
    char text[32];
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(octets) / kMiB);
    return text;
  }

  void rollback() {
    if (db_.in_transaction()) db_.exec("ROLLBACK");
    in_tx_ = false;
    body_written_ = false;
    // The rows these keys pointed at may be gone; nothing further is written after a failure.
    rowids_.clear();
    inline_body_.clear();
    digests_.clear();
    if (bodies_) bodies_->close_all();
  }

  // Writes one record into the open transaction. On `fatal`, `error` says why.
  Result write(const Record& record, Status& error) {
    ++tx_records_;
    return std::visit([&](const auto& r) { return write_one(r, error); }, record);
  }

  void close() {
    // Statements before the connection, then a final `PRAGMA optimize` which keeps the
    // query planner's statistics fresh for the tools at no cost during recording.
    for (Statement* s :
         {&begin_, &commit_, &savepoint_, &release_, &rollback_to_, &insert_session_, &update_tls_,
          &insert_certificate_der_, &insert_certificate_, &insert_event_, &insert_message_,
          &insert_recipient_, &authenticated_, &close_session_}) {
      *s = Statement{};
    }
    // Not into a file that has gone from its path: the statistics would be written to the WAL
    // emptied when it went, which a new database made at the path would take for its own.
    if (db_.is_open() && !database_gone_) db_.exec("PRAGMA optimize");
    // SQLite copies the WAL into the database when it closes only if no reader is left; with
    // the -wal file deleted nothing else will, the file going with the descriptor.
    if (db_.is_open() && wal_gone_) db_.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db_.close();
    if (bodies_) bodies_->close_all();
  }

 private:
  Status located(const Status& st, std::string_view what) const {
    std::string msg = std::string(what) + " in '" + db_.path() + "': " + st.message;
    if (primary_code(st.code) == SQLITE_BUSY) msg += " (another process holds a lock on it)";
    return Status::error(st.code, std::move(msg));
  }

  Result classify(const Status& st, Status& error) {
    if (st.ok()) return Result::ok;
    if (is_record_error(st.code)) return Result::rejected;
    error = located(st, "cannot write");
    return Result::fatal;
  }

  const std::int64_t* rowid(SessionKey key) const {
    auto it = rowids_.find(key);
    return it == rowids_.end() ? nullptr : &it->second;
  }

  // Multi-statement records are all-or-nothing via a savepoint, so a rejected certificate or
  // recipient does not leave half a record behind.
  template <typename Fn>
  Result in_savepoint(Fn&& fn, Status& error) {
    if (Status st = savepoint_.run(); !st.ok()) {
      error = located(st, "cannot write");
      return Result::fatal;
    }
    const Result r = fn();
    if (r == Result::rejected) {
      if (classify(rollback_to_.run(), error) != Result::ok) return Result::fatal;
    }
    if (r == Result::fatal) return r;
    if (classify(release_.run(), error) != Result::ok) return Result::fatal;
    return r;
  }

  Result write_one(const SessionOpened& r, Status& error) {
    if (r.key == 0 || rowid(r.key) != nullptr) return Result::rejected;
    const std::string started = timestamp_or_now(r.started);
    insert_session_.bind_text(1, started)
        .bind_text(2, r.client_address)
        .bind_text(3, r.listen_address)
        .bind_text(4, r.upstream_host)
        .bind_int(5, r.upstream_port)
        .bind_text(6, to_string(r.tls_mode))
        .bind_text(7, r.ehlo_name)
        .bind_int(8, r.insecure ? 1 : 0)
        .bind_optional(9, r.replay_of)
        .bind_int(10, static_cast<std::int64_t>(r.key))
        .bind_text_or_null(11, writer_);
    const Result res = classify(insert_session_.run(), error);
    if (res != Result::ok) return res;
    const std::int64_t id = db_.last_insert_rowid();
    rowids_[r.key] = id;
    if (r.recorded_id) r.recorded_id->store(id, std::memory_order_release);
    if (id != static_cast<std::int64_t>(r.key)) number_after(id);
    return res;
  }

  // Another process records into this file and took the id of a key handed out here: the keys
  // handed out next start after the row SQLite picked instead, so that they match their ids
  // again rather than collide with the other writer's rows one after the other.
  void number_after(std::int64_t id) {
    if (next_key_ == nullptr || id <= 0) return;
    const auto want = static_cast<SessionKey>(id) + 1;
    SessionKey next = next_key_->load(std::memory_order_relaxed);
    while (next < want && !next_key_->compare_exchange_weak(next, want)) {
    }
  }

  Result write_one(const SessionTls& r, Status& error) {
    const std::int64_t* id = rowid(r.key);
    if (id == nullptr) return Result::rejected;
    return in_savepoint(
        [&] {
          update_tls_.bind_int(1, *id)
              .bind_text_or_null(2, r.resolved_address)
              .bind_text_or_null(3, r.tls_version)
              .bind_text_or_null(4, r.cipher)
              .bind_text_or_null(5, r.sni)
              .bind_text_or_null(6, r.verified_name)
              .bind_text_or_null(7, r.verify_status ? to_string(*r.verify_status) : "")
              .bind_text_or_null(8, r.verify_reason)
              .bind_optional(9, r.tls_version.empty()
                                    ? std::optional<std::int64_t>{}
                                    : std::optional<std::int64_t>{r.resumed ? 1 : 0})
              .bind_text_or_null(10, r.client_cert_sha256)
              .bind_text_or_null(11, r.client_cert_subject);
          if (Result res = classify(update_tls_.run(), error); res != Result::ok) return res;
          for (std::size_t i = 0; i < r.chain.size(); ++i) {
            const Certificate& c = r.chain[i];
            // The key of the one stored copy, so computed here from the DER it names.
            unsigned char md[SHA256_DIGEST_LENGTH];
            SHA256(reinterpret_cast<const unsigned char*>(c.der.data()), c.der.size(), md);
            const std::string digest = to_hex(md, sizeof md);
            insert_certificate_der_.bind_text(1, digest).bind_blob(2, c.der);
            if (Result res = classify(insert_certificate_der_.run(), error); res != Result::ok) {
              return res;
            }
            insert_certificate_.bind_int(1, *id)
                .bind_int(2, static_cast<std::int64_t>(i))
                .bind_blob(3, std::string_view())  // in certificate_ders
                .bind_text(4, digest)
                .bind_text_or_null(5, c.subject)
                .bind_text_or_null(6, c.issuer)
                .bind_text_or_null(7, c.not_before)
                .bind_text_or_null(8, c.not_after);
            if (Result res = classify(insert_certificate_.run(), error); res != Result::ok) {
              return res;
            }
          }
          return Result::ok;
        },
        error);
  }

  Result write_one(const SessionEvent& r, Status& error) {
    const std::int64_t* id = rowid(r.key);
    if (id == nullptr) return Result::rejected;
    const smtp::Event& e = *r.event;
    std::optional<std::int64_t> file_offset;
    if (keeps_out_of_database(r.key, e)) {
      std::int64_t offset = 0;
      if (Status st = bodies_->append(*id, e.bytes, offset); !st.ok()) {
        error = st;
        return Result::fatal;
      }
      file_offset = offset;
      body_written_ = true;
    }
    if (e.kind == smtp::EventKind::data || e.kind == smtp::EventKind::bdat_chunk)
      digests_.add(r.key, e.transaction, e.kind, e.bytes);
    return insert_event(*id, r.seq, e, file_offset, error);
  }

  Result write_one(const SessionAfterEnd& r, Status& error) {
    if (r.session_id == 0) return Result::rejected;
    return in_savepoint(
        [&] {
          if (Result res = insert_event(r.session_id, r.seq, *r.note, std::nullopt, error);
              res != Result::ok || !r.outcome)
            return res;
          after_end_outcome_.bind_int(1, r.session_id)
              .bind_text(2, to_string(*r.outcome))
              .bind_text_or_null(3, r.reason)
              .bind_text(4, to_string(Outcome::quit));  // a clean end only: see records.hpp
          return classify(after_end_outcome_.run(), error);
        },
        error);
  }

  // One row of `events`; its bytes in the session's body file at `file_offset`, if given.
  Result insert_event(std::int64_t id, std::uint64_t seq, const smtp::Event& e,
                      std::optional<std::int64_t> file_offset, Status& error) {
    const std::string at = e.time == Clock::time_point{} ? std::string() : format_timestamp(e.time);
    const std::string_view stored = file_offset ? std::string_view() : std::string_view(e.bytes);
    insert_event_.bind_int(1, id)
        .bind_int(2, static_cast<std::int64_t>(seq))
        .bind_text_or_null(3, at)
        .bind_text(4, to_string(e.direction))
        .bind_text(5, to_string(e.phase))
        .bind_text(6, to_string(e.kind))
        .bind_text_or_null(7, e.verb)
        .bind_optional(8, nonzero(e.reply_code))
        .bind_text_or_null(9, e.enhanced_status)
        .bind_blob(10, stored)
        .bind_int(11, static_cast<std::int64_t>(e.wire_size))
        .bind_int(12, e.redacted ? 1 : 0)
        .bind_text_or_null(13, e.note)
        .bind_optional(14, nonzero(static_cast<std::int64_t>(e.transaction)))
        .bind_optional(15, file_offset)
        .bind_optional(
            16, file_offset ? std::optional<std::int64_t>(static_cast<std::int64_t>(e.bytes.size()))
                            : std::nullopt);
    return classify(insert_event_.run(), error);
  }

  // A body event goes to the session's body file once its message has kInlineBodyOctets in
  // the database: small messages stay in one place, large ones are written once.
  bool keeps_out_of_database(SessionKey key, const smtp::Event& e) {
    if (e.kind != smtp::EventKind::data && e.kind != smtp::EventKind::bdat_chunk) return false;
    if (e.bytes.empty()) return false;
    InlineBody& body = inline_body_[key];
    if (body.transaction != e.transaction) body = InlineBody{e.transaction, 0};
    if (body.octets + e.bytes.size() <= kInlineBodyOctets) {
      body.octets += e.bytes.size();
      return false;
    }
    body.octets = kInlineBodyOctets + 1;  // the rest of this message follows it out
    return true;
  }

  // Stored nowhere: only the message's SHA-256 covers these octets.
  Result write_one(const SessionBodyTail& r, Status&) {
    digests_.add(r.key, r.body.transaction, r.body.kind, r.body.wire);
    return Result::ok;
  }

  Result write_one(const SessionMessage& r, Status& error) {
    const std::int64_t* id = rowid(r.key);
    if (id == nullptr) return Result::rejected;
    const smtp::Message& m = r.message;
    const std::string sha256_hex =
        m.sha256_hex.empty() ? digests_.finish(r.key, m.transaction) : m.sha256_hex;
    return in_savepoint(
        [&] {
          const std::string started =
              m.started == Clock::time_point{} ? std::string() : format_timestamp(m.started);
          const std::string finished =
              m.finished == Clock::time_point{} ? std::string() : format_timestamp(m.finished);
          insert_message_.bind_int(1, *id)
              .bind_int(2, static_cast<std::int64_t>(r.seq))
              .bind_text(3, m.mail_from)
              .bind_int(4, static_cast<std::int64_t>(m.size))
              .bind_text_or_null(5, sha256_hex)
              .bind_blob(6, m.body)  // empty from the dialogue: the body is in its events
              .bind_int(7, m.body_truncated ? 1 : 0)
              .bind_int(8, m.via_bdat ? 1 : 0)
              .bind_optional(9, nonzero(m.final_code))
              .bind_text_or_null(10, m.final_reply)
              .bind_text_or_null(11, started)
              .bind_text_or_null(12, finished)
              .bind_optional(13, nonzero(static_cast<std::int64_t>(m.transaction)));
          bind_recipients_left_out(insert_message_, 14, m.recipients_left_out);
          if (Result res = classify(insert_message_.run(), error); res != Result::ok) return res;
          const std::int64_t message_id = db_.last_insert_rowid();
          for (const smtp::Recipient& rc : m.recipients) {
            insert_recipient_.bind_int(1, message_id)
                .bind_int(2, static_cast<std::int64_t>(rc.position))
                .bind_text(3, rc.command)
                .bind_optional(4, nonzero(rc.reply_code))
                .bind_text_or_null(5, rc.reply);
            if (Result res = classify(insert_recipient_.run(), error); res != Result::ok) {
              return res;
            }
          }
          return Result::ok;
        },
        error);
  }

  Result write_one(const SessionAuthenticated& r, Status& error) {
    const std::int64_t* id = rowid(r.key);
    if (id == nullptr) return Result::rejected;
    authenticated_.bind_int(1, *id)
        .bind_text_or_null(2, r.auth_user)
        .bind_text_or_null(3, r.auth_mechanism)
        .bind_text_or_null(4,
                           r.auth_mechanism.empty()
                               ? ""
                               : to_string(r.auth_by_mailtap ? AuthBy::mailtap : AuthBy::client));
    return classify(authenticated_.run(), error);
  }

  Result write_one(const SessionClosed& r, Status& error) {
    const std::int64_t* id = rowid(r.key);
    if (id == nullptr) {
      digests_.forget(r.key);
      return Result::rejected;
    }
    const std::string ended = timestamp_or_now(r.ended);
    close_session_.bind_int(1, *id)
        .bind_text(2, ended)
        .bind_text(3, to_string(r.outcome))
        .bind_text_or_null(4, r.reason)
        .bind_int(5, static_cast<std::int64_t>(r.bytes_client_to_upstream))
        .bind_int(6, static_cast<std::int64_t>(r.bytes_upstream_to_client))
        .bind_text_or_null(7, r.auth_user)
        .bind_text_or_null(8, r.auth_mechanism)
        .bind_text_or_null(9, r.auth_mechanism.empty()
                                  ? ""
                                  : to_string(r.auth_by_mailtap ? AuthBy::mailtap : AuthBy::client))
        .bind_text_or_null(10, r.client_tls_version);
    if (r.duration)
      close_session_.bind_int(11, std::max<std::int64_t>(0, r.duration->count()));
    else
      close_session_.bind_null(11);
    const Result res = classify(close_session_.run(), error);
    // The key is finished either way; later records for it are the session's bug.
    bodies_->finish(*id);
    inline_body_.erase(r.key);
    digests_.forget(r.key);
    rowids_.erase(r.key);  // last: `id` points into it
    return res;
  }

  Database db_;
  // "cannot check the ... path" logged, for each path
  bool database_unchecked_said_ = false, wal_unchecked_said_ = false,
       bodies_unchecked_said_ = false;
  bool body_written_ = false;   // the transaction refers to octets in a body file
  bool wal_gone_ = false;       // the -wal file was deleted: its commits need copying at close
  bool database_gone_ = false;  // the database file was deleted or renamed: nothing more to write
  // A reader holding back the checkpoint: said (on_checkpoint), and at how many frames next.
  bool wal_held_said_ = false;
  std::int64_t wal_warn_at_frames_ = 0;
  std::int64_t wal_frame_octets_ = 0;
  Statement begin_, commit_, savepoint_, release_, rollback_to_, user_version_;
  Statement insert_session_, update_tls_, insert_certificate_der_, insert_certificate_,
      insert_event_, insert_message_, insert_recipient_, authenticated_, close_session_,
      after_end_outcome_;
  std::unordered_map<SessionKey, std::int64_t> rowids_;
  // Body octets of each session's current message stored in the database so far.
  struct InlineBody {
    std::uint64_t transaction = 0;
    std::size_t octets = 0;
  };
  std::unordered_map<SessionKey, InlineBody> inline_body_;
  MessageDigests digests_;
  std::unique_ptr<BodyFileWriter> bodies_;
  std::atomic<SessionKey>* next_key_ = nullptr;
  std::string writer_;  // sessions.writer of the sessions this process records
  bool in_tx_ = false;
  std::size_t tx_records_ = 0;
};

}  // namespace

struct Recorder::Impl {
  explicit Impl(const RecorderOptions& o) : options(o) {}

  // The storage thread's loop.
  void run();
  // Its last steps, once nothing more can arrive.
  void finish_run();
  // Any thread: queues an admitted batch and wakes the storage thread only when it must.
  void enqueue(Batch batch, bool urgent);
  // Any thread: the storage thread looks at the queue now rather than at its deadline.
  void wake();
  void handle(Batch batch);
  Status begin_transaction();
  // Whether stop() has begun (nothing more is accepted).
  bool stopping();
  // Said while begin_transaction() waits for another process's write lock, `waited` so far.
  void say_lock_wait(std::chrono::steady_clock::duration waited, bool stopping_now);
  void commit();
  void fail(const Status& st);
  void release_acks();

  RecorderOptions options;
  FingerprintKey key{};
  std::thread thread;
  std::atomic<SessionKey> next_key{1};

  // Storage thread only.
  Writer writer;
  std::chrono::steady_clock::time_point tx_deadline{};
  std::vector<std::shared_ptr<CommitAck>> acks;
  // After a commit the thread keeps looking at the queue by itself for one commit interval
  // (producers need not wake it): a session's next records, typically its next message's
  // commands, then cost no wake-up; the batch that ends that message still wakes it.
  std::chrono::steady_clock::time_point linger_until = std::chrono::steady_clock::time_point::max();

  // Shared between producers, stop() and the storage thread.
  mutable std::mutex mutex;
  bool accepting = true;           // false once stop() began
  std::uint64_t promised = 0;      // batches admitted by submit() and not yet taken
  std::string failure;             // non-empty once failed
  std::size_t queued_bytes = 0;    // weight of the batches admitted and not yet written
  std::size_t queued_batches = 0;  // batches admitted and not yet written
  std::size_t peak_queued_bytes = 0;
  // Batches admitted and not yet taken by the storage thread, in submission order. Waking
  // that thread costs two context switches: a session's commands, replies and body reads are
  // queued without one while it will look anyway (wake_due: it has an open transaction, lingers
  // after a commit, or has a wake() on its way); a batch someone waits for (urgent_due) always
  // wakes it.
  std::vector<Batch> pending;
  bool wake_due = false;
  bool urgent_due = false;
  bool woken = false;  // a wake() arrived since the storage thread last looked at the queue
  // A plain condition variable, not an asio timer and io_context: a wake-up is one futex call
  // on each side instead of an eventfd, an epoll_ctl, an epoll_wait and a timerfd_settime.
  std::condition_variable woken_cv;
  // Producers waiting for queued_bytes to fall, in order, with their batches' weights.
  std::deque<std::pair<std::shared_ptr<CommitAck>, std::size_t>> room_waiters;

  // Any thread: takes `weight` octets of the budget, or returns what to wait on for them.
  std::shared_ptr<CommitAck> reserve_room(std::size_t weight);
  // Storage thread: a batch of `weight` has been written; admits waiting producers in order.
  void release_room(std::size_t weight);

  std::atomic<bool> failed{false};
  std::atomic<std::uint64_t> n_batches{0}, n_records{0}, n_commits{0}, n_rejected{0},
      n_discarded{0}, n_late{0};

  std::mutex stop_mutex;
  bool stopped = false;
};

void Recorder::Impl::run() {
  using std::chrono::steady_clock;
  for (;;) {
    std::vector<Batch> taken;
    {
      std::unique_lock lk(mutex);
      // Every batch ever admitted has been taken: nothing can arrive any more.
      if (!accepting && promised == 0) break;
      const steady_clock::time_point until = writer.in_transaction() ? tx_deadline : linger_until;
      if (until == steady_clock::time_point::max()) {
        woken_cv.wait(lk, [this] { return woken; });
      } else {
        woken_cv.wait_until(lk, until, [this] { return woken; });
      }
      // Expired or woken: either way, look at the queue.
      woken = false;
      taken.swap(pending);
      urgent_due = false;
    }
    for (Batch& batch : taken) handle(std::move(batch));
    // A producer waiting for its commit holds a reply back from its client: commit as soon as
    // its batch is written instead of at the deadline (what was queued with it shares it).
    if (writer.in_transaction() && (writer.records_in_transaction() >= options.commit_records ||
                                    steady_clock::now() >= tx_deadline || !acks.empty())) {
      commit();
    }
    if (!writer.in_transaction()) {
      release_acks();
      std::lock_guard lk(mutex);
      if (!pending.empty()) {
        woken = true;
      } else if (taken.empty()) {
        // A whole interval without records: idle from here on, the next batch wakes this thread.
        wake_due = false;
        linger_until = steady_clock::time_point::max();
      } else {
        linger_until = steady_clock::now() + options.commit_interval;
      }
    }
  }
  finish_run();
}

void Recorder::Impl::finish_run() {
  if (writer.in_transaction()) commit();
  // Deleted or renamed while idle: the exit status says so all the same.
  if (!failed.load()) {
    if (Status st = writer.still_at_its_path(); !st.ok()) fail(st);
  }
  release_acks();
}

void Recorder::Impl::wake() {
  {
    std::lock_guard lk(mutex);
    woken = true;
  }
  woken_cv.notify_one();
}

void Recorder::Impl::enqueue(Batch batch, bool urgent) {
  bool wake_now = false;
  {
    std::lock_guard lk(mutex);
    pending.push_back(std::move(batch));
    // A quarter of the octet budget queued: write it now, so producers rarely wait for room.
    // And 4 batches at most per wake-up: a longer burst of writes holds a core that the relay
    // (on a small machine) may want. Against 16, a recorded NOOP's p99 fell from 1.4-1.65x
    // stunnel's to 1.15-1.25x at the same CPU per NOOP; at 2 the CPU per NOOP rose by a fifth.
    constexpr std::size_t kBatchesPerWake = 4;
    urgent = urgent || queued_bytes >= options.queue_bytes / 4 || pending.size() >= kBatchesPerWake;
    if (urgent ? !urgent_due : !wake_due) wake_now = true;
    wake_due = true;
    urgent_due = urgent_due || urgent;
  }
  if (wake_now) wake();
}

std::shared_ptr<CommitAck> Recorder::Impl::reserve_room(std::size_t weight) {
  std::lock_guard lk(mutex);
  if (queued_batches == 0 ||
      (room_waiters.empty() && queued_bytes + weight <= options.queue_bytes &&
       queued_batches < options.queue_capacity)) {
    queued_bytes += weight;
    ++queued_batches;
    peak_queued_bytes = std::max(peak_queued_bytes, queued_bytes);
    return nullptr;
  }
  auto room = std::make_shared<CommitAck>();
  room_waiters.emplace_back(room, weight);
  return room;
}

void Recorder::Impl::release_room(std::size_t weight) {
  std::vector<std::shared_ptr<CommitAck>> admitted;
  {
    std::lock_guard lk(mutex);
    queued_bytes -= weight;
    --queued_batches;
    while (!room_waiters.empty() &&
           (queued_batches == 0 ||
            (queued_bytes + room_waiters.front().second <= options.queue_bytes &&
             queued_batches < options.queue_capacity))) {
      queued_bytes += room_waiters.front().second;
      ++queued_batches;
      peak_queued_bytes = std::max(peak_queued_bytes, queued_bytes);
      admitted.push_back(std::move(room_waiters.front().first));
      room_waiters.pop_front();
    }
  }
  for (auto& room : admitted) room->fire();
}

void Recorder::Impl::handle(Batch batch) {
  {
    std::lock_guard lk(mutex);
    --promised;
  }
  ++n_batches;
  if (batch.ack) acks.push_back(std::move(batch.ack));
  for (const Record& record : batch.records) {
    if (failed.load(std::memory_order_relaxed)) {
      ++n_discarded;
      continue;
    }
    Status error;
    if (!writer.in_transaction()) {
      if (Status st = begin_transaction(); !st.ok()) {
        fail(st);
        ++n_discarded;
        continue;
      }
      tx_deadline = std::chrono::steady_clock::now() + options.commit_interval;
    }
    switch (writer.write(record, error)) {
      case Writer::Result::ok:
        ++n_records;
        break;
      case Writer::Result::rejected:
        ++n_rejected;
        break;
      case Writer::Result::fatal:
        // The open transaction, with other sessions' records in it, is lost too.
        fail(error);
        ++n_discarded;
        break;
    }
  }
  const std::size_t weight = batch.weight;
  batch.records.clear();  // the memory goes back before the producers it held back resume
  release_room(weight);
}

// Another process holding the write lock (prune's DELETE and VACUUM, a second proxy, a
// transaction left open in sqlite3) is transient: it is waited for, up to lock_wait, with the
// queue filling behind this thread (backpressure: the sessions wait, nothing is acknowledged
// before its commit), instead of ending recording for the run after one busy_timeout. In WAL
// mode this BEGIN IMMEDIATE is the only statement here that waits for another process: once
// it holds the write lock, the writes and the COMMIT (an append to the WAL) need no lock anyone
// else may hold. Begun outside any transaction it holds no snapshot that could be stale
// (SQLITE_BUSY_SNAPSHOT), so trying again is always sound.
//
// A stop() during the wait does not end it: the records admitted before the stop are still to
// be written, and only the lock lets them be (never drop what was accepted). Shutdown then
// waits with it, and says why: mailtap's stop timeout (systemd's TimeoutStopSec) allows for it.
Status Recorder::Impl::begin_transaction() {
  using std::chrono::steady_clock;
  const steady_clock::time_point start = steady_clock::now();
  Status st = writer.begin();
  if (primary_code(st.code) != SQLITE_BUSY) return st;
  // Said once per wait, not per try: a lock held past busy_timeout is rare enough to explain;
  // and once more if mailtap is asked to stop meanwhile, since the stop now waits too.
  bool stopping_said = stopping();
  say_lock_wait(steady_clock::now() - start, stopping_said);
  // SQLite may answer busy without calling its busy handler (it does not in every case): the
  // pause keeps this thread from spinning then.
  constexpr std::chrono::milliseconds kPause{20};
  while (primary_code(st.code) == SQLITE_BUSY && steady_clock::now() - start < options.lock_wait) {
    std::this_thread::sleep_for(kPause);
    if (!stopping_said && stopping()) {
      stopping_said = true;
      say_lock_wait(steady_clock::now() - start, true);
    }
    st = writer.begin();
  }
  const std::string waited = format_short_duration(steady_clock::now() - start);
  if (st.ok()) {
    log::notice("recording goes on: the write lock on '" + writer.path() + "' was released after " +
                waited);
  } else if (primary_code(st.code) == SQLITE_BUSY) {
    st.message += "; waited " + waited + " for it";
  }
  return st;
}

bool Recorder::Impl::stopping() {
  std::lock_guard lk(mutex);
  return !accepting;
}

void Recorder::Impl::say_lock_wait(std::chrono::steady_clock::duration waited, bool stopping_now) {
  const std::string held = "another process holds the write lock on '" + writer.path() + "' (" +
                           format_short_duration(waited) + " so far)";
  if (!stopping_now) {
    log::warning("recording waits: " + held + "; sessions wait for their replies until it is " +
                 "released, " + format_setting_duration(options.lock_wait) + " at most");
    return;
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      options.lock_wait - std::min<std::chrono::steady_clock::duration>(waited, options.lock_wait));
  log::warning("stopping waits: " + held + ", and records accepted before the stop are still to " +
               "be committed; mailtap exits once it is released and they are, or in " +
               format_short_duration(left) + " at most, without them");
}

void Recorder::Impl::commit() {
  if (Status st = writer.commit(); !st.ok()) {
    fail(st);
    return;
  }
  ++n_commits;
}

void Recorder::Impl::fail(const Status& st) {
  writer.rollback();
  if (failed.exchange(true)) return;
  {
    std::lock_guard lk(mutex);
    failure = st.message;
  }
  if (options.on_failure) options.on_failure(st.message);
}

void Recorder::Impl::release_acks() {
  for (auto& ack : acks) ack->fire();
  acks.clear();
}

Recorder::Recorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Recorder::~Recorder() {
  stop();
}

std::unique_ptr<Recorder> Recorder::open(const RecorderOptions& options, std::string& error) {
  error.clear();
  auto impl = std::make_unique<Impl>(options);
  if (impl->options.commit_records == 0) impl->options.commit_records = 1;
  keep_freed_heap_for(impl->options.queue_bytes);

  Database db;
  OpenOptions oo;
  oo.mode = OpenMode::read_write;
  oo.busy_timeout = options.busy_timeout;
  oo.batch_wal_writes = true;
  // The failure, with why the directory is the cause when it is (see directory_access.hpp).
  auto failed = [&](const Status& st) {
    error = st.message;
    if (const std::string why = unwritable_directory_reason(options.path); !why.empty())
      error += " (" + why + ")";
    return nullptr;
  };
  if (Status st = Database::open(options.path, oo, db); !st.ok()) return failed(st);
  if (Status st = prepare_for_writing(db, options.created_by, impl->key); !st.ok())
    return failed(st);
  if (Status st = impl->writer.init(std::move(db), &impl->next_key); !st.ok()) return failed(st);

  // Continue numbering after the sessions already recorded (see the INSERT above).
  std::int64_t last_id = 0;
  if (Status st = impl->writer.query_max_session_id(last_id); st.ok())
    impl->next_key = static_cast<SessionKey>(last_id) + 1;

  Impl* p = impl.get();
  p->thread = std::thread([p] {
    try {
      p->run();
    } catch (const std::bad_alloc&) {
      // Resource exhaustion is all that can get here; treat it like a write failure.
      p->fail(Status::error(SQLITE_NOMEM, "storage thread stopped: out of memory"));
    } catch (const std::exception& e) {
      // Anything else (a failing mutex) likewise, rather than terminating the proxy.
      p->fail(Status::error(SQLITE_ERROR, std::string("storage thread stopped: ") + e.what()));
    }
  });
  name_thread(p->thread, "mailtap-record");
  return std::unique_ptr<Recorder>(new Recorder(std::move(impl)));
}

SessionKey Recorder::new_session_key() {
  return impl_->next_key.fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<void> Recorder::submit(std::vector<Record> batch) {
  // Not cut short between the halves either: a cancelled producer's batch is still committed
  // before it goes on.
  const bool throw_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  Queued queued = co_await queue(std::move(batch));
  co_await queued.committed();
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
}

asio::awaitable<void> Recorder::Queued::committed() {
  if (!ack_) co_return;
  const std::shared_ptr<CommitAck> ack = std::static_pointer_cast<CommitAck>(std::move(ack_));
  ack_.reset();
  // As for the queueing: the wait for the commit is not cut short by a cancellation.
  const bool throw_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  co_await ack->async_wait(asio::use_awaitable);  // the outcome is in failed()
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
}

asio::awaitable<Recorder::Queued> Recorder::queue(std::vector<Record> batch) {
  Queued out;
  if (batch.empty()) co_return out;
  Impl& s = *impl_;
  const std::size_t n = batch.size();
  {
    std::lock_guard lk(s.mutex);
    if (!s.accepting) {
      s.n_late += n;
      co_return out;
    }
    // Admitted: stop() now waits for this batch to arrive before it closes the database.
    ++s.promised;
  }

  // A cancelled session still gets its records written: ignore cancellation until we return.
  const bool throw_if_cancelled = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);

  // The client learns that a message or a session has finished only once it is on disk.
  const bool durable = std::any_of(batch.begin(), batch.end(), [](const Record& r) {
    return std::holds_alternative<SessionClosed>(r) || std::holds_alternative<SessionMessage>(r);
  });
  std::shared_ptr<CommitAck> ack;
  if (durable) ack = std::make_shared<CommitAck>();
  const std::size_t weight = weight_of(batch);
  if (std::shared_ptr<CommitAck> room = s.reserve_room(weight)) {
    s.wake();  // the queue is full: the storage thread makes room by writing it now
    co_await room->async_wait(asio::use_awaitable);  // a slow disk slows the relay here
  }

  // Built as a named local: g++ 12 destroys brace-initialised temporaries inside a co_await
  // expression twice.
  Batch queued;
  queued.records = std::move(batch);
  queued.ack = ack;
  queued.weight = weight;
  s.enqueue(std::move(queued), durable);
  out.ack_ = std::move(ack);
  co_await asio::this_coro::throw_if_cancelled(throw_if_cancelled);
  co_return out;
}

void Recorder::stop() {
  Impl& s = *impl_;
  std::lock_guard stop_lock(s.stop_mutex);
  if (s.stopped) return;
  {
    std::lock_guard lk(s.mutex);
    s.accepting = false;
  }
  // Wake the storage coroutine if it is idle so it notices; it exits once every admitted batch
  // has been taken and committed.
  s.wake();
  if (s.thread.joinable()) {
    if (s.thread.get_id() == std::this_thread::get_id()) return;  // misuse: from on_failure
    s.thread.join();
  }
  s.writer.close();
  s.stopped = true;
}

bool Recorder::failed() const {
  return impl_->failed.load();
}

std::string Recorder::failure_reason() const {
  std::lock_guard lk(impl_->mutex);
  return impl_->failure;
}

std::array<std::uint8_t, 32> Recorder::fingerprint_key() const {
  return impl_->key;
}

std::string Recorder::path() const {
  return impl_->options.path;
}

RecorderStats Recorder::stats() const {
  const Impl& s = *impl_;
  RecorderStats stats{s.n_batches.load(),  s.n_records.load(),   s.n_commits.load(),
                      s.n_rejected.load(), s.n_discarded.load(), s.n_late.load()};
  std::lock_guard lk(s.mutex);
  stats.peak_queued_bytes = s.peak_queued_bytes;
  return stats;
}

}  // namespace mailtap::storage
