// `mailtap show ID`: a recorded session as a telnet-tutorial transcript (C:/S: lines with
// relative times, mailtap's own lines and notes marked, the pre-TLS part marked, SASL base64
// decoded beside it, every reply explained), its exact bytes (--raw), or one message.
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>

#include "proxy/common/duration.hpp"
#include "proxy/common/log.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/options/database_path_option.hpp"
#include "proxy/smtp/body_text_join.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "storage/reader.hpp"
#include "storage/stored_body.hpp"
#include "storage/timestamp.hpp"
#include "tools/commands.hpp"
#include "tools/json_writer.hpp"
#include "tools/number_options.hpp"
#include "tools/recorded_reply_advice.hpp"
#include "tools/session_json.hpp"
#include "tools/session_read_back.hpp"
#include "tools/terminal_text.hpp"
#include "tools/time_format.hpp"
#include "tools/tool_options.hpp"
#include "tools/unfinished_message.hpp"

namespace mailtap::tools {

namespace {

using smtp::Direction;
using smtp::EventKind;

struct ShowArgs {
  ToolOptions common;
  std::int64_t id = 0;
  bool raw = false;
  std::size_t message = 0;  // 1-based; 0 = none
  std::string save;
};

const char* prefix(const smtp::Event& e) {
  if (smtp::is_unsent_note(e)) return "~~";  // about the record, not a line the client sent
  switch (e.direction) {
    case Direction::client_to_upstream:
      return "C:";
    case Direction::client_to_mailtap:
      return "C:";
    case Direction::upstream_to_client:
      return "S:";
    case Direction::mailtap_to_upstream:
      return "M>";
    case Direction::upstream_to_mailtap:
      return "S>";
    case Direction::mailtap_to_client:
      return "M:";
    case Direction::mailtap_note:
      return "~~";
  }
  return "??";
}

const char* legend =
    "# C: client -> server (relayed)   S: server -> client (relayed)\n"
    "# M> mailtap -> server   S> server -> mailtap   M: mailtap -> client   ~~ mailtap note\n"
    "# [pre-TLS] in clear between mailtap and the server before STARTTLS (discarded after it, "
    "but the greeting: the client gets its text, control octets escaped)\n";

// The client, upstream and TLS lines of the session summary.
void render_connection(const storage::SessionDetail& d, const Style& st, std::string& out) {
  const auto& s = d.session;
  out += "client   " + escape_line(s.client_address) + " -> " + escape_line(s.listen_address);
  if (!s.client_tls_version.empty()) out += "  (" + escape_line(s.client_tls_version) + ")";
  out += '\n';
  out += "upstream " + escape_line(net::host_port_label(s.upstream_host, s.upstream_port)) + " (" +
         std::string(storage::to_string(s.tls_mode)) + ")";
  if (!s.resolved_address.empty()) out += " at " + escape_line(s.resolved_address);
  out += '\n';
  const std::string verification = smtp::verification_text(s.verify_status, s.verify_reason);
  if (!s.tls_version.empty()) {
    out += "tls      " + escape_line(s.tls_version) + " " + escape_line(s.cipher);
    if (!s.sni.empty()) out += "  sni=" + escape_line(s.sni);
    const std::string verify = escape_line(verification.empty() ? "-" : verification);
    out += "  verify: " + (s.insecure ? st.red(verify) : verify);
    if (s.tls_resumed.value_or(false)) out += "  (session resumed)";
    // "not verified (--insecure)" says it already; "ok" under --insecure (probe) does not.
    if (s.insecure && verification.find("--insecure") == std::string::npos)
      out += " " + st.red("(--insecure)");
    out += '\n';
  }
  if (s.tls_version.empty() && !verification.empty())
    out += "tls      not established: " + st.red(escape_line(verification)) + "\n";
  if (!s.client_cert_subject.empty())
    out += "presented " + escape_line(s.client_cert_subject) +
           "  (mailtap's client certificate, sha256 " + escape_line(s.client_cert_sha256) +
           (s.tls_resumed.value_or(false) ? ", when the session resumed was made" : "") + ")\n";
  // The server's own certificate with its SHA-256 (as --json and the web page give it): a
  // certificate changed between sessions, with the same names and dates, shows here too.
  for (const auto& c : d.certificates) {
    const std::string& sha256 = c.certificate.sha256_hex;
    out += "cert[" + std::to_string(c.position) + "]  " + escape_line(c.certificate.subject) +
           "  (issuer " + escape_line(c.certificate.issuer) + ", until " +
           escape_line(c.certificate.not_after) +
           (c.position == 0 && !sha256.empty() ? ", sha256 " + escape_line(sha256) : "") + ")\n";
  }
}

// What the outcome line says of a session without an end, by what its writer is.
std::string no_end_text(const storage::SessionRow& s, const Style& st) {
  switch (s.record) {
    case storage::RecordState::recording:
      return st.yellow("in progress");
    case storage::RecordState::cut:
      return st.red("cut") +
             ": the process recording it is gone (killed?); the record ends at its last commit, "
             "and the server may have accepted a message after it";
    case storage::RecordState::ended:
    case storage::RecordState::unknown:
      break;
  }
  return st.yellow("in progress (or its writer died)");
}

// The outcome, user and replay lines of the session summary.
void render_outcome(const storage::SessionRow& s, const Style& st, std::string& out) {
  out += "outcome  ";
  if (s.outcome) {
    const std::string o(storage::to_string(*s.outcome));
    out += *s.outcome == storage::Outcome::quit ? st.green(o) : st.red(o);
    if (!s.outcome_reason.empty()) out += ": " + escape_line(s.outcome_reason);
  } else {
    out += no_end_text(s, st);
  }
  out += '\n';
  if (!s.auth_user.empty() || !s.auth_mechanism.empty()) {
    out +=
        "user     " + (s.auth_user.empty() ? std::string("<redacted>") : escape_line(s.auth_user));
    if (!s.auth_mechanism.empty())
      out +=
          std::string(s.auth_by == storage::AuthBy::mailtap ? ", authenticated by mailtap ("
                                                            : ", authenticated by the client (") +
          escape_line(s.auth_mechanism) + ")";
    out += "\n";
  }
  if (s.replay_of) out += "replay of session " + std::to_string(*s.replay_of) + "\n";
}

// The "# 550 5.1.1: ..." line under a reply, when the code has an explanation: the web page's,
// read from the reply's text too. The status is read back from the record, so it is escaped as
// the reply's own text is.
void render_reply_explanation(const smtp::Event& e, std::size_t indent, const std::string& tag,
                              const Style& st, std::string& out) {
  const auto advice = recorded_reply_advice(e);
  if (!advice) return;
  std::string code = std::to_string(e.reply_code);
  if (!e.enhanced_status.empty()) code += " " + escape_line(e.enhanced_status);
  const std::string line = "# " + code + ": " + advice->meaning;
  out += std::string(indent, ' ') + "  " + tag + "   " +
         (e.reply_code >= 400 ? st.red(line) : st.dim(line)) + "\n";
}

// One event's lines as the transcript writes them: its time on the first (blanks as wide on
// the others), its tags, who sent it, then the line's text escaped. A line may come in pieces
// (an event whose octets are in the body file is written as it is read from there).
class EventLines {
 public:
  EventLines(const smtp::Event& e, const storage::SessionRow& s, const Style& st)
      : e_(e),
        st_(st),
        when_(offset_from_start(e, s)),
        tag_(std::string(e.phase == smtp::Phase::pre_tls ? "[pre-TLS] " : "") +
             (after_the_end(e, s) ? "[after the end] " : "")) {}

