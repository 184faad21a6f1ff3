// A stored message's body as the server got it (DATA text un-dot-stuffed, BDAT chunks
// concatenated), handed out in chunks of bounded size as it is read: the body file a piece at a
// time, outside any transaction, so a reader passes on a body of any size with a fixed buffer
// and holds no lock while its client takes the octets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "storage/body_files.hpp"
#include "storage/reader.hpp"

namespace mailtap::storage {

class StoredBodyReader {
 public:
  static constexpr std::size_t kChunkOctets = std::size_t{256} * 1024;

  // Keeps a reference to `message` (from Reader::stored_message), which must outlive it. Every
  // read and size() reads the body file the message holds (StoredMessage::body_file), opened
  // before its rows were read: should prune remove it and a new session with the same id make
  // another in its place, the reader keeps the octets of the message's own, never the new
  // session's mail, so the length size() told is that of the octets read() then hands out.
  explicit StoredBodyReader(const StoredMessage& message);

  // Calls `emit` with the body's octets, in order, in chunks of at most kChunkOctets; stops
  // early, returning true, once `emit` returns false. Returns false with `error` set if a body
  // file cannot supply its octets (removed by prune, cut short), after emitting what came before.
  bool read(const std::function<bool(std::string_view)>& emit, std::string& error);

  // The body's length: a read that keeps nothing. (A DATA body is shorter than what was stored
  // by its stuffed dots and its terminator.)
  bool size(std::uint64_t& out, std::string& error);

 private:
  // The octets at `offset` of the message's body file.
  Status read_file(std::int64_t offset, std::int64_t length, std::string& out);

  const StoredMessage& message_;
};

}  // namespace mailtap::storage
