// messages.sha256 is computed where the body is written, on the storage thread: hashing every
// body octet on the relay thread made it the slowest stage of a recorded relay (about a fifth of
// its CPU, docs/benchmarks.md), while the storage thread reads the same octets anyway. The
// digest is over the body as the server stored it: DATA text loses its transparency dots and
// terminator (smtp::DataTextUnstuffer), BDAT chunks count as they are. Octets past --max-body
// arrive as SessionBodyTail records: hashed, not stored.
#pragma once

#include <openssl/sha.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy/smtp/message_body.hpp"
#include "storage/records.hpp"

namespace mailtap::storage {

class MessageDigests {
 public:
  // A piece of the body of transaction `transaction` of session `key`, as relayed (DATA text or
  // a BDAT chunk's payload, `kind` saying which). Transaction 0 (a chunk without MAIL) is none.
  void add(SessionKey key, std::uint64_t transaction, smtp::EventKind kind, std::string_view wire);
  // The body's SHA-256 in lower-case hex (that of the empty body when none arrived), and forgets
  // its state.
  std::string finish(SessionKey key, std::uint64_t transaction);
  // The session ended: its transactions that yielded no message (refused, cut off) are dropped.
  void forget(SessionKey key) { sessions_.erase(key); }
  void clear() { sessions_.clear(); }

 private:
  struct Digest {
    Digest() { SHA256_Init(&sha); }
    SHA256_CTX sha{};
    smtp::DataTextUnstuffer unstuffer;
    bool via_bdat = false;
  };
  // Per session, by transaction: a BDAT client may pipeline the next transaction's chunks
  // behind the last one's.
  std::unordered_map<SessionKey, std::map<std::uint64_t, Digest>> sessions_;
};

}  // namespace mailtap::storage
