#include "storage/message_digests.hpp"

#include "proxy/common/hex.hpp"

namespace mailtap::storage {

void MessageDigests::add(SessionKey key, std::uint64_t transaction, smtp::EventKind kind,
                         std::string_view wire) {
  if (transaction == 0 || wire.empty()) return;
  Digest& d = sessions_[key][transaction];
  if (kind == smtp::EventKind::bdat_chunk) {
    d.via_bdat = true;
    SHA256_Update(&d.sha, wire.data(), wire.size());
    return;
  }
  d.unstuffer.append(
      wire, [&d](std::string_view kept) { SHA256_Update(&d.sha, kept.data(), kept.size()); });
}

std::string MessageDigests::finish(SessionKey key, std::uint64_t transaction) {
  Digest empty;
  auto session = sessions_.find(key);
  Digest* d = &empty;
  if (session != sessions_.end()) {
    if (auto it = session->second.find(transaction); it != session->second.end()) d = &it->second;
  }
  if (!d->via_bdat) {
    d->unstuffer.finish(
        [d](std::string_view kept) { SHA256_Update(&d->sha, kept.data(), kept.size()); });
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &d->sha);
  if (session != sessions_.end()) session->second.erase(transaction);
  return to_hex(digest, sizeof digest);
}

}  // namespace mailtap::storage
