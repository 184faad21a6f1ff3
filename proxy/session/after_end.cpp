#include "proxy/session/after_end.hpp"

#include "proxy/common/duration.hpp"
#include "proxy/smtp/ending.hpp"
#include "proxy/smtp/reply_parser.hpp"

namespace mailtap {

namespace {

std::string octets_label(std::size_t octets) {
  constexpr std::size_t mib = std::size_t{1} << 20;
  if (octets >= mib && octets % mib == 0) return std::to_string(octets / mib) + " MiB";
  return std::to_string(octets) + " octets";
}

// What was still to go may start inside a reply a partial write had begun: from the next line
// on, which the parser reads as the rest of that reply (or the next one).
std::string_view from_a_line_start(std::string_view bytes) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (bytes.size() >= 4 && digit(bytes[0]) && digit(bytes[1]) && digit(bytes[2]) &&
      (bytes[3] == ' ' || bytes[3] == '-' || bytes[3] == '\r'))
    return bytes;
  const std::size_t eol = bytes.find("\r\n");
  return eol == std::string_view::npos ? std::string_view{} : bytes.substr(eol + 2);
}

}  // namespace

std::string reply_summaries(std::string_view bytes) {
  // A client that stopped reading may have a backlog of thousands: the first few, then a count
  // and the last, which is the one that ended the session.
  constexpr std::size_t named = 3;
  smtp::ReplyParser parser;
  parser.feed(from_a_line_start(bytes));
  std::string out;
  std::string last;
  std::size_t count = 0;
  while (std::optional<smtp::Reply> reply = parser.next()) {
    last = smtp::reply_summary(reply->raw);
    if (++count <= named) out += (out.empty() ? "" : ", ") + last;
  }
  if (count > named)
    out += " and " + std::to_string(count - named) + " more replies, the last " + last;
  return out;
}

std::pair<std::string, std::string> first_and_other_summaries(std::string_view bytes) {
  const std::string_view from = from_a_line_start(bytes);
  smtp::ReplyParser parser;
  parser.feed(from);
  const std::optional<smtp::Reply> first = parser.next();
  if (!first) return {};
  return {smtp::reply_summary(first->raw), reply_summaries(from.substr(first->raw.size()))};
}

std::optional<std::string> undelivered_note(std::string_view last_replies,
                                            std::string_view not_read, bool client_gone) {
  if (last_replies.empty()) return std::nullopt;
  const std::string what = "; replies that did not reach the client: " + std::string(last_replies);
  // mailtap's reset, for a client that did not read: the client may well be there still.
  if (!not_read.empty()) return std::string(not_read) + what;
  // A client that closes with replies unread resets the connection, as does one that had hung
  // up before they came (the FIN a half-close sends says not which: see Dialogue).
  if (client_gone)
    return std::string(smtp::client_closed_with_replies_due) + "it reset the connection" + what;
  return std::nullopt;
}

std::optional<std::string> discarded_note(const net::Lingered& lingered,
                                          const net::LingerLimits& limits, bool reset_unread,
                                          bool greeted) {
  if (lingered.discarded == 0) return std::nullopt;
  std::string note =
      std::to_string(lingered.discarded) +
      (greeted ? " octets the client sent after the end were discarded unread"
               : " octets the client sent were discarded unread: the session ended before the "
                 "client was greeted, so nothing it sent was read");
  if (lingered.octet_limit)
    note += " (closed before the client did: the lingering close reads at most " +
            octets_label(limits.octets) + ")";
  else if (lingered.time_limit)
    note += " (closed before the client did: it had not closed within " +
            format_setting_duration(limits.time) + ")";
  else if (lingered.closed_before && reset_unread)
    note += " (mailtap had reset the connection: the client was not reading its replies)";
  // A failed or timed-out STARTTLS handshake, a shutdown during one: not the client's reading.
  else if (lingered.closed_before)
    note += " (mailtap had closed the connection already)";
  else if (!lingered.client_closed)
    note += " (closed before the client did: mailtap was shutting down)";
  return note;
}

}  // namespace mailtap
