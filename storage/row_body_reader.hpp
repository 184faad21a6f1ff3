// Body octets a database row holds past its message's first kInlineBodyOctets (recorded before
// schema v6, when no body file took them), and a message's body its own row holds (before
// schema v4, when the body was stored there), read a piece at a time: SQLite's incremental blob
// I/O, so the whole value is never loaded, on a connection of its own, opened at the first read
// and each read its own short transaction, so that a reader passing them on holds no lock (and
// no other connection's transaction) while its client takes the octets.
//
// SQLite keeps a long value in a chain of overflow pages, each naming the next, and a read
// from offset N walks the chain from its first page to N: a 64 MiB value read 256 KiB at a
// time, each read in a transaction of its own, walked 32 MiB of pages per read on average (2
// million page reads, 6 s, where one read of it reads 16,000). So a read from offset N also
// reads up to N octets past those asked for (at most kMostReadAhead), in the same transaction,
// and the reads after it take them from there: read in order 256 KiB at a time, a value is read
// from the database at offsets that about double up to 16 MiB, then every 8 MiB: 64 MiB in 12
// reads, whose walks come to 3.6 times its pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/database.hpp"

namespace mailtap::storage {

class RowBodyReader {
 public:
  // The most octets read ahead of a read: held until they are taken, their memory until the
  // value's last octets are (or the reader is gone).
  static constexpr std::int64_t kMostReadAhead = std::int64_t{8} * 1024 * 1024;

  RowBodyReader(std::string db_path, OpenOptions options)
      : path_(std::move(db_path)), options_(options) {}

  // `length` octets from `offset` of the bytes of event row `row_id`, which must still be
  // event `seq` of session `session_id` (prune may have removed it since, and a later session
  // taken its id) when the octets are read from the database: else an error saying so. Octets
  // read ahead by a read before are taken from those, from that read's snapshot (of the same
  // row, so never another session's).
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

  // Memory of its own for the octets read ahead, mapped and unmapped whole. From malloc, a
  // block this large, once freed, raises glibc's mmap threshold to its size, and the smaller
  // blocks every request frees after it then stay in its heap: mailtap web held 25 MiB more
  // after a few requests for a message recorded before schema v4, not 8. Pages never read into
  // take no memory.
  class Pages {
   public:
    Pages() = default;
    ~Pages() { release(); }
    Pages(const Pages&) = delete;
    Pages& operator=(const Pages&) = delete;
    // At least `size` octets (those it has if as many): false with errno if they cannot be had.
    bool reserve(std::size_t size);
    void release();
    char* data() const { return static_cast<char*>(at_); }

   private:
    void* at_ = nullptr;
    std::size_t size_ = 0;
  };
  // Octets of one row's value read ahead of what was asked for, from `offset` on.
  struct Ahead {
    std::string_view table;  // a Column's: none when it holds no octets to take
    std::int64_t row_id = 0;
    std::int64_t session_id = 0;
    std::uint64_t seq = 0;
    std::int64_t offset = 0;
    std::int64_t held = 0;
    bool value_ends = false;  // they are the value's last: the pages go with them
    Pages pages;              // kept from read to read till then
  };
  // Takes the octets asked for from ahead_ if it holds them all (and lets go of them once they
  // were its last).
  bool take_ahead(const Column& column, std::int64_t row_id, std::int64_t session_id,
                  std::uint64_t seq, std::int64_t offset, std::int64_t length, std::string& out);

  std::string path_;
  OpenOptions options_;
  Database db_;
  Ahead ahead_;
};

}  // namespace mailtap::storage