  // Written once the session's record was closed (what the client sent after its last reply,
  // discarded by the lingering close): its time lies past the session's end.
  static bool after_the_end(const smtp::Event& e, const storage::SessionRow& s) {
    return e.time != Clock::time_point{} && s.ended && *s.ended != Clock::time_point{} &&
           e.time > *s.ended;
  }

  // The event's time after the session's start; blank where either is unknown, or the two are
  // too far apart (a damaged file) for the clock to hold the difference.
  static std::string offset_from_start(const smtp::Event& e, const storage::SessionRow& s) {
    const std::string blank(8, ' ');
    if (e.time == Clock::time_point{} || s.started_unreadable) return blank;
    const std::optional<Clock::duration> offset = storage::time_between(s.started, e.time);
    return offset ? format_offset(*offset) : blank;
  }

  // A note line: nothing of the event crossed a wire (or its bytes are none).
  static bool is_note(const smtp::Event& e, bool has_bytes) {
    return e.direction == Direction::mailtap_note || !has_bytes || smtp::is_unsent_note(e);
  }

  // A client's line mailtap refused and kept no bytes of (a NUL, an over-long line) is marked
  // as every line mailtap answered: it was not relayed, as the legend's C: alone would say.
  void note(std::string& out) const {
    std::string text = std::string(to_string(e_.kind)) + ": " + escape_text(e_.note);
    std::string tag = tag_;
    if (e_.direction == Direction::client_to_mailtap && !smtp::is_unsent_note(e_))
      tag += "[answered by mailtap] ";
    out += when_ + "  " + tag + st_.magenta(std::string(prefix(e_)) + " " + text);
    // An event the record keeps only the size of (mailtap's telnet refusals on a line that may
    // hold a secret's octets): redacted as any such line is.
    if (e_.redacted) out += "   [redacted: " + std::to_string(e_.wire_size) + " bytes on the wire]";
    out += "\n";
  }

