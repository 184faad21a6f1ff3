#include "proxy/smtp/transaction_tracker.hpp"

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"
#include "proxy/smtp/reply_parser.hpp"

namespace mailtap::smtp {

TransactionTracker::Handle TransactionTracker::begin(std::string_view mail_line,
                                                     Clock::time_point now) {
  if (open()) return nullptr;
  current_ = std::make_shared<Transaction>();
  current_->message.transaction = ++begun_;
  current_->message.mail_from = std::string(mail_line);
  current_->message.started = now;
  SHA256_Init(&current_->sha);
  return current_;
}

void TransactionTracker::add_body(std::string_view bytes) {
  if (!current_ || bytes.empty()) return;
  current_->message.size += bytes.size();
  // Hashing the body is a large part of the relay's CPU per MiB; with nothing to record there
  // is nobody to hand the hash to.
  if (hash_bodies_) SHA256_Update(&current_->sha, bytes.data(), bytes.size());
}

std::optional<Message> TransactionTracker::finish(Transaction& t, const Reply& final_reply,
                                                  Clock::time_point now) {
  if (t.settled) return std::nullopt;
  t.settled = true;
  Message m = std::move(t.message);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &t.sha);
  m.sha256_hex = to_hex(digest, sizeof digest);
  m.final_code = final_reply.code;
  m.final_reply = std::string(strip_crlf(final_reply.raw));
  m.finished = now;
  return m;
}

}  // namespace mailtap::smtp
