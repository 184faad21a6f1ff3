// Body octets a database row holds past its message's first kInlineBodyOctets (recorded before
// schema v6, when no body file took them), and a message's body its own row holds (before
// schema v4, when the body was stored there), read a piece at a time: SQLite's incremental blob
// I/O, so the whole value is never loaded, on a connection of its own, opened at the first read
// and each read its own short transaction, so that a reader passing them on holds no lock (and
// no other connection's transaction) while its client takes the octets.
#pragma once

#include <cstdint>
#include <string>

#include "storage/database.hpp"

namespace mailtap::storage {

class RowBodyReader {
 public:
  RowBodyReader(std::string db_path, OpenOptions options)
      : path_(std::move(db_path)), options_(options) {}

  // `length` octets from `offset` of the bytes of event row `row_id`, which must still be
  // event `seq` of session `session_id` (prune may have removed it since, and a later session
  // taken its id): else an error saying so.
  Status read_event(std::int64_t row_id, std::int64_t session_id, std::uint64_t seq,
                    std::int64_t offset, std::int64_t length, std::string& out);

  // The same, of the body in message row `message_id` (MessageRow::body_left_in_row), which
  // must still be message `seq` of session `session_id`.
  Status read_message_body(std::int64_t message_id, std::int64_t session_id, std::uint64_t seq,
                           std::int64_t offset, std::int64_t length, std::string& out);

 private:
  struct Column {
    const char* table;
    const char* name;
    const char* what;  // what a row is, as the error names it
  };
  Status read_row(const Column& column, std::int64_t row_id, std::int64_t session_id,
                  std::uint64_t seq, std::int64_t offset, std::int64_t length, std::string& out);
  Status opened();

  std::string path_;
  OpenOptions options_;
  Database db_;
};

}  // namespace mailtap::storage