  // Whether the first line says more than its text (redacted, or a note it does not hold):
  // then that line must come whole.
  bool first_line_decorated() const { return e_.redacted || !e_.note.empty(); }

  // A line of the event's bytes (CRLF dropped), or a piece of one: `first` holds its start,
  // `last` its end.
  void line(std::string_view text, bool first, bool last, std::string& out) {
    const bool first_line = first && first_line_;
    if (first) start_line(out);
    first_line_ = first_line_ && !first;
    std::string shown = escape_line(text);
    if (first_line && last) decorate_first_line(text, shown);
    out += shown;
    if (last) out += '\n';
  }

  // The lines that follow are event `e`'s (one more read of the same body text): the first
  // line begun from here on gets its time.
  void restamp(const smtp::Event& e, const storage::SessionRow& s) {
    when_ = offset_from_start(e, s);
    first_line_ = true;
  }

  // What follows the last line: a reply's explanation.
  void finish(std::string& out) const {
    render_reply_explanation(e_, when_.size(), line_tag(), st_, out);
  }

 private:
  std::string line_tag() const {
    std::string tag = tag_;
    if (e_.direction == Direction::client_to_mailtap) tag += "[answered by mailtap] ";
    if (e_.kind == EventKind::rewrite) tag += "[rewritten by mailtap] ";
    return tag;
  }

  void start_line(std::string& out) const {
    const bool from_mailtap = e_.direction == Direction::mailtap_to_upstream ||
                              e_.direction == Direction::mailtap_to_client ||
                              e_.kind == EventKind::rewrite;
    std::string p = std::string(prefix(e_)) + " ";
    if (from_mailtap)
      p = st_.magenta(p);
    else if (smtp::from_client(e_.direction))
      p = st_.cyan(p);
    out += (first_line_ ? when_ : std::string(when_.size(), ' ')) + "  " + line_tag() + p;
  }

  void decorate_first_line(std::string_view text, std::string& shown) const {
    if (e_.redacted)
      shown = st_.yellow(shown) + "   [redacted: " + std::to_string(e_.wire_size) +
              " bytes on the wire]";
    if (!e_.note.empty() && text.find(e_.note) == std::string_view::npos)
      shown += "   (" + escape_text(e_.note) + ")";
  }

