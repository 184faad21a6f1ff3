#include "tools/recorded_reply_advice.hpp"

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

}  // namespace mailtap::tools
