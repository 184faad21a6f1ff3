#include "proxy/smtp/transaction_tracker.hpp"

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
  return current_;
}

void TransactionTracker::add_body(std::string_view bytes) {
  if (!current_ || bytes.empty()) return;
  current_->message.size += bytes.size();
}

std::optional<Message> TransactionTracker::finish(Transaction& t, const Reply& final_reply,
                                                  Clock::time_point now) {
  if (t.settled) return std::nullopt;
  t.settled = true;
  Message m = std::move(t.message);
  m.final_code = final_reply.code;
  m.final_reply = std::string(strip_crlf(final_reply.raw));
  m.finished = now;
  return m;
}

}  // namespace mailtap::smtp