  const smtp::Event& e_;
  const Style& st_;
  std::string when_;
  std::string tag_;
  bool first_line_ = true;
};

// One event whose bytes are in memory: a note line, or its bytes line by line with who sent
// them. Split on CRLF only, so a bare LF or CR stays visible inside its line as \n or \r.
void render_event(const smtp::Event& e, const storage::SessionRow& s, const Style& st,
                  std::string& out) {
  EventLines lines(e, s, st);
  if (EventLines::is_note(e, !e.bytes.empty())) return lines.note(out);
  for (const std::string_view line : crlf_lines(e.bytes)) lines.line(line, true, true, out);
  lines.finish(out);
}

// A message's recipients as its row keeps them: past a bound some RCPTs are left out (each is
// in the events), where they were among them and how many in all.
void render_recipients(const smtp::Message& m, std::string& out) {
  std::uint64_t next = 0;
  for (const auto& r : m.recipients) {
    if (r.position > next)
      out += "  (" + std::to_string(r.position - next) + " RCPTs left out here)\n";
    next = r.position + 1;
    out +=
        "  " + escape_line(r.command) + "  -> " + escape_line(smtp::reply_summary(r.reply)) + "\n";
  }
  if (!m.recipients_left_out) {
    out +=
        "  (RCPTs left out of the message's recipients: unknown, recorded before mailtap "
        "counted them; each RCPT is in the events above)\n";
    return;
  }
  if (m.recipients_left_out->rcpts == 0) return;
  out += "  (" + std::to_string(m.recipients_left_out->rcpts) + " RCPTs (" +
         std::to_string(m.recipients_left_out->accepted) +
         " accepted) not kept in the message's recipients, past what a message keeps; each is "
         "in the events above)\n";
}

void render_message(const storage::SessionRow& s, const storage::MessageRow& m, const Style& st,
                    std::string& out) {
  out += "\n" + st.bold("message " + std::to_string(m.seq)) + "  " +
         escape_line(m.message.mail_from) + "\n";
  render_recipients(m.message, out);
  out += "  " + std::to_string(m.message.size) + " bytes" +
         (m.message.via_bdat ? " via BDAT" : " via DATA") +
         (m.message.body_truncated ? " (body truncated in the record)" : "") + "  sha256 " +
         escape_line(m.message.sha256_hex) + "\n";
  // No final reply: the server got the end of data and the session ended before it answered.
  out += "  final: " +
         (m.message.final_code == 0 && m.message.final_reply.empty()
              ? std::string("none (the session ended before the server answered the end of data: "
                            "it may have the message)")
              : escape_line(smtp::reply_summary(m.message.final_reply))) +
         "\n";
  if (!m.unreadable.empty()) out += "  " + st.red("damaged: " + escape_line(m.unreadable)) + "\n";
  out += "  (print it with: mailtap show " + std::to_string(s.id) + " --message " +
         std::to_string(m.seq) + ")\n";
}

// An unfinished message (storage::UnfinishedMessage) where the messages are listed, after
// them: the transcript's closing word on a body it left without an end, never a message row.
void render_unfinished(const storage::SessionRow& s, const storage::UnfinishedMessage& u,
                       std::uint64_t body_octets, const Style& st, std::string& out) {
  out += "\n" + st.bold("message " + std::to_string(u.row.seq)) + "  " +
         escape_line(u.row.message.mail_from) + "  " +
         st.red(s.ended || s.writer_gone() ? "(not finished)" : "(in progress)") + "\n";
  out += "  " + escape_line(unfinished_text(s, u, body_octets)) + "\n";
  out += "  (print what was recorded with: mailtap show " + std::to_string(s.id) + " --message " +
         std::to_string(u.row.seq) + ")\n";
}

// The summary at the top and the legend.
void render_heading(const storage::SessionDetail& d, const Style& st, std::string& out) {
  const auto& s = d.session;
  out += st.bold("session " + std::to_string(s.id)) + "  " +
         (s.started_unreadable ? st.red("start unreadable") : format_utc(s.started));
  if (const auto length = s.duration(); s.ended && length)
    out += "  (" + format_duration(*length) + ")";
  else if (s.ended && s.duration_unreadable)  // the damaged line below says what it holds
    out += "  (" + st.red("duration unreadable") + ")";
  out += '\n';
  if (!s.unreadable.empty())
    out += st.red("damaged  " + escape_line(s.unreadable)) +
           " (mailtap audit lists every damaged row)\n";
  render_connection(d, st, out);
  render_outcome(s, st, out);
  out += '\n';
  out += st.dim(legend);
  out += '\n';
}

// The transcript on stdout, written as it is rendered, some tens of KiB at a time: a session
// of any size costs about a piece of its body file, and a pipe gets its first lines at once.
class TranscriptOut {
 public:
  static constexpr std::size_t kFlushOctets = std::size_t{64} * 1024;

