#include "proxy/smtp/body_text_join.hpp"

namespace mailtap::smtp {

BodyTextJoin::BodyTextJoin(Writer& writer)
    : writer_(writer), pieces_([this](std::string_view text, bool first, bool last) {
        writer_.line(text, first, last, writer_.out());
        if (last) write_held_notes();
        return writer_.pass();
      }) {}

bool BodyTextJoin::is_text(const Event& e, bool has_bytes) {
  return has_bytes && e.direction == Direction::client_to_upstream &&
         (e.kind == EventKind::data || e.kind == EventKind::bdat_chunk) && !e.redacted &&
         e.note.empty();
}

// Whether is_text event `e` goes on with the text being written: the same message's, of the
// same kind.
bool BodyTextJoin::continues(const Event& e) const {
  return open_ && e.kind == kind_ && e.transaction == transaction_ && e.phase == phase_;
}

// Whether `e` is a mailtap note on the text being written (a body's notes carry its message's
// transaction; a BDAT chunk sent without MAIL has none to tell them by). mailtap's answer to
// telnet's DO TIMING-MARK in the text (IAC WONT TM to the client, a note on DATA) is recorded
// after the read that held it, which may end inside a line (Ctrl-C glued to the next line
// typed): it is one too.
bool BodyTextJoin::is_note_on_it(const Event& e) const {
  const bool note = e.direction == Direction::mailtap_note ||
                    (e.direction == Direction::mailtap_to_client && e.kind == EventKind::note);
  return open_ && note && e.transaction != 0 && e.transaction == transaction_;
}

BodyTextJoin::Role BodyTextJoin::take(const Event& e, bool has_bytes, bool& ok) {
  ok = true;
  if (is_note_on_it(e)) {
    ok = note(e);
    return Role::note;
  }
  const bool text = is_text(e, has_bytes);
  if (open_ && !(text && continues(e)) && !finish()) {
    ok = false;
    return text ? Role::text : Role::other;
  }
  if (!text) return Role::other;
  const bool begins = !open_;
  if (begins) {
    open_ = true;
    kind_ = e.kind;
    transaction_ = e.transaction;
    phase_ = e.phase;
  }
  writer_.read(e, begins);
  return Role::text;
}

// A note on the text: written after the line that is open, if one is.
bool BodyTextJoin::note(const Event& e) {
  if (!pieces_.line_open()) {
    writer_.note(e, writer_.out());
    return writer_.pass();
  }
  writer_.note(e, held_notes_);
  // A line that goes on past 64 KiB of them (hardly a client's: most say how many line ends of
  // its own were made CRLF, which ended a line) is ended where they are written.
  return held_notes_.size() < kHeldNotes || finish_line();
}

bool BodyTextJoin::finish() {
  const bool written = finish_line();
  open_ = false;
  return written;
}

bool BodyTextJoin::finish_line() {
  if (!pieces_.finish()) return false;
  write_held_notes();
  return writer_.pass();
}

void BodyTextJoin::write_held_notes() {
  writer_.out() += held_notes_;
  held_notes_.clear();
}

}  // namespace mailtap::smtp
