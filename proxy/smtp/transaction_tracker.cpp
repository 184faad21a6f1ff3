#include "proxy/smtp/transaction_tracker.hpp"

#include "proxy/common/text.hpp"
#include "proxy/smtp/reply_parser.hpp"

namespace mailtap::smtp {

TransactionTracker::Handle TransactionTracker::begin(std::string_view mail_line,
                                                     Clock::time_point now) {
  auto t = std::make_shared<Transaction>();
  t->message.transaction = ++begun_;
  t->message.mail_from = std::string(mail_line);
  t->message.started = now;
  return t;
}

void TransactionTracker::mail_reply(const Handle& t, bool positive) {
  if (!t) return;
  if (positive) {
    active_ = t;
  } else {
    t->settled = true;
  }
}

void TransactionTracker::rcpt_reply(Recipient r) {
  if (!active_) return;
  Transaction& t = *active_;
  r.position = t.rcpts++;
  const std::size_t octets = r.command.size() + r.reply.size();
  const bool accepted = r.reply_code >= 200 && r.reply_code < 300;
  const std::size_t bound = accepted ? kRecipientOctetsKept : kRefusedRecipientOctetsKept;
  if (t.recipient_octets + octets > bound) {  // in the events only
    RecipientsLeftOut& left_out = *t.message.recipients_left_out;
    ++left_out.rcpts;
    if (accepted) ++left_out.accepted;
    return;
  }
  t.recipient_octets += octets;
  t.message.recipients.push_back(std::move(r));
}

std::optional<Message> TransactionTracker::finish(Handle t, const Reply& final_reply,
                                                  Clock::time_point now) {
  if (!t) return std::nullopt;
  if (active_ == t) active_.reset();
  if (t->settled) return std::nullopt;
  t->settled = true;
  Message m = std::move(t->message);
  m.final_code = final_reply.code;
  m.final_reply = std::string(strip_crlf(final_reply.raw));
  m.finished = now;
  return m;
}

std::string recipients_left_out_note(const Message& m) {
  const RecipientsLeftOut left_out = m.recipients_left_out.value_or(RecipientsLeftOut{});
  return std::string(recipients_left_out_note_prefix) + std::to_string(left_out.rcpts) +
         " RCPTs (" + std::to_string(left_out.accepted) + " accepted) of message transaction " +
         std::to_string(m.transaction) +
         " not kept in its recipients: past what a message keeps (refused ones past " +
         std::to_string(kRefusedRecipientOctetsKept / 1024) + " KiB of command and reply text, " +
         "any past " + std::to_string(kRecipientOctetsKept / (1024 * 1024)) +
         " MiB); each is in the events";
}

void TransactionTracker::Forecast::mail(const Handle& t) {
  if (transaction_) {
    certain_ = false;  // refused as nested, or accepted if the open one's MAIL was refused
    return;
  }
  transaction_ = t;
}

void TransactionTracker::Forecast::rset(bool with_arguments) {
  if (!with_arguments) {
    reset();
    return;
  }
  if (transaction_) certain_ = false;  // a server may refuse it (501) and keep the transaction
  transaction_.reset();
}

}  // namespace mailtap::smtp