  std::string& text() { return text_; }
  // Writes what is rendered once there is enough of it. False once the output failed (a
  // closed pipe): nothing more need be read.
  bool pass() { return text_.size() < kFlushOctets ? written_ : flush(); }
  bool flush() {
    if (written_) written_ = write_stdout(text_);
    text_.clear();
    return written_;
  }

 private:
  std::string text_;
  bool written_ = true;
};

// An event whose octets are in the session's body file: its lines written as they are read
// from there, a line longer than CrlfLinePieces::kLongestHeld a piece at a time. False with
// `error` set when the body file cannot supply them.
bool write_event_from_file(const storage::EventRow& row, const storage::SessionRow& s,
                           const Style& st, storage::SessionOctets& octets, TranscriptOut& out,
                           std::string& error) {
  EventLines lines(row.event, s, st);
  if (EventLines::is_note(row.event, row.file_length > 0)) {
    lines.note(out.text());
    return true;
  }
  // A decorated first line is judged whole (the recorder puts no such event in a body file).
  CrlfLinePieces pieces(
      [&](std::string_view text, bool first, bool last) {
        lines.line(text, first, last, out.text());
        return out.pass();
      },
      lines.first_line_decorated() ? std::string::npos : CrlfLinePieces::kLongestHeld);
  bool open = true;
  if (!octets.event_bytes(
          row, [&](std::string_view piece) { return open = pieces.append(piece); }, error))
    return false;
  if (open && pieces.finish()) lines.finish(out.text());
  return true;
}

// The client's message text as the transcript writes it, joined by smtp::BodyTextJoin (as the
// proxy's live transcript joins it): a line that came in several reads is one line. A line gets
// the time of the event its end came in (a line longer than CrlfLinePieces::kLongestHeld, of
// its first piece), as a command's line has; each event's time once, on the first line begun
// in it. mailtap's notes on the text are written as any event is.
class BodyText final : public smtp::BodyTextJoin::Writer {
 public:
  BodyText(const storage::SessionRow& s, const Style& st, TranscriptOut& out)
      : session_(s), st_(st), out_(out) {}

  void read(const smtp::Event& e, bool begins) override {
    if (!begins) return lines_->restamp(e, session_);
    text_.direction = e.direction;
    text_.phase = e.phase;
    text_.kind = e.kind;
    text_.verb = e.verb;
    text_.transaction = e.transaction;
    text_.time = e.time;
    lines_.emplace(text_, session_, st_);
  }
  void line(std::string_view text, bool first, bool last, std::string& out) override {
    lines_->line(text, first, last, out);
  }
  void note(const smtp::Event& e, std::string& out) override {
    render_event(e, session_, st_, out);
  }
  std::string& out() override { return out_.text(); }
  bool pass() override { return out_.pass(); }

