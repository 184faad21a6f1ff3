// The mail transactions of one session as the upstream sees them: which transaction a MAIL
// begins, which one each later command and body octet belongs to, and the Message each yields
// once its final reply arrives. Pipelined commands (and BDAT chunks) are sent before the MAIL
// reply, so a transaction starts when MAIL is sent; replies find theirs through the handle their
// command kept, and a refused MAIL makes it produce no Message.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/event.hpp"

namespace mailtap::smtp {

struct Reply;

struct Transaction {
  Message message;       // sha256_hex stays empty: the recorder computes it as it stores the body
  bool settled = false;  // its MAIL was refused, or its Message recorded: no (further) Message
  std::uint64_t recorded = 0;    // body octets recorded in events so far (capped by --max-body)
  std::uint64_t unrecorded = 0;  // octets cut by the cap since the last body event was closed
};

class TransactionTracker {
 public:
  using Clock = std::chrono::system_clock;
  using Handle = std::shared_ptr<Transaction>;

  // The transaction the client is sending (from its MAIL on), if any.
  const Handle& current() const { return current_; }
  // A transaction is open: begun, and neither refused nor recorded.
  bool open() const { return current_ && !current_->settled; }

  // The client's MAIL went upstream: a new transaction, numbered from 1, unless one is open (the
  // server refuses that MAIL, RFC 5321 §4.1.4, and nothing changes: nullptr).
  Handle begin(std::string_view mail_line, Clock::time_point now);
  // Body octets as the server stores them, counted for the current transaction.
  void add_body(std::string_view bytes);
  // The client has sent the whole message (end of data, BDAT LAST): later commands belong to
  // no transaction; its final reply finds it through the returned handle.
  Handle complete() { return std::move(current_); }
  // A positive reply to RSET, EHLO or HELO ended `t`, unless a later MAIL began another.
  void reset(const Handle& t) {
    if (current_ == t) current_.reset();
  }

  static void refused(Transaction& t) { t.settled = true; }
  static void add_recipient(Transaction& t, Recipient r) {
    t.message.recipients.push_back(std::move(r));
  }
  // The final reply to the message's end: its Message, once (nullopt if refused or already done).
  static std::optional<Message> finish(Transaction& t, const Reply& final_reply,
                                       Clock::time_point now);

 private:
  Handle current_;
  std::uint64_t begun_ = 0;
};

}  // namespace mailtap::smtp
