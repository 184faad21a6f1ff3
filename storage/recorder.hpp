// The storage thread: sessions hand it batches of records, it writes them to SQLite in grouped
// transactions. Sessions never touch the database themselves, so a slow disk shows up as
// backpressure in submit(), never as a blocked I/O thread.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "storage/records.hpp"

namespace mailtap::storage {

struct RecorderOptions {
  std::string path;
  std::size_t queue_capacity = 1024;  // batches queued before submit() suspends its caller
  // Octets of queued records (mostly relayed body bytes) before submit() suspends its caller:
  // what a slow disk can make mailtap hold in memory, whatever the message sizes. A batch larger
  // than this is admitted alone.
  std::size_t queue_bytes = std::size_t{8} << 20;
  // A transaction is committed when it holds commit_records records or has been open for
  // commit_interval, whichever comes first. A batch is never split across transactions, and
  // one somebody waits for is committed at once. 50 ms rather than 5: each commit rewrites the
  // pages it touched and syncs the body files, so ten times fewer of them recorded large
  // bodies 5-11 % faster and cut a recorded NOOP's p99 by a tenth (docs/benchmarks.md), while
  // a reader still sees a record within a tenth of a second.
  std::chrono::milliseconds commit_interval{50};
  std::size_t commit_records = 500;
  // How long SQLite waits for another process's lock (a second proxy's commit, prune's DELETE)
  // on one try to begin a transaction; also at open. A lock held longer is logged, and waited
  // for again, up to lock_wait.
  std::chrono::milliseconds busy_timeout{5000};
  // How long, in all, the storage thread waits for a write lock another process holds (prune's
  // VACUUM, a transaction left open in sqlite3) before that is a recording failure. Meanwhile
  // the queue fills and sessions wait for room and for their acknowledgements: nothing is
  // dropped or acknowledged before its commit. A minute, because that stall reaches the peers:
  // it stays well under the shortest wait RFC 5321 asks a client to allow (2 minutes, for the
  // 354 after DATA) and the 5 minutes a server allows, so nobody gives up on a held session.
  std::chrono::milliseconds lock_wait{60000};
  // Stored as meta.created_by when the database is created, e.g. "mailtap 0.1.0".
  std::string created_by = "mailtap";
  // Called at most once, on the storage thread, when the recorder enters the failed state.
  // Must be thread-safe and quick (post to your own executor); the reason names the database and
  // the SQLite error, never record contents.
  std::function<void(const std::string& reason)> on_failure;
};

struct RecorderStats {
  std::uint64_t batches = 0;    // batches received by the storage thread
  std::uint64_t records = 0;    // records written (committed, or in the open transaction)
  std::uint64_t commits = 0;    // transactions committed
  std::uint64_t rejected = 0;   // records the schema refused or whose session key is unknown
  std::uint64_t discarded = 0;  // records dropped because the recorder had failed
  std::uint64_t late = 0;       // records submitted after stop() began, dropped
  std::uint64_t peak_queued_bytes = 0;  // most octets ever queued at once (see queue_bytes)
};

class Recorder {
 public:
  // Opens (creating if needed) and migrates the database, then starts the storage thread.
  // On failure returns nullptr and sets `error` to a message fit for the user: unwritable path,
  // locked database, not a mailtap database, schema newer than this build.
  static std::unique_ptr<Recorder> open(const RecorderOptions& options, std::string& error);

  ~Recorder();  // stop()
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Thread-safe; keys are unique within this Recorder and never 0. A key is the id its session's
  // row gets, unless another process recording into the same file took that id first (then
  // SessionOpened::recorded_id tells the one it got, and the next keys start after it).
  SessionKey new_session_key();

  // Queues a batch for the storage thread. Callable from any thread or strand. Suspends while
  // the queue is full, in batches or in octets (backpressure) and never drops a batch while the
  // recorder runs. Records of one session must be submitted in order (one session = one coroutine
  // awaiting each submit does that). A batch is written in a single transaction.
  //
  // If the batch contains a SessionClosed or a SessionMessage, submit() returns only after the
  // transaction holding it was committed (or the recorder failed), and such a transaction is
  // committed as soon as nothing else is queued: a session or message that has finished is on
  // disk and survives a kill -9 of the process before its client is told.
  //
  // The calling coroutine's cancellation does not interrupt a submit once it has started
  // (losing the closing records of a cancelled session would be worse than the short wait).
  // Note that with asio's default throw_if_cancelled(true), `co_await submit(...)` in an
  // already-cancelled coroutine throws before submit() runs; reset the cancellation state
  // (asio::this_coro::reset_cancellation_state()) before recording a cancelled session's end.
  //
  // The Recorder must outlive every pending submit(), and an io_context running submitting
  // coroutines must not be destroyed while a submit() from it is pending: call stop() first.
  // Batches submitted after stop() began are dropped and counted in stats().late.
  asio::awaitable<void> submit(std::vector<Record> batch);

  // What queue() queued: committed() returns once submit() would have (at once for a batch
  // holding no SessionClosed and no SessionMessage). Awaited once.
  class Queued {
   public:
    asio::awaitable<void> committed();

   private:
    friend class Recorder;
    std::shared_ptr<void> ack_;
  };

  // submit() in two halves: returns once the batch is queued (after any wait for room, the
  // backpressure), in order with the caller's other batches, and leaves the wait for its commit
  // to whoever awaits committed(). A session reading its server goes on reading while a reply it
  // holds for a commit waits (the server's next reply, a 221, is then read and recorded as it
  // comes), without giving up the order of its records.
  asio::awaitable<Queued> queue(std::vector<Record> batch);

  // Drains everything already submitted (including submits suspended on a full queue), commits,
  // closes the database and joins the storage thread. Idempotent and thread-safe; must not be
  // called from on_failure.
  void stop();

  // Sticky: true once a write failed (disk full, I/O error, a lock held past lock_wait). The
  // recorder keeps accepting and discarding batches so producers never block on a dead queue;
  // the proxy decides whether to carry on unrecorded.
  bool failed() const;
  std::string failure_reason() const;

  std::array<std::uint8_t, 32> fingerprint_key() const;
  std::string path() const;
  RecorderStats stats() const;

  struct Impl;

 private:
  explicit Recorder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailtap::storage