 private:
  const storage::SessionRow& session_;
  const Style& st_;
  TranscriptOut& out_;
  smtp::Event text_;  // the first event's, without its octets: who sent the text, and what
  std::optional<EventLines> lines_;  // of text_, set once there is text
};

// A text event's octets, from the record or the body file. False when they can no longer be
// written, or with `error` set when the body file cannot supply them.
bool write_text_octets(const storage::EventRow& row, smtp::BodyTextJoin& body,
                       storage::SessionOctets& octets, std::string& error) {
  if (!row.file_offset) return body.append(row.event.bytes);
  bool written = true;
  const bool read = octets.event_bytes(
      row, [&](std::string_view piece) { return written = body.append(piece); }, error);
  return read && written;
}

// The session's unfinished messages, after its messages: each with the octets of its body
// the record holds, counted by reading them. False with `error` set if the record cannot say.
bool write_unfinished(storage::Reader& reader, SessionReadBack& session, const Style& st,
                      std::string& out, std::string& error) {
  std::vector<storage::UnfinishedMessage> unfinished;
  if (!reader.unfinished_messages(session.detail().session.id, unfinished, error)) return false;
  for (const storage::UnfinishedMessage& u : unfinished) {
    std::uint64_t octets = 0;
    if (!unfinished_body_octets(session.octets(), u, octets, error)) return false;
    render_unfinished(session.detail().session, u, octets, st, out);
  }
  return true;
}

// The transcript, written as it is rendered, its events and messages read back a batch at a
// time. On a failure to read the record, what came before it is written first.
int write_transcript(storage::Reader& reader, SessionReadBack& session, const Style& st) {
  const storage::SessionDetail& d = session.detail();
  TranscriptOut out;
  render_heading(d, st, out.text());
  std::string error;
  bool stopped = false;  // the output failed, or the body file could not supply an event's octets
  BodyText text_writer(d.session, st, out);
  smtp::BodyTextJoin body(text_writer);
  AnsweredCommands answered;  // which chunk a BDAT reply answers, for its explanation
  bool read = session.for_each_event(
      [&](const storage::EventRow& row) {
        const smtp::Event& e = row.event;
        bool written = true;
        const auto role =
            body.take(e, row.file_offset ? row.file_length > 0 : !e.bytes.empty(), written);
        if (!written || role == smtp::BodyTextJoin::Role::note) return !(stopped = !written);
        if (role == smtp::BodyTextJoin::Role::text)
          return !(stopped = !write_text_octets(row, body, session.octets(), error));
        if (!row.file_offset) {
          render_event(answered.as_answered(e), d.session, st, out.text());
        } else if (!write_event_from_file(row, d.session, st, session.octets(), out, error)) {
          stopped = true;
          return false;
        }
        return !(stopped = !out.pass());
      },
      error);
  if (read && !stopped && body.open()) stopped = !body.finish();
  if (read && !stopped)
    read = session.for_each_message(
        [&](const storage::MessageRow& m) {
          render_message(d.session, m, st, out.text());
          return !(stopped = !out.pass());
        },
        error);
  if (read && !stopped) read = write_unfinished(reader, session, st, out.text(), error);
  if (!read || !error.empty()) {
    if (body.open()) body.finish();  // the line the failure cut, as far as it came
    out.flush();
    log::error("show: " + error);
    return 1;
  }
  return !stopped && out.flush() ? 0 : 1;
}

// Recorded octets handed out in pieces (a message's body, every exchange), read from the record
// as they are written: `emit` returns false once they can no longer be written.
using Octets = std::function<bool(const storage::SessionOctets::Emit& emit, std::string& error)>;

// Recorded bytes (--raw, --message) to stdout: exactly, a piece at a time as they are read. On
// a terminal, lines that hold what could drive it (an escape sequence, an OSC 52 clipboard
// write, bytes that are not UTF-8) are written as the transcript writes wire text, and said so
// once at the end; `exact_way` tells how to get the bytes themselves.
int write_recorded(const Octets& octets, std::string_view exact_way) {
  std::string error;
  bool written = true;
  if (::isatty(STDOUT_FILENO) == 0) {
    const bool read =
        octets([&written](std::string_view piece) { return written = write_stdout(piece); }, error);
    if (!read) log::error("show: " + error);
    return read && written ? 0 : 1;
  }
  TerminalLines terminal(write_stdout);
  const bool read =
      octets([&](std::string_view piece) { return written = terminal.append(piece); }, error);
  if (read && written) written = terminal.finish();
  if (!read) log::error("show: " + error);
  if (terminal.escaped())
    log::error(
        "show: control octets escaped for the terminal (shown as \\xHH, \\r and \\n, as "
        "the transcript shows them); " +
        std::string(exact_way) + " gives the exact bytes");
  return read && written ? 0 : 1;
}

// Message N of the session (--message N; the only one for --save alone), read back with the
// others a batch at a time; nullopt when there is none to choose, said so with the exit status
// in `status`. N past the session's messages may name an unfinished one (`unfinished`, then
// also what is returned): its body as far as the record holds it.
std::optional<storage::MessageRow> chosen_message(
    const ShowArgs& a, storage::Reader& reader, const SessionReadBack& session, int& status,
    std::optional<storage::UnfinishedMessage>& unfinished) {
  status = 1;
  std::optional<storage::MessageRow> found;
  std::size_t count = 0;
  std::string error;
  // Read up to N, or to the end: what is said when none is chosen names how many there are.
  const bool read = session.for_each_message(
      [&](const storage::MessageRow& m) {
        ++count;
        if (a.message == 0 ? count == 1 : m.seq == a.message) found = m;
        return a.message == 0 || !found;
      },
      error);
  if (!read) {
    log::error("show: " + error);
    return std::nullopt;
  }
  std::vector<storage::UnfinishedMessage> cut;
  if (!found && !reader.unfinished_messages(a.id, cut, error)) {
    log::error("show: " + error);
    return std::nullopt;
  }
  // Not finished: said with its number, and how to get what was recorded of it.
  std::string also;
  for (const storage::UnfinishedMessage& u : cut) {
    if (a.message != 0 && u.row.seq == a.message) {
      unfinished = u;
      return u.row;
    }
    also += (also.empty() ? "; message " : ", message ") + std::to_string(u.row.seq) +
            " not finished: give --message " + std::to_string(u.row.seq) +
            " for what the record holds of its body";
  }
  if (a.message != 0) {
    if (!found)
      log::error("show: session " + std::to_string(a.id) + " has no message " +
                 std::to_string(a.message) + " (it has " + std::to_string(count) + also + ")");
    return found;
  }
  if (count == 0) {
    log::error("show: session " + std::to_string(a.id) + " has no message to save" +
               (also.empty() ? "" : " (" + also.substr(2) + ")"));
    return std::nullopt;
  }
  if (count != 1) {
    log::error("show: session " + std::to_string(a.id) + " has " + std::to_string(count) +
               " messages: choose one with --message N");
    status = 2;
    return std::nullopt;
  }
  return found;
}

// --save FILE: the body written to the file a piece at a time as it is read.
int save_message(const std::string& path, const Octets& body) {
  OutputFile file;
  std::string error;
  bool written = true;
  const bool ok =
      file.open(path, error) &&
      body([&](std::string_view piece) { return written = file.write(piece, error); }, error) &&
      written && file.close(error);
  if (!ok) log::error("show: " + error);
  return ok ? 0 : 1;
}

// --message N / --save FILE: one message's body, to stdout or a file, read from the record as
// it is written. An unfinished message's body as far as the record holds it, with a warning on
// stderr that says so before it: never mistaken for a delivered message.
int show_message(const ShowArgs& a, storage::Reader& reader, SessionReadBack& session) {
  int status = 1;
  std::optional<storage::UnfinishedMessage> unfinished;
  const std::optional<storage::MessageRow> found =
      chosen_message(a, reader, session, status, unfinished);
  if (!found) return status;
  storage::SessionOctets& octets = session.octets();
  const Octets body = [&octets, &found](const storage::SessionOctets::Emit& emit,
                                        std::string& error) {
    return octets.message_body(*found, emit, error);
  };
  if (unfinished) {
    std::uint64_t recorded = 0;
    std::string error;
    if (!unfinished_body_octets(octets, *unfinished, recorded, error)) {
      log::error("show: " + error);
      return 1;
    }
    log::error("show: warning: " +
               escape_line(unfinished_text(session.detail().session, *unfinished, recorded)) +
               "; what follows is the part of its body the record holds, not a delivered "
               "message");
  }
  if (found->message.body_truncated) {
    std::uint64_t recorded = 0;
    std::string error;
    body(
        [&recorded](std::string_view piece) {
          recorded += piece.size();
          return true;
        },
        error);
    log::error("show: warning: message " + std::to_string(found->seq) +
               " was truncated in the record; only the first " + std::to_string(recorded) + " of " +
               std::to_string(found->message.size) + " bytes are available");
  }
  if (!a.save.empty()) return save_message(a.save, body);
  return write_recorded(body, "a pipe or --save FILE");
}

// --json: the session as JSON, written as it is read from the record.
int show_json(SessionReadBack& session) {
  JsonWriter w;
  bool written = true;
  w.stream_to([&written](std::string_view piece) { return written = write_stdout(piece); });
  std::string error;
  if (!write_session_detail(w, session.detail(), session.octets(), error, session.events(),
                            session.messages())) {
    if (!error.empty()) log::error("show: " + error);
    return 1;
  }
  w.string_piece("\n");
  return w.flush() && written ? 0 : 1;
}

// --raw: every exchange's recorded bytes, in order.
int show_raw(SessionReadBack& session) {
  return write_recorded(
      [&session](const storage::SessionOctets::Emit& emit, std::string& error) {
        bool open = true;
        bool octets_read = true;
        const auto pass = [&](std::string_view piece) { return open = emit(piece); };
        const bool read = session.for_each_event(
            [&](const storage::EventRow& row) {
              if (row.event.direction == Direction::mailtap_note || smtp::is_unsent_note(row.event))
                return true;
              octets_read = session.octets().event_bytes(row, pass, error);
              return octets_read && open;
            },
            error);
        return read && octets_read;
      },
      "a pipe");
}

int run_show(const ShowArgs& a) {
  int failure_status = 1;
  auto reader = a.common.open_reader("show", failure_status);
  if (!reader) return failure_status;
  std::optional<storage::SessionDetail> detail;
  std::string error;
  // Every output is written from the record as it is read: a session of any number of
  // messages, or a message of any size, costs a batch of them and a piece of a body.
  if (!load_for_read_back(*reader, a.id, detail, error)) {
    log::error("show: " + error);
    return 1;
  }
  if (!detail) {
    log::error("show: no session " + std::to_string(a.id) + " in " + reader->path() +
               " (list them with: mailtap sessions)");
    return 1;
  }
  SessionReadBack session(*reader, *detail);
  const bool transcript = a.message == 0 && a.save.empty() && !a.raw && !a.common.json;
  if (transcript) return write_transcript(*reader, session, a.common.stdout_style());
  if (a.message != 0 || !a.save.empty()) return show_message(a, *reader, session);
  if (a.raw) return show_raw(session);
  return show_json(session);
}

}  // namespace

cli::Subcommand add_show_command(CLI::App& parent) {
  auto args = std::make_shared<ShowArgs>();
  CLI::App* app = parent.add_subcommand("show", "Print one recorded session as a transcript");
  add_session_id(*app, "ID", args->id, "session number (see: mailtap sessions)")->required();
  args->common.add_to(*app);
  args->common.add_color_to(*app);
  auto* raw = app->add_flag("--raw", args->raw,
                            "print the exact recorded bytes of every exchange, in order (on a "
                            "terminal, escaped if they hold control octets)");
  // From 1: 0 would mean "no message" and print the transcript instead.
  const NumberKind message_number{"a message number",
                                  "messages are numbered from 1, as the transcript lists them", 1};
  auto* msg = add_number_option(*app, "--message", message_number, args->message,
                                "print message N of the session (its body as the server got it; "
                                "an unfinished one's as far as recorded, with a warning; on a "
                                "terminal, escaped if it holds control octets)");
  auto* save =
      app->add_option("--save", args->save, "write the message body to FILE instead of stdout")
          // `--save "$OUT"` with OUT unset printed the transcript and saved nothing.
          ->check(options::path_validator("--save", "file",
                                          "give a path, or leave --save out (--message N "
                                          "prints the body on stdout)"));
  // Each names a different output: a combination would quietly drop one of them.
  CLI::Option* json = app->get_option("--json");
  raw->excludes(msg)->excludes(save)->excludes(json);
  json->excludes(msg)->excludes(save);
  return {app, [args] { return run_show(*args); }};
}

}  // namespace mailtap::tools
