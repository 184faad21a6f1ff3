// Inside storage::Reader: its connection and the helpers its queries share. Only storage/
// includes this, and the tests' ReaderTestAccess (tests/unit/reader_test_access.hpp).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/row_body_reader.hpp"

namespace mailtap::storage {

// The sessions columns session_from() reads, in its order.
extern const std::string_view kSessionColumns;

SessionRow session_from(const Statement& st);
Clock::time_point time_or_epoch(const std::string& text);
// The time in column `col` (named `name`) of `st`: the epoch for NULL, and for text that is not
// a timestamp, with why added to `unreadable` ("; " between) and `bad` set if given.
Clock::time_point time_column(const Statement& st, int col, std::string_view name,
                              std::string& unreadable, bool* bad = nullptr);
// The event columns event_from() reads, in its order.
extern const std::string_view kEventColumns;
// The messages columns message_from() reads, in its order: "id, seq, mail_from, size, sha256,
// body, body_truncated, via_bdat, final_code, final_reply, started_at, finished_at,
// mail_transaction, recipients_left_out, accepted_recipients_left_out". With `leave_long_body`, a
// body the row holds (recorded before schema v4) longer than kInlineBodyOctets is not loaded
// (length() SQLite reads without the value), and its length follows them (body_left_from).
std::string message_columns(bool leave_long_body);
// From columns first.. of message_columns() (recipients are not filled in, nor is a body stored
// in events: see attach_bodies), and MessageRow::body_left_in_row with `leave_long_body`.
void message_from(const Statement& st, int first, MessageRow& m, bool leave_long_body = false);

// The SQL for an event's bytes that loads no body event's longer than kInlineBodyOctets (such
// a value is never read: InlineBodyBudget; length() SQLite reads without the value), then the
// row's id and that length.
std::string bytes_past_inline_left_sql();

// "('data', 'bdat_chunk')": the kinds of the events that carry a message's body.
std::string body_event_kinds_sql();

struct Reader::Impl {
  Database db;
  OpenOptions open_options;                // db's, for a RowBodyReader's connection
  std::unique_ptr<BodyFileReader> bodies;  // for bytes stored in the body files (schema v6)
  int last_failure = 0;                    // SQLite code of the last read (0: it succeeded)
  // For tests (ReaderTestAccess): runs wherever noted() does, after each read statement has
  // run or failed to be prepared, as if another process committed in between.
  std::function<void()> after_read;

  // A reader of octets left in their rows, on a connection of its own (opened at its first
  // read): the octets are read after this connection's snapshot ended, maybe by another thread.
  std::shared_ptr<RowBodyReader> row_body_reader() const {
    return std::make_shared<RowBodyReader>(db.path(), open_options);
  }

  // Keeps `s` as the result of the last read, for last_failure_is_damage(); every read's
  // prepare and run end here, so no read is judged by the one before it.
  Status noted(Status s) {
    last_failure = s.code;
    if (after_read) after_read();
    return s;
  }

  // From kEventColumns, starting at column `first`, of an event of session `session_id`; reads
  // the bytes from the session's body file when they are there (unless !read_body_file: then
  // `ev.bytes` is left empty).
  Status event_from(const Statement& st, int first, std::int64_t session_id, smtp::Event& ev,
                    bool read_body_file = true);

  Status error(const Statement& st) const {
    Status s = st.last_error();
    return Status::error(s.code, "'" + db.path() + "': " + s.message);
  }

  // Runs `st` to completion calling `row` for each row. A `row` that returns a Status stops
  // the run with the first failure it returns (a body file that cannot supply its bytes).
  template <typename Fn>
  Status each_row(Statement& st, Fn&& row) {
    for (;;) {
      switch (st.step()) {
        case Statement::Step::row:
          if constexpr (std::is_same_v<std::invoke_result_t<Fn&, const Statement&>, Status>) {
            if (Status s = row(st); !s.ok()) {
              st.reset();
              return noted(s);
            }
          } else {
            row(st);
          }
          break;
        case Statement::Step::done:
          st.reset();
          return noted({});
        case Statement::Step::error: {
          Status s = error(st);
          st.reset();
          return noted(s);
        }
      }
    }
  }

