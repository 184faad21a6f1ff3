#include "proxy/smtp/transaction_tracker.hpp"

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
  static constexpr char hex[] = "0123456789abcdef";
  m.sha256_hex.reserve(2 * sizeof digest);
  for (unsigned char b : digest) {
    m.sha256_hex.push_back(hex[b >> 4]);
    m.sha256_hex.push_back(hex[b & 15]);
  }
  m.final_code = final_reply.code;
  std::string_view line = final_reply.raw;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  m.final_reply = std::string(line);
  m.finished = now;
  return m;
}

}  // namespace mailtap::smtp
