#include "tools/recorded_reply_advice.hpp"

#include "proxy/smtp/command.hpp"

namespace mailtap::tools {

namespace {

bool is_reply(const smtp::Event& e) {
  return e.reply_code != 0 && (e.direction == smtp::Direction::upstream_to_client ||
                               e.direction == smtp::Direction::upstream_to_mailtap ||
                               e.direction == smtp::Direction::mailtap_to_client);
}

}  // namespace

std::optional<ReplyAdvice> recorded_reply_advice(const smtp::Event& e) {
  if (!is_reply(e)) return std::nullopt;
  const ReplyFrom from =
      e.direction == smtp::Direction::mailtap_to_client ? ReplyFrom::mailtap : ReplyFrom::server;
  // The meaning follows the command the reply answers (the event's verb), not its status alone.
  ReplyAdvice advice = advise_reply(e.reply_code, e.enhanced_status, e.bytes, from, e.verb);
  if (advice.meaning.empty()) return std::nullopt;
  return advice;
}

const smtp::Event& AnsweredCommands::as_answered(const smtp::Event& e) {
  if (e.verb != "BDAT") return e;
  if (e.kind == smtp::EventKind::command && (e.direction == smtp::Direction::client_to_upstream ||
                                             e.direction == smtp::Direction::client_to_mailtap)) {
    unanswered_.push_back(smtp::parse_bdat_line(e.bytes).last);
    return e;
  }
  if (!is_reply(e) || unanswered_.empty()) return e;
  const bool last = unanswered_.front();
  unanswered_.pop_front();
  reply_ = e;
  reply_.verb = last ? kBdatLastVerb : kBdatChunkVerb;
  return reply_;
}

}  // namespace mailtap::tools
