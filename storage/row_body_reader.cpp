#include "storage/row_body_reader.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <string>

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

bool RowBodyReader::Pages::reserve(std::size_t size) {
  if (size <= size_) return true;
  release();
  void* at = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (at == MAP_FAILED) return false;
  at_ = at;
  size_ = size;
  return true;
}

void RowBodyReader::Pages::release() {
  if (at_ != nullptr) ::munmap(at_, size_);
  at_ = nullptr;
  size_ = 0;
}

bool RowBodyReader::take_ahead(const Column& column, std::int64_t row_id, std::int64_t session_id,
                               std::uint64_t seq, std::int64_t offset, std::int64_t length,
                               std::string& out) {
  if (ahead_.table != column.table || ahead_.row_id != row_id || ahead_.session_id != session_id ||
      ahead_.seq != seq || offset < ahead_.offset || length < 0 ||
      offset - ahead_.offset > ahead_.held - length) {
    return false;
  }
  out.assign(ahead_.pages.data() + (offset - ahead_.offset), static_cast<std::size_t>(length));
  if (offset - ahead_.offset == ahead_.held - length) {  // its last octets
    ahead_.table = {};
    ahead_.held = 0;
    if (ahead_.value_ends) ahead_.pages.release();
  }
  return true;
}

Status RowBodyReader::read_row(const Column& column, std::int64_t row_id, std::int64_t session_id,
                               std::uint64_t seq, std::int64_t offset, std::int64_t length,
                               std::string& out) {
  out.clear();
  if (take_ahead(column, row_id, session_id, seq, offset, length, out)) return {};
  ahead_.table = {};
  ahead_.held = 0;
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
  const std::int64_t more = std::min(offset, kMostReadAhead);
  if (s.ok() && more == 0) {
    s = db_.read_blob(column.table, column.name, row_id, offset, length, out);
  } else if (s.ok() && length >= 0 &&
             !ahead_.pages.reserve(static_cast<std::size_t>(kMostReadAhead + length))) {
    s = Status::error(kSqliteError, "cannot read " + std::string(column.table) + "." + column.name +
                                        " of row " + std::to_string(row_id) + ": no memory for " +
                                        std::to_string(kMostReadAhead + length) + " octets");
  } else if (s.ok()) {
    s = db_.read_blob(column.table, column.name, row_id, offset, length, ahead_.pages.data(),
                      length + more, ahead_.held);
  }
  db_.exec("COMMIT");
  if (!s.ok() || more == 0) {
    if (!s.ok()) ahead_.pages.release();
    ahead_.held = 0;
    return s;
  }
  ahead_.table = column.table;
  ahead_.row_id = row_id;
  ahead_.session_id = session_id;
  ahead_.seq = seq;
  ahead_.offset = offset;
  ahead_.value_ends = ahead_.held < length + more;
  take_ahead(column, row_id, session_id, seq, offset, length, out);
  return {};
}

}  // namespace mailtap::storage
