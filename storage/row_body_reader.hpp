// Body octets a database row holds past its message's first kInlineBodyOctets (recorded before
// schema v6, when no body file took them), read a piece at a time: SQLite's incremental blob
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

 private:
  Status opened();

  std::string path_;
  OpenOptions options_;
  Database db_;
};

}  // namespace mailtap::storage
