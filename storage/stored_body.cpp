#include "storage/stored_body.hpp"

#include <algorithm>
#include <memory>

#include "proxy/smtp/message_body.hpp"
#include "storage/row_body_reader.hpp"

namespace mailtap::storage {

namespace {

// Gathers what the unstuffer keeps (spans cut at every stuffed dot) into chunks of
// kChunkOctets, so the caller's writes stay few and large.
class Chunker {
 public:
  explicit Chunker(const std::function<bool(std::string_view)>& emit) : emit_(emit) {
    chunk_.reserve(StoredBodyReader::kChunkOctets);
  }
  bool open() const { return open_; }
  void take(std::string_view kept) {
    while (!kept.empty() && open_) {
      const std::size_t n = std::min(kept.size(), StoredBodyReader::kChunkOctets - chunk_.size());
      chunk_.append(kept.substr(0, n));
      kept.remove_prefix(n);
      if (chunk_.size() == StoredBodyReader::kChunkOctets) flush();
    }
  }
  void flush() {
    if (!chunk_.empty() && open_) open_ = emit_(chunk_);
    chunk_.clear();
  }

 private:
  const std::function<bool(std::string_view)>& emit_;
  std::string chunk_;
  bool open_ = true;
};

// Drops the pieces from the first the database does not hold (in the body file): false if
// there was one.
bool only_inline(std::vector<StoredBodyPiece>& pieces) {
  const auto left = std::find_if(pieces.begin(), pieces.end(), [](const StoredBodyPiece& p) {
    return p.file_offset.has_value();
  });
  const bool all = left == pieces.end();
  pieces.erase(left, pieces.end());
  return all;
}

// A preview's pieces: those up to the first the database does not hold, in the first batch
// and (with `more`) in each next one, `complete` false once one was cut short, the last read.
void inline_pieces_only(std::vector<StoredBodyPiece>& first, StoredBodyReader::MorePieces& more,
                        bool& complete) {
  if (!only_inline(first)) {
    complete = false;
    more = {};
  } else if (more) {
    more = [&complete, all = std::move(more)](std::uint64_t after,
                                              std::vector<StoredBodyPiece>& out, std::string& e) {
      if (!all(after, out, e)) return false;
      if (!only_inline(out)) complete = false;
      return true;
    };
  }
}

Status no_row_reader(std::int64_t session_id) {
  return Status::error(kSqliteCantOpen, "no reader of the rows was made for session " +
                                            std::to_string(session_id) + " when they were read");
}

}  // namespace

StoredBodyReader::StoredBodyReader(const StoredMessage& message, MorePieces more)
    : message_(message), more_(std::move(more)) {}

bool StoredBodyReader::read(const std::function<bool(std::string_view)>& emit, std::string& error) {
  error.clear();
  if (message_.pieces_left && !more_) {  // a part of the body is no body
    error = "message " + std::to_string(message_.row.seq) + " of session " +
            std::to_string(message_.session_id) + ": its body's later pieces were not asked for";
    return false;
  }
  const smtp::Message& m = message_.row.message;
  Chunker out(emit);
  const auto take = [&out](std::string_view kept) { out.take(kept); };
  std::string buffer;
  if (m.transaction == 0) {  // recorded before schema v4: the body itself, in the row
    take(m.body);
    const std::int64_t left = message_.row.body_left_in_row.value_or(0);
    for (std::int64_t done = 0; done < left && out.open();) {
      const std::int64_t n = std::min(left - done, static_cast<std::int64_t>(kChunkOctets));
      if (Status s = read_message_row(done, n, buffer); !s.ok()) {
        out.flush();
        error = s.message;
        return false;
      }
      take(buffer);
      done += n;
    }
    out.flush();
    return true;
  }
  smtp::DataTextUnstuffer unstuffer;
  const auto wire = [&](std::string_view bytes) {
    if (m.via_bdat)
      take(bytes);
    else
      unstuffer.append(bytes, take);
  };
  const auto open = [&out] { return out.open(); };
  // The first batch, then (with more_) each next one in place of the one before.
  std::vector<StoredBodyPiece> batch;
  for (const std::vector<StoredBodyPiece>* pieces = &message_.pieces;;) {
    if (!read_pieces(*pieces, wire, open, error)) {
      out.flush();
      return false;
    }
    if (!out.open()) return true;
    if (!more_ || pieces->size() < kBodyPieceBatch) break;
    std::vector<StoredBodyPiece> next;
    if (!more_(pieces->back().seq, next, error)) {
      out.flush();
      return false;
    }
    batch = std::move(next);
    pieces = &batch;
  }
  if (!m.via_bdat) unstuffer.finish(take);
  out.flush();
  return true;
}

bool StoredBodyReader::read_pieces(const std::vector<StoredBodyPiece>& pieces,
                                   const std::function<void(std::string_view)>& wire,
                                   const std::function<bool()>& open, std::string& error) {
  std::string buffer;
  for (const StoredBodyPiece& p : pieces) {
    if (!p.file_offset) wire(p.bytes);
    // A piece in the body file is one read of the client (256 KiB), but its length comes from
    // the database (and one left in its row, recorded before schema v6, may be a whole body):
    // read in bounded steps whatever it says.
    for (std::int64_t done = 0; p.file_offset && done < p.file_length && open();) {
      const std::int64_t n =
          std::min(p.file_length - done, static_cast<std::int64_t>(kChunkOctets));
      if (Status s = read_stored(p, done, n, buffer); !s.ok()) {
        error = s.message;
        return false;
      }
      wire(buffer);
      done += n;
    }
    if (!open()) return true;
  }
  return true;
}

Status StoredBodyReader::read_stored(const StoredBodyPiece& piece, std::int64_t at,
                                     std::int64_t length, std::string& out) {
  if (piece.row_id) {
    if (!message_.row_bodies) return no_row_reader(message_.session_id);
    return message_.row_bodies->read_event(*piece.row_id, message_.session_id, piece.seq, at,
                                           length, out);
  }
  if (!message_.body_file) {
    return Status::error(kSqliteCantOpen, "no body file was opened for session " +
                                              std::to_string(message_.session_id) +
                                              " when its rows were read");
  }
  return message_.body_file->read(message_.session_id, *piece.file_offset + at, length, out);
}

Status StoredBodyReader::read_message_row(std::int64_t at, std::int64_t length, std::string& out) {
  if (!message_.row_bodies) return no_row_reader(message_.session_id);
  return message_.row_bodies->read_message_body(message_.row.id, message_.session_id,
                                                message_.row.seq, at, length, out);
}

bool StoredBodyReader::size(std::uint64_t& out, std::string& error) {
  out = 0;
  return read(
      [&out](std::string_view chunk) {
        out += chunk.size();
        return true;
      },
      error);
}

bool SessionOctets::event_bytes(const EventRow& event, const Emit& emit, std::string& error) {
  error.clear();
  if (!event.file_offset) {
    emit(event.event.bytes);
    return true;
  }
  std::string buffer;
  for (std::int64_t done = 0; done < event.file_length;) {
    const std::int64_t n = std::min(event.file_length - done,
                                    static_cast<std::int64_t>(StoredBodyReader::kChunkOctets));
    const Status s = read_stored(event, done, n, buffer);
    if (!s.ok()) {
      error = s.message;
      return false;
    }
    if (!emit(buffer)) return true;
    done += n;
  }
  return true;
}

Status SessionOctets::read_stored(const EventRow& event, std::int64_t at, std::int64_t length,
                                  std::string& out) const {
  const std::int64_t id = detail_.session.id;
  if (event.row_id) {
    if (!detail_.row_bodies) return no_row_reader(id);
    return detail_.row_bodies->read_event(*event.row_id, id, event.seq, at, length, out);
  }
  if (!detail_.body_file) {
    return Status::error(kSqliteCantOpen, "no body file was opened for session " +
                                              std::to_string(id) + " when its rows were read");
  }
  return detail_.body_file->read(id, *event.file_offset + at, length, out);
}

bool SessionOctets::stored(const MessageRow& message, bool inline_only, StoredMessage& m,
                           StoredBodyReader::MorePieces& more, bool& complete,
                           std::string& error) const {
  m.session_id = detail_.session.id;
  m.body_file = detail_.body_file;
  m.row_bodies = detail_.row_bodies;
  m.row.id = message.id;
  m.row.seq = message.seq;
  m.row.message.transaction = message.message.transaction;
  m.row.message.via_bdat = message.message.via_bdat;
  complete = true;
  if (message.message.transaction == 0) {  // before v4: the body is in the message's row
    m.row.message.body = message.message.body;
    m.row.body_left_in_row = message.body_left_in_row;
    if (inline_only && message.body_left_in_row) complete = false;
  }
  if (pieces_) {
    if (message.message.transaction != 0 && !pieces_(message, 0, m.pieces, error)) return false;
    if (m.pieces.size() >= kBodyPieceBatch) {
      more = [this, &message](std::uint64_t after, std::vector<StoredBodyPiece>& out,
                              std::string& e) { return pieces_(message, after, out, e); };
    }
  } else {
    for (const EventRow& e : detail_.events) {
      if (!smtp::is_body_of(e.event, message.message)) continue;
      StoredBodyPiece p;
      p.bytes = e.event.bytes;  // the database's part: a message's first kInlineBodyOctets at most
      p.file_offset = e.file_offset;
      p.file_length = e.file_length;
      p.row_id = e.row_id;
      p.seq = e.seq;
      m.pieces.push_back(std::move(p));
    }
  }
  if (inline_only) inline_pieces_only(m.pieces, more, complete);
  return true;
}

StoredBodyReader::MorePieces more_stored_pieces(Reader& reader, const StoredMessage& message,
                                                std::mutex* lock) {
  if (!message.pieces_left || message.pieces.empty()) return {};
  struct Reading {
    std::int64_t session_id;
    std::string started_at;
    MessageRow row;
    std::uint64_t first_batch_end;
    InlineBodyBudget after_first_batch;
    InlineBodyBudget budget;  // of the reading under way
  };
  auto reading = std::make_shared<Reading>(Reading{message.session_id,
                                                   message.pieces_left->session_started_at,
                                                   message.row,
                                                   message.pieces.back().seq,
                                                   message.pieces_left->budget,
                                                   {}});
  reading->row.message.recipients.clear();  // only its transaction is needed
  return [&reader, lock, reading](std::uint64_t after, std::vector<StoredBodyPiece>& out,
                                  std::string& error) {
    // A reading of the body from its start comes here first past the first batch.
    if (after == reading->first_batch_end) reading->budget = reading->after_first_batch;
    std::unique_lock<std::mutex> held;
    if (lock) held = std::unique_lock(*lock);
    return reader.message_body_pieces(reading->session_id, reading->started_at, reading->row, after,
                                      kBodyPieceBatch, reading->budget, out, error);
  };
}

bool SessionOctets::message_body(const MessageRow& message, const Emit& emit, std::string& error) {
  bool complete = true;
  StoredMessage m;
  StoredBodyReader::MorePieces more;
  if (!stored(message, /*inline_only=*/false, m, more, complete, error)) return false;
  return StoredBodyReader(m, std::move(more)).read(emit, error);
}

bool SessionOctets::message_body_preview(const MessageRow& message, const Emit& emit,
                                         bool& complete, std::string& error) {
  StoredMessage m;
  StoredBodyReader::MorePieces more;
  if (!stored(message, /*inline_only=*/true, m, more, complete, error)) return false;
  if (complete || m.row.message.transaction != 0)
    return StoredBodyReader(m, std::move(more)).read(emit, error);
  // Recorded before schema v4, a body of more than kInlineBodyOctets in the message's row: its
  // first kInlineBodyOctets, as a body recorded since would have in the database.
  std::size_t left = kInlineBodyOctets;
  return StoredBodyReader(m).read(
      [&](std::string_view chunk) {
        const std::string_view kept = chunk.substr(0, left);
        left -= kept.size();
        return (kept.empty() || emit(kept)) && left > 0;
      },
      error);
}

}  // namespace mailtap::storage
