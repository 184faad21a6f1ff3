#include "storage/stored_body.hpp"

#include <algorithm>

#include "proxy/smtp/message_body.hpp"

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

}  // namespace

StoredBodyReader::StoredBodyReader(const StoredMessage& message) : message_(message) {}

bool StoredBodyReader::read(const std::function<bool(std::string_view)>& emit, std::string& error) {
  error.clear();
  const smtp::Message& m = message_.row.message;
  Chunker out(emit);
  const auto take = [&out](std::string_view kept) { out.take(kept); };
  if (m.transaction == 0) {  // recorded before schema v4: the body itself, in the row
    take(m.body);
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
  std::string buffer;
  for (const StoredBodyPiece& p : message_.pieces) {
    if (!p.file_offset) wire(p.bytes);
    // A piece in the body file is one read of the client (256 KiB), but its length comes from
    // the database: read in bounded steps whatever it says.
    for (std::int64_t done = 0; p.file_offset && done < p.file_length && out.open();) {
      const std::int64_t n =
          std::min(p.file_length - done, static_cast<std::int64_t>(kChunkOctets));
      if (Status s = read_file(*p.file_offset + done, n, buffer); !s.ok()) {
        out.flush();
        error = s.message;
        return false;
      }
      wire(buffer);
      done += n;
    }
    if (!out.open()) return true;
  }
  if (!m.via_bdat) unstuffer.finish(take);
  out.flush();
  return true;
}

Status StoredBodyReader::read_file(std::int64_t offset, std::int64_t length, std::string& out) {
  if (!message_.body_file) {
    return Status::error(kSqliteCantOpen, "no body file was opened for session " +
                                              std::to_string(message_.session_id) +
                                              " when its rows were read");
  }
  return message_.body_file->read(message_.session_id, offset, length, out);
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

}  // namespace mailtap::storage
