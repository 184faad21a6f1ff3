// `mailtap export ID|--all --format json|jsonl|eml|mbox [--accepted-only]`: whole sessions as
// JSON, or the message bodies (every one, or those the server accepted) as .eml files or one
// mboxrd mailbox.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>

#include "proxy/common/hex.hpp"
#include "proxy/common/log.hpp"
#include "proxy/options/database_path_option.hpp"
#include "storage/reader.hpp"
#include "storage/stored_body.hpp"
#include "tools/commands.hpp"
#include "tools/json_writer.hpp"
#include "tools/mboxrd.hpp"
#include "tools/number_options.hpp"
#include "tools/session_json.hpp"
#include "tools/session_read_back.hpp"
#include "tools/terminal_text.hpp"
#include "tools/tool_options.hpp"
#include "tools/unfinished_message.hpp"

namespace mailtap::tools {

namespace {

using storage::Clock;

struct ExportArgs {
  ToolOptions common;
  std::vector<std::int64_t> ids;
  bool all = false;
  std::string format = "json";
  std::string output;          // "" = stdout
  bool accepted_only = false;  // eml, mbox: only the messages the server accepted
  bool unfinished = false;     // eml, mbox: also the unfinished messages, marked
};

// The reverse-path of "MAIL FROM:<a@b> SIZE=1", or "MAILER-DAEMON" for the null path, as one
// ASCII word for the "From " line: readers split that line at spaces and read it as ASCII
// (Python's mailbox fails on an SMTPUTF8 sender), so a space, a control octet, an octet
// outside ASCII and the backslash itself are \xHH: the sender stays whole and can be read back.
std::string envelope_sender(std::string_view mail_from) {
  const auto open = mail_from.find('<');
  const auto close = mail_from.find('>', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos || close == open + 1)
    return "MAILER-DAEMON";
  std::string s;
  for (const char c : mail_from.substr(open + 1, close - open - 1)) {
    const auto u = static_cast<unsigned char>(c);
    if (u > 0x20 && u < 0x7f && c != '\\')
      s += c;
    else
      append_hex_escape(s, u);
  }
  return s;
}

std::string asctime_utc(Clock::time_point t) {
  const std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &tm);
  return buf;
}

// The date a "From " line carries when neither the message's nor its session's start is known
// (a damaged file): mboxrd readers need one, and this one no recording has. Never the epoch,
// which reads as a real time (reader.hpp, SessionRow). docs/tools/export.md names it.
constexpr std::string_view kUnknownFromLineDate = "Mon Jan  1 00:00:00 0001";

// The "From " line that begins a message's mboxrd entry.
std::string mboxrd_from_line(const storage::SessionRow& s, const storage::MessageRow& m) {
  std::string when;
  if (m.message.started != Clock::time_point{})
    when = asctime_utc(m.message.started);
  else if (!s.started_unreadable)
    when = asctime_utc(s.started);
  else
    when = kUnknownFromLineDate;
  return "From " + envelope_sender(m.message.mail_from) + " " + when + "\n";
}

// Whether the server accepted the message: a 2xx to its end of data or last BDAT chunk.
bool accepted(const storage::MessageRow& m) {
  return m.message.final_code >= 200 && m.message.final_code < 300;
}

// "session 7 message 2 was not accepted by the server: 552 ..." for a message the server did
// not accept (its final reply escaped as `show` escapes wire text).
std::string not_accepted(std::int64_t session_id, const storage::MessageRow& m) {
  std::string note = "session " + std::to_string(session_id) + " message " + std::to_string(m.seq);
  std::string_view reply = m.message.final_reply;
  while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.remove_suffix(1);
  if (reply.empty())
    note += " had no reply to its end of data (the session ended first; the server may have it)";
  else
    note += " was not accepted by the server: " + escape_line(reply);
  return note;
}

// A message the server did not accept (no 2xx to its end of data or last chunk) is exported as
// recorded, just as a delivered one is: a note says so, for whoever compares the export with what
// the server's mailbox holds, and names the flag that leaves such messages out
// (docs/tools/export.md). JSON carries final_code instead.
// A message longer than --max-body was recorded cut short: a file that holds it must not pass
// for the whole message (in a directory its listed path says so instead).
void note_if_truncated(std::int64_t session_id, const storage::MessageRow& m) {
  if (!m.message.body_truncated) return;
  log::warning("export: warning: session " + std::to_string(session_id) + " message " +
               std::to_string(m.seq) + " is truncated in the record");
}

void note_if_not_accepted(std::int64_t session_id, const storage::MessageRow& m) {
  if (accepted(m)) return;
  log::warning("export: warning: " + not_accepted(session_id, m) +
               "; exported as recorded (--accepted-only leaves it out)");
}

// With --accepted-only, whether `m` is left out: then stderr names it and why, so that what the
// export lacks of the record is said (the server may have one it never answered).
bool left_out(const ExportArgs& a, std::int64_t session_id, const storage::MessageRow& m) {
  if (!a.accepted_only || accepted(m)) return false;
  log::info("export: " + not_accepted(session_id, m) + "; left out (--accepted-only)");
  return true;
}

// The session's unfinished messages (storage::UnfinishedMessage), each handed to `fn` with what
// is said of it (unfinished_text, escaped for a line), the octets of its body counted by reading
// them. `fn` returns false to stop. False with `error` set if the record cannot say.
bool for_each_unfinished(
    storage::Reader& reader, SessionReadBack& session,
    const std::function<bool(const storage::UnfinishedMessage&, const std::string& text)>& fn,
    std::string& error) {
  std::vector<storage::UnfinishedMessage> unfinished;
  if (!reader.unfinished_messages(session.detail().session.id, unfinished, error)) return false;
  for (const storage::UnfinishedMessage& u : unfinished) {
    std::uint64_t octets = 0;
    if (!unfinished_body_octets(session.octets(), u, octets, error)) return false;
    if (!fn(u, escape_line(unfinished_text(session.detail().session, u, octets)))) return true;
  }
  return true;
}

// An unfinished message is never exported as a message unless asked for (--unfinished): it was
// never delivered, and a file of it would pass for one. Without the flag stderr names it, what
// the record holds of it and how to get that; with it, a warning says what the file holds.
void note_unfinished(const ExportArgs& a, std::int64_t session_id, const std::string& text) {
  if (a.unfinished)
    log::warning("export: warning: session " + std::to_string(session_id) + " " + text +
                 "; exported as far as the record holds it (--unfinished), marked as unfinished");
  else
    log::info("export: session " + std::to_string(session_id) + " " + text +
              "; left out (--unfinished exports what the record holds of it, marked as "
              "unfinished)");
}

// The header line before an unfinished message's text in an mbox (--unfinished).
constexpr std::string_view kUnfinishedHeader = "X-Mailtap-Unfinished";

// What stderr says when the selected sessions give no message to export: exit status 1 in
// eml and mbox alike (the messages asked for are not there, as `show --message` says of a
// session without one), nothing written and an -o FILE left as it was.
std::string no_messages(const ExportArgs& a) {
  return a.accepted_only ? "no message the server accepted in the selected sessions"
                         : "no messages in the selected sessions";
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Where the export goes: stdout, or the -o file (made as write_file makes it), written a piece
// at a time. The first failure stops every later write: said at once by write_stdout, else kept
// in `error` for close(); a loop asks failed() to stop loading sessions nobody gets. Messages
// (eml, mbox) bound for a terminal go through TerminalLines, as `show --message` writes them:
// their text is the client's, and could otherwise drive the terminal (JSON escapes it already).
class ExportOutput {
 public:
  enum class Content { json, messages };

  bool open(const std::string& path, Content content = Content::messages) {
    to_file_ = !path.empty() && path != "-";
    if (!to_file_ && content == Content::messages && ::isatty(STDOUT_FILENO) == 1)
      terminal_.emplace(write_stdout);
    return ok_ = !to_file_ || file_.open(path, error_);
  }
  bool write(std::string_view bytes) {
    if (!ok_) return false;
    if (to_file_) return ok_ = file_.write(bytes, error_);
    if (!(terminal_ ? terminal_->append(bytes) : write_stdout(bytes))) ok_ = false;
    return ok_;
  }
  bool failed() const { return !ok_; }
  // Ends the export: 0, or 1 after saying why it failed (`read_error`: a body file that could
  // not supply its octets, else the output's). Only a complete export replaces the -o file.
  int close(const std::string& read_error = {}) {
    if (ok_ && to_file_ && read_error.empty()) ok_ = file_.close(error_);
    if (ok_ && terminal_ && !terminal_->finish()) ok_ = false;
    if (terminal_ && terminal_->escaped())
      log::error(
          "export: control octets escaped for the terminal (shown as \\xHH, \\r and \\n, as "
          "`show` shows them); -o FILE or a pipe gives the exact bytes");
    if (!read_error.empty()) log::error("export: " + read_error);
    if (!error_.empty()) log::error("export: " + error_);  // stdout's is said already
    return ok_ && read_error.empty() ? 0 : 1;
  }

 private:
  bool to_file_ = false;
  bool ok_ = true;
  OutputFile file_;
  std::optional<TerminalLines> terminal_;
  std::string error_;
};

// The sessions named on the command line (each once, in the order first named), or every
// session for --all, oldest first: from their rows only, so that a session that is not there is
// reported before anything is written, with no body file held yet.
bool select_sessions(const ExportArgs& a, storage::Reader& reader,
                     std::vector<storage::SessionSummary>& selected) {
  std::string error;
  if (a.all) {
    storage::SessionFilter filter;
    filter.newest_first = false;
    if (reader.session_summaries(filter, selected, error)) return true;
    log::error("export: " + error);
    return false;
  }
  // By id: a lookup each, not a summary of every session in the database.
  for (const std::int64_t id : a.ids) {
    const auto has_id = [id](const storage::SessionSummary& s) { return s.session.id == id; };
    if (std::any_of(selected.begin(), selected.end(), has_id)) continue;
    std::optional<storage::SessionSummary> row;
    if (!reader.session_summary(id, row, error)) {
      log::error("export: " + error);
      return false;
    }
    if (!row) {
      log::error("export: no session " + std::to_string(id) + " in " + reader.path());
      return false;
    }
    selected.push_back(std::move(*row));
  }
  return true;
}

using SessionWriter = std::function<bool(SessionReadBack&, std::string& error)>;

// Loads each selected session in turn and hands it to `write`, then lets it go: a session loaded
// with its octets left in the body file holds that file open, and an export of every session
// must not hold them all (the open files run out). Its events and messages are read back a
// batch at a time as they are written, and its bodies a piece at a time (SessionReadBack): a
// session of any number of messages, or of any size, costs a batch and a piece.
bool for_each_session(storage::Reader& reader, const std::vector<storage::SessionSummary>& selected,
                      std::string& error, const SessionWriter& write) {
  for (const auto& s : selected) {
    std::optional<storage::SessionDetail> d;
    if (!load_for_read_back(reader, s.session.id, d, error)) return false;
    if (!d) {
      error = "session " + std::to_string(s.session.id) + " was removed from " + reader.path() +
              " during the export (prune?)";
      return false;
    }
    SessionReadBack session(reader, *d);
    if (write(session, error)) continue;
    // Its rows read a batch at a time as it is written: prune may take them meanwhile, which
    // is said as of a session removed before it was loaded.
    std::optional<storage::SessionSummary> still;
    std::string lookup_error;
    if (reader.session_summary(s.session.id, still, lookup_error) &&
        (!still || still->session.started != s.session.started))
      error = "session " + std::to_string(s.session.id) + " was removed from " + reader.path() +
              " during the export (prune?): " + error;
    return false;
  }
  return true;
}

// Ends JSON written to stdout before a session that could not be read to its end (`error`)
// and says what the output holds. When none of that session was handed over (`cut` false),
// it is left out and the document ends whole: the array closed. Else the session's JSON
// (more than JsonWriter::kFlushOctets of it) is cut short: jsonl ends its line, so that a
// reader of lines gets a last one that is not JSON and no half line run into nothing.
void end_cut_short(JsonWriter& w, std::string_view format, bool array, bool cut,
                   std::string& error) {
  if (!cut) {
    if (array) w.end_array();
    if (format == "json") w.string_piece("\n");
    w.flush();
    error += format == "jsonl" ? "; the output holds a line for each session before it"
                               : "; the output holds the sessions before it";
    return;
  }
  if (format == "jsonl") w.string_piece("\n");
  w.flush();
  error += format == "jsonl"
               ? "; its line in the output is cut short (the last line, which is not JSON)"
               : "; the output ends inside it (not valid JSON)";
}

// json: one object for a single session asked by number, else an array; jsonl: one a line.
// Written as it is read from the record: a message of any size costs a piece of it.
int export_json(const ExportArgs& a, storage::Reader& reader,
                const std::vector<storage::SessionSummary>& selected) {
  ExportOutput out;
  if (!out.open(a.output, ExportOutput::Content::json)) return out.close();
  JsonWriter w;
  w.stream_to([&out](std::string_view piece) { return out.write(piece); });
  const bool array = a.format == "json" && (a.all || selected.size() != 1);
  if (array) w.begin_array();
  std::string error;
  bool cut = false;  // some of the session that could not be read went out
  const bool read = for_each_session(
      reader, selected, error, [&](SessionReadBack& session, std::string& write_error) {
        const JsonWriter::Mark before = w.mark();
        if (!write_session_detail(w, session.detail(), session.octets(), write_error,
                                  session.events(), session.messages())) {
          cut = !w.rewind(before);
          return false;
        }
        if (a.format == "jsonl") w.string_piece("\n");
        // Handed over at its end: what the writer holds when the next session fails is that
        // session's alone, which it can then leave out.
        return w.flush();
      });
  if (!read) {
    if (!out.failed() && (a.output.empty() || a.output == "-"))
      end_cut_short(w, a.format, array, cut, error);
    return out.close(error);
  }
  if (array) w.end_array();
  if (a.format == "json") w.string_piece("\n");
  w.flush();
  return out.close();
}

// The mboxrd entries written to `out`, one message at a time: its "From " line, what goes before
// its text (a header line of mailtap's own, or nothing), then its text quoted. The quoter hands
// out a line or less at a time: gathered, so that writes stay large.
class MboxEntries {
 public:
  // Reads a body, handing its octets to `emit`: false with `error` set if it cannot.
  using Body = std::function<bool(const storage::SessionOctets::Emit& emit, std::string& error)>;

  explicit MboxEntries(ExportOutput& out)
      : out_(out), quoter_([this](std::string_view piece) { pending_.append(piece); }) {}

  // False when the body could not be read (`error` set) or the output failed (its reader has
  // gone: load no more sessions for it).
  bool write(const std::string& from_line, std::string_view lead, const Body& body,
             std::string& error) {
    pending_ += from_line;
    pending_ += lead;
    const auto quote = [this](std::string_view piece) {
      quoter_.append(piece);
      if (pending_.size() >= storage::StoredBodyReader::kChunkOctets) flush();
      return out_.write({});
    };
    if (!body(quote, error)) return false;
    quoter_.finish();
    pending_ += '\n';  // the blank line that separates messages
    flush();
    if (out_.failed()) return false;
    ++count_;
    return true;
  }
  std::size_t count() const { return count_; }

 private:
  void flush() {
    out_.write(pending_);
    pending_.clear();
  }

  ExportOutput& out_;
  std::string pending_;
  MboxrdQuoter quoter_;
  std::size_t count_ = 0;
};

// The session's messages as mbox entries (those --accepted-only keeps). False when one could
// not be read or written.
bool write_mbox_messages(const ExportArgs& a, SessionReadBack& session, MboxEntries& mbox,
                         std::string& error) {
  const storage::SessionRow& s = session.detail().session;
  bool written = true;
  const bool read = session.for_each_message(
      [&](const storage::MessageRow& m) {
        if (left_out(a, s.id, m)) return true;
        written = mbox.write(
            mboxrd_from_line(s, m), "",
            [&](const storage::SessionOctets::Emit& emit, std::string& e) {
              return session.octets().message_body(m, emit, e);
            },
            error);
        if (!written) return false;
        note_if_truncated(s.id, m);
        note_if_not_accepted(s.id, m);
        return true;
      },
      error);
  return read && written;
}

// The session's unfinished messages, after its others: named on stderr, and with --unfinished
// written, each with a header line first that says so: a mail reader shows it, and no reader of
// the mailbox takes it for a delivered message.
bool write_mbox_unfinished(const ExportArgs& a, storage::Reader& reader, SessionReadBack& session,
                           MboxEntries& mbox, std::string& error) {
  const storage::SessionRow& s = session.detail().session;
  bool written = true;
  const bool read = for_each_unfinished(
      reader, session,
      [&](const storage::UnfinishedMessage& u, const std::string& text) {
        note_unfinished(a, s.id, text);
        if (!a.unfinished) return true;
        return written = mbox.write(
                   mboxrd_from_line(s, u.row), std::string(kUnfinishedHeader) + ": " + text + "\n",
                   [&](const storage::SessionOctets::Emit& emit, std::string& e) {
                     return session.octets().message_body(u.row, emit, e);
                   },
                   error);
      },
      error);
  return read && written;
}

int export_mbox(const ExportArgs& a, storage::Reader& reader,
                const std::vector<storage::SessionSummary>& selected) {
  ExportOutput out;
  if (!out.open(a.output)) return out.close();
  MboxEntries mbox(out);
  std::string error;
  if (!for_each_session(reader, selected, error, [&](SessionReadBack& session, std::string& e) {
        return write_mbox_messages(a, session, mbox, e) &&
               write_mbox_unfinished(a, reader, session, mbox, e);
      }))
    return out.close(error);
  if (mbox.count() == 0) return out.close(no_messages(a));  // -o FILE left as it was
  return out.close();
}

// One message's body to `path` ("" or "-": stdout), written as it is read.
int export_body(const std::string& path, storage::SessionOctets& octets,
                const storage::MessageRow& m) {
  ExportOutput out;
  if (!out.open(path)) return out.close();
  std::string error;
  octets.message_body(
      m, [&out](std::string_view piece) { return out.write(piece); }, error);
  return out.close(error);
}

// The session's messages as DIR/session-<id>-message-<n>.eml (those --accepted-only keeps),
// each path listed on stdout. False when one could not be read or written (`written` false:
// said already).
bool write_message_emls(const ExportArgs& a, SessionReadBack& session, const std::string& dir,
                        bool& written, std::string& error) {
  const std::int64_t id = session.detail().session.id;
  const bool read = session.for_each_message(
      [&](const storage::MessageRow& m) {
        if (left_out(a, id, m)) return true;
        const std::string path =
            dir + "session-" + std::to_string(id) + "-message-" + std::to_string(m.seq) + ".eml";
        if (export_body(path, session.octets(), m) != 0) return written = false;
        std::string line = path;
        if (m.message.body_truncated) line += "  (truncated in the record)";
        if (!write_stdout(line + "\n")) return written = false;  // said by write_stdout
        note_if_not_accepted(id, m);
        return true;
      },
      error);
  return read && written;
}

// The session's unfinished messages, named on stderr; with --unfinished written as
// DIR/session-<id>-message-<n>.unfinished.eml, named so in the file name and the listed path.
bool write_unfinished_emls(const ExportArgs& a, storage::Reader& reader, SessionReadBack& session,
                           const std::string& dir, bool& written, std::string& error) {
  const std::int64_t id = session.detail().session.id;
  const bool read = for_each_unfinished(
      reader, session,
      [&](const storage::UnfinishedMessage& u, const std::string& text) {
        note_unfinished(a, id, text);
        if (!a.unfinished) return true;
        const std::string path = dir + "session-" + std::to_string(id) + "-message-" +
                                 std::to_string(u.row.seq) + ".unfinished.eml";
        if (export_body(path, session.octets(), u.row) != 0) return written = false;
        if (!write_stdout(path + "  (not finished)\n")) return written = false;
        return true;
      },
      error);
  return read && written;
}

// Every message as DIR/session-<id>-message-<n>.eml, each path listed on stdout.
int write_eml_directory(const ExportArgs& a, storage::Reader& reader,
                        const std::vector<storage::SessionSummary>& selected) {
  if (!is_directory(a.output) && ::mkdir(a.output.c_str(), 0700) != 0) {
    const int e = errno;
    log::error("export: " + a.output + ": " +
               (e == EEXIST ? "not a directory: with --all, several sessions or several "
                              "messages, eml writes one file each into -o DIR"
                            : std::strerror(e)));
    return 1;
  }
  std::string dir = a.output;
  if (dir.back() != '/') dir.push_back('/');
  bool written = true;  // else export_body has said why not
  std::string error;
  const bool read =
      for_each_session(reader, selected, error, [&](SessionReadBack& session, std::string& e) {
        return write_message_emls(a, session, dir, written, e) &&
               write_unfinished_emls(a, reader, session, dir, written, e);
      });
  if (!read && written) log::error("export: " + error);
  return read ? 0 : 1;
}

// The messages an eml export writes: every one, or with --accepted-only those the server
// accepted, counted from their rows before any is written (a batch at a time, no body file
// read): a session's summary counts both.
bool count_messages(const ExportArgs& a, storage::Reader& reader,
                    const std::vector<storage::SessionSummary>& selected, std::int64_t& total,
                    std::string& error) {
  total = 0;
  for (const auto& s : selected) total += s.messages;
  if (a.unfinished) {  // never with --accepted-only
    std::vector<storage::UnfinishedMessage> unfinished;
    for (const auto& s : selected) {
      if (!reader.unfinished_messages(s.session.id, unfinished, error)) return false;
      total += static_cast<std::int64_t>(unfinished.size());
    }
  }
  if (!a.accepted_only || total == 0) return true;
  total = 0;
  return for_each_session(reader, selected, error, [&](SessionReadBack& session, std::string& e) {
    return session.for_each_message(
        [&](const storage::MessageRow& m) {
          if (accepted(m)) ++total;
          return true;
        },
        e);
  });
}

// Each message --accepted-only leaves out named, and each unfinished one: a pass over them that
// writes nothing.
void name_left_out(const ExportArgs& a, storage::Reader& reader,
                   const std::vector<storage::SessionSummary>& selected) {
  std::string error;
  for_each_session(reader, selected, error, [&](SessionReadBack& session, std::string& e) {
    const std::int64_t id = session.detail().session.id;
    return session.for_each_message(
               [&](const storage::MessageRow& m) {
                 left_out(a, id, m);
                 return true;
               },
               e) &&
           for_each_unfinished(
               reader, session,
               [&](const storage::UnfinishedMessage&, const std::string& text) {
                 note_unfinished(a, id, text);
                 return true;
               },
               e);
  });
}

// The one message: the first of the one session that has any (that the server accepted, with
// --accepted-only, whose others are then named as left out).
int export_one_eml(const ExportArgs& a, storage::Reader& reader,
                   const std::vector<storage::SessionSummary>& selected) {
  std::string error;
  int status = 1;
  bool exported = false;
  const bool read =
      for_each_session(reader, selected, error, [&](SessionReadBack& session, std::string& e) {
        const std::int64_t id = session.detail().session.id;
        const bool messages_read = session.for_each_message(
            [&](const storage::MessageRow& m) {
              if (left_out(a, id, m)) return true;
              if (exported) return true;  // one recorded since they were counted: not this file
              status = export_body(a.output, session.octets(), m);
              if (status == 0) {
                note_if_truncated(id, m);
                note_if_not_accepted(id, m);
              }
              exported = true;
              return status == 0 && a.accepted_only;  // else done
            },
            e);
        if (!messages_read || (exported && status != 0)) return false;
        const bool unfinished_read = for_each_unfinished(
            reader, session,
            [&](const storage::UnfinishedMessage& u, const std::string& text) {
              note_unfinished(a, id, text);
              if (!a.unfinished || exported) return true;
              status = export_body(a.output, session.octets(), u.row);
              exported = true;
              return status == 0;
            },
            e);
        return unfinished_read && (!exported || (status == 0 && a.accepted_only));
      });
  if (exported) return status;
  if (!read) {
    if (!error.empty()) log::error("export: " + error);
    return status;
  }
  log::error("export: " + no_messages(a));  // removed since they were counted
  return 1;
}

// eml: one file per message. A single message may go to stdout, or to a file when one session
// is named; several messages, --all or several sessions need a directory, where they are named
// session-<id>-message-<n>.eml.
int export_eml(const ExportArgs& a, storage::Reader& reader,
               const std::vector<storage::SessionSummary>& selected) {
  std::int64_t total = 0;
  std::string error;
  if (!count_messages(a, reader, selected, total, error)) {
    log::error("export: " + error);
    return 1;
  }
  if (total == 0) {
    name_left_out(a, reader, selected);
    log::error("export: " + no_messages(a));
    return 1;
  }
  // -o names a directory for a selection that may hold several messages (--all, several
  // sessions), whatever the count of this database: `export --all --format eml -o emls` makes
  // emls/ on a small database too. One session's one message goes to -o FILE.
  const bool to_dir = !a.output.empty() && a.output != "-" &&
                      (is_directory(a.output) || a.output.back() == '/' || a.all ||
                       selected.size() > 1 || total > 1);
  if (to_dir) return write_eml_directory(a, reader, selected);
  if (total > 1) {
    log::error("export: " + std::to_string(total) + (a.accepted_only ? " accepted" : "") +
               " messages: give -o DIR to write one .eml file each");
    return 2;
  }
  return export_one_eml(a, reader, selected);
}

int run_export(const ExportArgs& a) {
  const std::string& f = a.format;
  if (f != "json" && f != "jsonl" && f != "eml" && f != "mbox") {
    log::error("export: unknown --format \"" + f + "\" (json, jsonl, eml or mbox)");
    return 2;
  }
  if (a.all && !a.ids.empty()) {
    log::error("export: give session numbers or --all (not both)");
    return 2;
  }
  if (!a.all && a.ids.empty()) {
    log::error(
        "export: give the session numbers to export (mailtap sessions lists them), or "
        "--all for every session");
    return 2;
  }
  // JSON is the sessions' record as it is: a message left out of `messages` would still be in
  // the events (its DATA octets, its BDAT chunks), and each message's final_code already says
  // whether the server accepted it. Refused rather than filtered: docs/tools/export.md.
  if (a.accepted_only && (f == "json" || f == "jsonl")) {
    log::error("export: --accepted-only is for --format eml or mbox, not " +
               std::string(f == "json" ? "json (the default)" : "jsonl") +
               ": JSON is each session's whole record, every message (its octets in the events "
               "too) with its final_code, a 2xx for one the server accepted");
    return 2;
  }
  if (a.unfinished && f != "eml" && f != "mbox") {
    log::error(
        "export: --unfinished is for --format eml or mbox: JSON holds every event, an "
        "unfinished message's body octets among them");
    return 2;
  }
  if (a.unfinished && a.accepted_only) {
    log::error(
        "export: --unfinished and --accepted-only exclude each other: the server never "
        "accepted an unfinished message");
    return 2;
  }
  int failure_status = 1;
  auto reader = a.common.open_reader("export", failure_status);
  if (!reader) return failure_status;
  std::vector<storage::SessionSummary> selected;
  if (!select_sessions(a, *reader, selected)) return 1;
  if (f == "json" || f == "jsonl") return export_json(a, *reader, selected);
  if (f == "mbox") return export_mbox(a, *reader, selected);
  return export_eml(a, *reader, selected);
}

}  // namespace

cli::Subcommand add_export_command(CLI::App& parent) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* app = parent.add_subcommand(
      "export", "Export sessions as JSON/JSON Lines, or their messages as .eml files or mbox");
  // Not CLI11's excludes: its "id excludes --all" names a placeholder the user never typed;
  // run_export refuses both with words of its own.
  add_session_ids(*app, "ID", args->ids, "session numbers to export");
  app->add_flag("--all", args->all, "export every session (not with session numbers)");
  app->add_option("--format", args->format, "json (default), jsonl, eml or mbox")
      ->check(CLI::IsMember({"json", "jsonl", "eml", "mbox"}));
  app->add_flag("--accepted-only", args->accepted_only,
                "eml and mbox: only the messages the server accepted (a 2xx to the end of data "
                "or the last BDAT chunk); the others are named on stderr (not with json, jsonl)");
  app->add_flag("--unfinished", args->unfinished,
                "eml and mbox: also what the record holds of each unfinished message (a body cut "
                "off by the session's end, never delivered), marked as such; without it they are "
                "named on stderr and left out");
  app->add_option("-o,--output", args->output,
                  "output file (default stdout); for eml a directory, but for the one message "
                  "of one session")
      ->check(options::output_path_validator("--output"));
  args->common.add_to(*app, false);
  return {app, [args] { return run_export(*args); }};
}

}  // namespace mailtap::tools
