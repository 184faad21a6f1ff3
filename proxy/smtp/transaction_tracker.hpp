// The mail transactions of one session as the upstream decides them: which transaction each
// MAIL asks for, which one is open when a later command or body arrives, and the Message each
// yields once its final reply arrives. A pipelining client sends commands before the replies
// that decide what they belong to (RSET, a refused MAIL, a nested MAIL the server refuses), so
// nothing is decided when a command is sent: each MAIL gets a transaction of its own, kept with
// its Pending entry, and replies, which come in order, move the server's state. What a command
// sent now will find is only forecast (Forecast), for the few things decided at that moment
// (the transaction a BDAT chunk is recorded for, STARTTLS).
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

// What a message row keeps of its RCPT commands and their replies, in octets: a client can send
// any number in one transaction, each answered, and every one is in the events already. Refused
// ones are kept while the kept ones come to less than the first bound, accepted ones (whom the
// message went to) while less than the second: hundreds of the longest, thousands of usual ones.
inline constexpr std::size_t kRefusedRecipientOctetsKept = 64 * 1024;
inline constexpr std::size_t kRecipientOctetsKept = 1024 * 1024;

// The note recorded with a message whose recipients leave some RCPTs out, naming its transaction
// (Event::transaction): without it, RCPTs left out at the end leave no gap in the positions and
// the recipients would look complete to someone reading the events. It starts with
// recipients_left_out_note_prefix and the counts; the message's row holds the same counts
// (messages.recipients_left_out), which is what the readers read. Schema migration 10 read them
// from this note's text for rows recorded before: never change its start.
inline constexpr std::string_view recipients_left_out_note_prefix = "recipients left out: ";
std::string recipients_left_out_note(const Message& m);

struct Transaction {
  Message message;       // sha256_hex stays empty: the recorder computes it as it stores the body
  bool settled = false;  // its MAIL was refused, or its Message recorded: no (further) Message
  std::uint64_t recorded = 0;        // body octets recorded in events so far (capped by --max-body)
  std::uint64_t unrecorded = 0;      // octets cut by the cap since the last body event was closed
  std::uint64_t rcpts = 0;           // RCPT replies so far, kept in the message or not
  std::size_t recipient_octets = 0;  // of the recipients kept in the message
};

class TransactionTracker {
 public:
  using Clock = std::chrono::system_clock;
  using Handle = std::shared_ptr<Transaction>;

  // The transaction the server has open, as the replies so far say; nullptr if none.
  const Handle& active() const { return active_; }
  bool open() const { return active_ != nullptr; }

  // The client's MAIL went upstream: the transaction it asks for, numbered from 1 (one number
  // per MAIL). It is not open until the server accepts it (mail_reply).
  Handle begin(std::string_view mail_line, Clock::time_point now);
  // The reply to the MAIL that began `t`. Accepted: `t` is the open transaction (a server that
  // accepts a MAIL inside another has dropped that one). Refused: `t` yields no Message, and
  // what was open stays open (a nested MAIL refused with 503 takes nothing from it).
  void mail_reply(const Handle& t, bool positive);
  // The reply to a RCPT: a recipient of the open transaction, accepted or not (none open: the
  // server refused it as out of sequence, and it belongs to no message). Kept in the message
  // within the bounds above.
  void rcpt_reply(Recipient r);
  // A positive reply to RSET, EHLO or HELO: the server has no transaction open.
  void reset() { active_.reset(); }
  // The final reply to the end of `t`'s message (its end of data, or BDAT LAST): `t` is over,
  // whatever the code, and yields its Message once (nullopt if refused or already done).
  std::optional<Message> finish(Handle t, const Reply& final_reply, Clock::time_point now);

  // Body octets as the server stores them.
  static void add_body(Transaction& t, std::uint64_t octets) { t.message.size += octets; }

  // What a command sent now will find, given the state-changing commands still awaiting their
  // replies, fed oldest first. `certain` is false when that depends on how the server answers
  // them: a MAIL sent while another transaction is or may be open (the server refuses it, or
  // the earlier MAIL was refused and it is accepted), or an RSET with arguments (refused).
  // A MAIL into no transaction is forecast accepted: if it is refused, nothing is open, and a
  // command that needs a transaction is refused too.
  class Forecast {
   public:
    explicit Forecast(Handle active) : transaction_(std::move(active)) {}
    void mail(const Handle& t);
    void rset(bool with_arguments);
    void end() { reset(); }  // an end of data or BDAT LAST: no transaction after its reply
    void reset() {
      transaction_.reset();
      certain_ = true;
    }
    const Handle& transaction() const { return transaction_; }
    bool certain() const { return certain_; }

   private:
    Handle transaction_;
    bool certain_ = true;
  };

 private:
  Handle active_;
  std::uint64_t begun_ = 0;
};

}  // namespace mailtap::smtp
