// Inside storage::Reader: its connection and the helpers its queries share. Only storage/
// includes this.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/reader.hpp"

namespace mailtap::storage {

// The sessions columns session_from() reads, in its order.
extern const std::string_view kSessionColumns;

SessionRow session_from(const Statement& st);
Clock::time_point time_or_epoch(const std::string& text);
// The event columns event_from() reads, in its order.
extern const std::string_view kEventColumns;
// From columns first.. of "id, seq, mail_from, size, sha256, body, body_truncated, via_bdat,
// final_code, final_reply, started_at, finished_at, mail_transaction" (recipients are not
// filled in, nor is a body stored in events: see attach_bodies).
void message_from(const Statement& st, int first, MessageRow& m);

struct Reader::Impl {
  Database db;
  std::unique_ptr<BodyFileReader> bodies;  // for bytes stored in the body files (schema v6)
  int last_failure = 0;                    // SQLite code of the last read (0: it succeeded)

  // Keeps `s` as the result of the last read, for last_failure_is_damage(); every read's
  // prepare and run end here, so no read is judged by the one before it.
  Status noted(Status s) {
    last_failure = s.code;
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

  Status load(std::int64_t id, std::optional<SessionDetail>& out, Reader::BodyOctets octets);
  // The parts of session `id` that load reads after its row, each appended to `d`.
  Status load_certificates(std::int64_t id, SessionDetail& d);
  Status load_events(std::int64_t id, SessionDetail& d, Reader::BodyOctets octets);
  Status load_messages(std::int64_t id, SessionDetail& d);
  Status load_recipients(std::int64_t id, SessionDetail& d);

  // Runs `load(out)` in one read transaction, so what it reads with several SELECTs comes from
  // one snapshot (the writer may commit between them). False with `error` set, and `out` reset.
  template <typename T, typename Load>
  bool in_one_snapshot(std::optional<T>& out, std::string& error, Load&& load) {
    error.clear();
    out.reset();
    if (Status s = db.exec("BEGIN"); !s.ok()) {
      error = s.message;
      return false;
    }
    Status s = load(out);
    db.exec("COMMIT");
    if (!s.ok()) {
      out.reset();
      error = s.message;
      return false;
    }
    return true;
  }
};

}  // namespace mailtap::storage
