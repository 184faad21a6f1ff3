#include "tools/recorded_dialogue.hpp"

#include "proxy/common/text.hpp"

namespace mailtap::tools {

std::string ClientStep::summary() const {
  if (kind == smtp::EventKind::data || kind == smtp::EventKind::bdat_chunk)
    return "<" + std::to_string(bytes.size()) + " octets of message " +
           (kind == smtp::EventKind::data ? "body>" : "chunk>");
  if (kind == smtp::EventKind::error) return "<refused line>";
  return std::string(strip_crlf(bytes));
}

std::string RecordedReply::first_line() const {
  const std::string_view v = client_view.empty() ? std::string_view(raw) : client_view;
  return std::string(strip_crlf(v.substr(0, v.find('\n'))));
}

smtp::Secret RecordedDialogue::flight_bytes(const Flight& f) const {
  std::size_t size = 0;
  for (std::size_t i : f.steps) size += client[i].wire().size();
  smtp::Secret out(size);
  for (std::size_t i : f.steps) out.append(client[i].wire());
  return out;
}

bool build_recorded_dialogue(const std::vector<storage::EventRow>& events, RecordedDialogue& out,
                             std::string& error) {
  out = RecordedDialogue{};
  bool reply_since_flight = true;  // a new flight starts at the first client step
  for (const storage::EventRow& row : events) {
    const smtp::Event& e = row.event;
    if (smtp::from_client(e.direction)) {
      if (e.kind == smtp::EventKind::error) {
        error = "event " + std::to_string(row.seq) +
                ": the client sent a line mailtap refused and did not record (" + e.note +
                "); it cannot be sent again";
        return false;
      }
      if ((e.kind == smtp::EventKind::data || e.kind == smtp::EventKind::bdat_chunk) &&
          e.bytes.size() != e.wire_size) {
        error = "event " + std::to_string(row.seq) + ": only " + std::to_string(e.bytes.size()) +
                " of " + std::to_string(e.wire_size) + " body octets were recorded";
        return false;
      }
      if (!out.greeting) {
        error = "event " + std::to_string(row.seq) + ": client bytes before any greeting";
        return false;
      }
      ClientStep step;
      step.seq = row.seq;
      step.direction = e.direction;
      step.kind = e.kind;
      step.verb = e.verb;
      step.bytes = e.bytes;
      step.redacted = e.redacted;
      step.note = e.note;
      if (step.kind == smtp::EventKind::command && step.verb == "QUIT") out.client_quit = true;
      if (reply_since_flight) {
        Flight f;
        f.first_reply = out.replies.size();
        out.flights.push_back(std::move(f));
        reply_since_flight = false;
      }
      out.flights.back().steps.push_back(out.client.size());
      out.client.push_back(std::move(step));
      continue;
    }
    const bool upstream_reply =
        e.direction == smtp::Direction::upstream_to_client &&
        (e.kind == smtp::EventKind::greeting || e.kind == smtp::EventKind::reply ||
         e.kind == smtp::EventKind::auth);
    const bool local_reply =
        e.direction == smtp::Direction::mailtap_to_client && e.kind == smtp::EventKind::local_reply;
    if (e.direction == smtp::Direction::mailtap_to_client && e.kind == smtp::EventKind::rewrite) {
      // The EHLO reply as the client received it: it follows the reply it rewrites.
      if (!out.replies.empty()) out.replies.back().client_view = e.bytes;
      continue;
    }
    if (!upstream_reply && !local_reply) continue;
    RecordedReply r;
    r.seq = row.seq;
    r.code = e.reply_code;
    if (r.code == 0 && e.bytes.size() >= 3) r.code = std::atoi(e.bytes.substr(0, 3).c_str());
    r.raw = e.bytes;
    r.verb = e.verb;
    r.local = local_reply;
    r.redacted = e.redacted;
    if (e.kind == smtp::EventKind::greeting || (!out.greeting && out.client.empty())) {
      out.greeting = std::move(r);
      continue;
    }
    out.replies.push_back(std::move(r));
    if (!out.flights.empty()) ++out.flights.back().reply_count;
    reply_since_flight = true;
  }
  if (!out.greeting) {
    error = "no greeting reached the client (the session never got past setting up the upstream)";
    return false;
  }
  return true;
}

}  // namespace mailtap::tools