  // Prepares `sql` (no parameters) and calls `row` for each row.
  template <typename Fn>
  Status rows(std::string_view sql, Fn&& row) {
    Statement st;
    if (Status s = db.prepare(sql, st); !s.ok()) return noted(s);
    return each_row(st, row);
  }

  // Prepares `sql`, binds `id` to ?1 and calls `row` for each row.
  template <typename Fn>
  Status rows_for(std::string_view sql, std::int64_t id, Fn&& row) {
    Statement st;
    if (Status s = db.prepare(sql, st); !s.ok()) return noted(s);
    st.bind_int(1, id);
    return each_row(st, row);
  }

  Status load(std::int64_t id, std::optional<SessionDetail>& out, Reader::BodyOctets octets,
              Reader::EventRows events);
  // The parts of session `id` that load reads after its row, each appended to `d`. `only`: ""
  // or a condition on the events' columns that selects those loaded (" AND kind IN (...)").
  Status load_certificates(std::int64_t id, SessionDetail& d);
  Status load_events(std::int64_t id, SessionDetail& d, Reader::BodyOctets octets,
                     std::string_view only);
  // BodyOctets::leave_past_inline's: with InlineBodyBudget.
  Status load_events_past_inline_left(std::int64_t id, SessionDetail& d, std::string_view only);
  // EventRows::bodies_only's and none's SessionDetail::events_left: which events were not
  // loaded (with `bodies`, those of the messages' bodies too).
  Status count_events_left(std::int64_t id, SessionDetail& d, bool bodies);
  // EventRows::none's SessionDetail::messages_left.
  Status count_messages_left(std::int64_t id, SessionDetail& d);
  // `leave_long_body`: as message_columns().
  Status load_messages(std::int64_t id, SessionDetail& d, bool leave_long_body);
  Status load_recipients(std::int64_t id, SessionDetail& d);

  // Runs `reads()` in one read transaction, so what they read with several SELECTs comes from
  // one snapshot (the writer may commit between them). A transaction that cannot commit is
  // rolled back all the same: the next read must not find it still open (and this snapshot
  // still held). False with `error` set if it cannot begin; `reads` then does not run.
  template <typename Reads>
  bool in_read_transaction(std::string& error, Reads&& reads) {
    if (Status s = db.exec("BEGIN"); !s.ok()) {
      error = s.message;
      return false;
    }
    reads();
    if (!db.exec("COMMIT").ok()) db.exec("ROLLBACK");
    return true;
  }

  // Runs `load(out)` in one read transaction (in_read_transaction). False with `error` set,
  // and `out` reset.
  template <typename T, typename Load>
  bool in_one_snapshot(std::optional<T>& out, std::string& error, Load&& load) {
    error.clear();
    out.reset();
    Status s;
    if (!in_read_transaction(error, [&] { s = load(out); })) return false;
    if (!s.ok()) {
      out.reset();
      error = s.message;
      return false;
    }
    return true;
  }

  // in_one_snapshot(out, error, load), with session `session_id`'s body file opened before the
  // snapshot and still at its path after: then it is the file of the session the snapshot
  // shows (prune removes a file only after its rows are gone, and a new session with the id
  // makes its own only after that), and `out->body_file` holds it. Another file there by then
  // was put there since the open: the rows are read again, with that one. Only rows with
  // octets in the file (`in_file(*out)`) need it to be the right one.
  template <typename T, typename Load, typename InFile>
  bool in_one_snapshot_with_body_file(std::int64_t session_id, std::optional<T>& out,
                                      std::string& error, Load&& load, InFile&& in_file) {
    constexpr int kTries = 3;
    for (int i = 0; i < kTries; ++i) {
      auto file = std::make_shared<BodyFileReader>(db.path(), /*pinned=*/true);
      file->open_now(session_id);
      if (!in_one_snapshot(out, error, load)) return false;
      if (!out || !in_file(*out) || file->still_at_path()) {
        if (out) out->body_file = std::move(file);
        return true;
      }
      // Not a file that changed but one that could not be opened: trying again would not help.
      if (error = file->open_failure(); !error.empty()) {
        out.reset();
        return false;
      }
    }
    out.reset();
    error = "the body file of session " + std::to_string(session_id) +
            " kept changing while it was being read (prune at work?); try again";
    return false;
  }
};

}  // namespace mailtap::storage
