// A stored message's body as the server got it (DATA text un-dot-stuffed, BDAT chunks
// concatenated), handed out in chunks of bounded size as it is read: the body file a piece at a
// time, outside any transaction, so a reader passes on a body of any size with a fixed buffer
// and holds no lock while its client takes the octets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/body_files.hpp"
#include "storage/reader.hpp"

namespace mailtap::storage {

// Pieces of one message's body read from the record at a time: a body has as many as its
// client sent chunks (a million for a million `BDAT 1`), so a reader that gets them from the
// record in batches (SessionOctets::BodyPieces) holds one batch, never all.
inline constexpr std::size_t kBodyPieceBatch = 4096;

class StoredBodyReader {
 public:
  static constexpr std::size_t kChunkOctets = std::size_t{256} * 1024;

  // The pieces of the message's body past `after_seq` (StoredBodyPiece::seq), at most
  // kBodyPieceBatch, appended to `out`: fewer when none is left after them.
  using MorePieces = std::function<bool(std::uint64_t after_seq, std::vector<StoredBodyPiece>& out,
                                        std::string& error)>;

  // Keeps a reference to `message` (from Reader::stored_message), which must outlive it. Every
  // read and size() reads the body file the message holds (StoredMessage::body_file), opened
  // before its rows were read: should prune remove it and a new session with the same id make
  // another in its place, the reader keeps the octets of the message's own, never the new
  // session's mail, so the length size() told is that of the octets read() then hands out.
  // `more`, if given: message.pieces is the first batch of kBodyPieceBatch pieces, and the rest
  // come from `more` a batch at a time as they are read (for each read).
  explicit StoredBodyReader(const StoredMessage& message, MorePieces more = {});

  // Calls `emit` with the body's octets, in order, in chunks of at most kChunkOctets; stops
  // early, returning true, once `emit` returns false. Returns false with `error` set if a body
  // file cannot supply its octets (removed by prune, cut short), after emitting what came before.
  bool read(const std::function<bool(std::string_view)>& emit, std::string& error);

  // The body's length: a read that keeps nothing. (A DATA body is shorter than what was stored
  // by its stuffed dots and its terminator.)
  bool size(std::uint64_t& out, std::string& error);

 private:
  // `length` octets from `at` of `piece`, which is not in the database's row: from the body
  // file, or (recorded before schema v6) its row's bytes past the first kInlineBodyOctets.
  Status read_stored(const StoredBodyPiece& piece, std::int64_t at, std::int64_t length,
                     std::string& out);
  // `length` octets from `at` of a body recorded before schema v4 left in the message's row
  // (MessageRow::body_left_in_row).
  Status read_message_row(std::int64_t at, std::int64_t length, std::string& out);
  // The octets of `pieces` handed to `wire` in order, while `open` says the receiver takes more.
  bool read_pieces(const std::vector<StoredBodyPiece>& pieces,
                   const std::function<void(std::string_view)>& wire,
                   const std::function<bool()>& open, std::string& error);

  const StoredMessage& message_;
  MorePieces more_;
};

// What reads the pieces of `message` (from reader.stored_message) past its first batch, a batch
// at a time, each under `lock` when given (a Reader shared by threads): for StoredBodyReader.
// Empty when it has none left. Each reading of the body from its start reads them anew; one
// of a session pruned since is an error, never another session's octets.
StoredBodyReader::MorePieces more_stored_pieces(Reader& reader, const StoredMessage& message,
                                                std::mutex* lock = nullptr);

// The octets of a session loaded with Reader::BodyOctets::leave_in_file (or leave_past_inline:
// then also those left in their rows, EventRow::row_id), read from the record as they are
// written out: an event's bytes and a message's body in chunks of at most
// StoredBodyReader::kChunkOctets, whatever their size. Every read goes to the body file the
// session holds (SessionDetail::body_file, opened before its rows were read), so what is
// written from one session is that session's, whatever prune does meanwhile.
class SessionOctets {
 public:
  using Emit = std::function<bool(std::string_view)>;

  // The pieces of a message's body (Reader::message_body_pieces), for a session loaded with
  // Reader::EventRows::none, which holds none of its body events: those past `after_seq` (0:
  // from its first), at most kBodyPieceBatch, appended to `out`; false with `error` set.
  using BodyPieces = std::function<bool(const MessageRow& message, std::uint64_t after_seq,
                                        std::vector<StoredBodyPiece>& out, std::string& error)>;

  // Keeps a reference to `detail`, which must outlive it. A message's body is read from the
  // body events `detail` holds, or with `pieces` if given.
  explicit SessionOctets(const SessionDetail& detail, BodyPieces pieces = {})
      : detail_(detail), pieces_(std::move(pieces)) {}

  // The event's bytes: those it holds, or those in the body file. As StoredBodyReader::read:
  // true once all were emitted or `emit` returned false; false with `error` set if the body
  // file cannot supply them.
  bool event_bytes(const EventRow& event, const Emit& emit, std::string& error);

  // The message's body as the server got it (as load_session assembles it), from its body
  // events; as event_bytes.
  bool message_body(const MessageRow& message, const Emit& emit, std::string& error);

  // The same, only from the octets the database holds (the body's first kInlineBodyOctets):
  // no body file is read, and of a body recorded before schema v4 in the message's row its
  // first kInlineBodyOctets. `complete` says whether that was the whole body.
  bool message_body_preview(const MessageRow& message, const Emit& emit, bool& complete,
                            std::string& error);

  // `length` octets from `at` of an event's octets left unread (EventRow::file_offset), from
  // the body file or, recorded before schema v6, its row (EventRow::row_id): a reader that
  // passes them on a piece at a time as it needs them (replay). As StoredBodyReader::read_stored.
  Status read_stored(const EventRow& event, std::int64_t at, std::int64_t length,
                     std::string& out) const;

 private:
  // `more`: set when the body's pieces come from `pieces_` in more than one batch.
  bool stored(const MessageRow& message, bool inline_only, StoredMessage& m,
              StoredBodyReader::MorePieces& more, bool& complete, std::string& error) const;

  const SessionDetail& detail_;
  BodyPieces pieces_;
};

}  // namespace mailtap::storage
