// A message's text as a transcript prints it: line by line, not a read of the client at a time.
// mailtap show and the proxy's live --transcript both join it here, so the same octets give the
// same lines in both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/common/crlf_lines.hpp"
#include "proxy/smtp/event.hpp"

namespace mailtap::smtp {

// The client's message text (DATA's, or the payload of one BDAT chunk) as a transcript writes
// it. The record keeps it as one event per read of the client, and a read may end anywhere in a
// line (a person at telnet in character mode sends every key on its own): the events that
// follow one another are joined, and their octets split at the CRLFs they hold as one event's
// are, so a line that came in several reads is one line, and a read's last octets are not shown
// as a line of their own. mailtap's notes on the text (a bare LF normalised, a line over 1000
// octets, its IAC WONT TM answer to telnet's Ctrl-C) that come while a line is open follow that
// line. Memory: a piece of a line (CrlfLinePieces::kLongestHeld), and those notes, bounded.
class BodyTextJoin {
 public:
  // How a transcript writes what the join decides: appended to out(), which goes out on pass().
  class Writer {
   public:
    virtual ~Writer() = default;
    // The text begins with is_text event `e` (`begins`), or goes on with one more read `e`;
    // its octets follow.
    virtual void read(const Event& e, bool begins) = 0;
    // A line of the text (its CRLF dropped) or a piece of one, as CrlfLinePieces hands them on:
    // `first` holds its start, `last` its end.
    virtual void line(std::string_view text, bool first, bool last, std::string& out) = 0;
    // A note on the text, as the transcript writes any event.
    virtual void note(const Event& e, std::string& out) = 0;
    virtual std::string& out() = 0;
    virtual bool pass() = 0;  // false once the output failed
  };

  // What an event is to the text.
  enum class Role {
    note,   // a note on the text being written: written (after the open line, if any)
    text,   // more of it, or the start of new text: its octets follow through append
    other,  // neither: the text being written, if any, was finished; the caller writes it
  };

  explicit BodyTextJoin(Writer& writer);

  // An event that holds such text (`has_bytes`: octets, in memory or in a body file).
  static bool is_text(const Event& e, bool has_bytes);

  // Decides what `e` (with octets: `has_bytes`) is to the text and does what that calls for
  // before the caller goes on (see Role). `ok` false: the output failed.
  Role take(const Event& e, bool has_bytes, bool& ok);

  // The octets of the text event last taken, in pieces. False once the output failed.
  bool append(std::string_view piece) { return pieces_.append(piece); }

  bool open() const { return open_; }

  // The text ends: its last line, if no CRLF ended it, as it is, then the notes held.
  bool finish();

 private:
  static constexpr std::size_t kHeldNotes = std::size_t{64} * 1024;

  bool continues(const Event& e) const;
  bool is_note_on_it(const Event& e) const;
  bool note(const Event& e);
  bool finish_line();
  void write_held_notes();

  Writer& writer_;
  bool open_ = false;
  // The first event's: what the text is (a BDAT command between two chunks ends the first).
  EventKind kind_ = EventKind::data;
  std::uint64_t transaction_ = 0;
  Phase phase_ = Phase::plain;
  CrlfLinePieces pieces_;
  std::string held_notes_;
};

}  // namespace mailtap::smtp
