#include "storage/row_body_reader.hpp"

namespace mailtap::storage {

Status RowBodyReader::opened() {
  if (db_.is_open()) return {};
  return Database::open(path_, options_, db_);
}

Status RowBodyReader::read_event(std::int64_t row_id, std::int64_t session_id, std::uint64_t seq,
                                 std::int64_t offset, std::int64_t length, std::string& out) {
  return read_row({"events", "bytes", "event"}, row_id, session_id, seq, offset, length, out);
}

Status RowBodyReader::read_message_body(std::int64_t message_id, std::int64_t session_id,
                                        std::uint64_t seq, std::int64_t offset, std::int64_t length,
                                        std::string& out) {
  return read_row({"messages", "body", "message"}, message_id, session_id, seq, offset, length,
                  out);
}

Status RowBodyReader::read_row(const Column& column, std::int64_t row_id, std::int64_t session_id,
                               std::uint64_t seq, std::int64_t offset, std::int64_t length,
                               std::string& out) {
  out.clear();
  if (Status s = opened(); !s.ok()) return s;
  // The check and the read from one snapshot.
  if (Status s = db_.exec("BEGIN"); !s.ok()) return s;
  Statement st;
  Status s = db_.prepare("SELECT 1 FROM " + std::string(column.table) +
                             " WHERE id = ?1 AND session_id = ?2 AND seq = ?3",
                         st);
  bool found = false;
  if (s.ok()) {
    st.bind_int(1, row_id).bind_int(2, session_id).bind_int(3, static_cast<std::int64_t>(seq));
    const Statement::Step step = st.step();
    found = step == Statement::Step::row;
    if (step == Statement::Step::error) s = st.last_error();
    st.reset();
  }
  if (s.ok() && !found) {
    s = Status::error(kSqliteError, "'" + path_ + "': " + column.what + " " + std::to_string(seq) +
                                        " of session " + std::to_string(session_id) +
                                        " is no longer in the database (pruned?)");
  }
  if (s.ok()) s = db_.read_blob(column.table, column.name, row_id, offset, length, out);
  db_.exec("COMMIT");
  return s;
}

}  // namespace mailtap::storage
