#include "tools/audit_report.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "proxy/common/terminal_escape.hpp"
#include "proxy/smtp/auth_redactor.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/event.hpp"
#include "proxy/smtp/text_normaliser.hpp"
#include "storage/reader.hpp"
#include "tools/chunk_command_scan.hpp"
#include "tools/json_writer.hpp"
#include "tools/reply_codes.hpp"
#include "tools/stream_credential_scan.hpp"
#include "tools/time_format.hpp"

namespace mailtap::tools {

namespace {

class Auditor {
 public:
  // Holds `scan` (and its password) by reference: no copy of the password.
  Auditor(storage::Reader& reader, const CredentialScanOptions& scan)
      : reader_(reader), scan_(scan) {}

  // A damaged file (malformed pages, a missing or short body file) is what the audit is there
  // to report: the part it spoils is listed under the integrity check and every other part
  // still runs. Any other failure stops the audit.
  bool run(AuditReport& r, int expiry_days, std::string& error) {
    const bool ran = part(integrity(r, error), "integrity", "the integrity check", error) &&
                     part(scan_events(r, error), "events", "events", error) &&
                     part(scan_messages(r, error), "messages", "messages", error) &&
                     totals(r, expiry_days, error);
    if (!ran) return false;
    for (const SessionShapes& s : shapes_) r.smuggling.push_back({s.session, describe_shapes(s)});
    report_unreadable_bodies(r);
    r.unread = unread_;
    if (!damage_.empty()) {
      // Said of the database file alone, now that the record as a whole is not.
      if (r.integrity_ok()) r.integrity = {"database file: ok (PRAGMA integrity_check)"};
      r.integrity.insert(r.integrity.end(), damage_.begin(), damage_.end());
    }
    return true;
  }

 private:
  void scan(AuditReport& r, std::int64_t session, const std::string& where,
            std::string_view bytes) {
    for (auto& f : scan_for_credentials(bytes, scan_))
      r.leaks.push_back({session, where + " at offset " + std::to_string(f.offset), f.what});
  }

  // A body file gone while its session is still in the record is damage. One whose session
  // the totals (read after the scans) no longer hold went with it: prune deletes a session's
  // rows, then its file, as export finds a session "removed during the export". By its id and
  // its started_at: a session recorded since may have been given the id (no AUTOINCREMENT).
  // Only when the sessions could be read: a damaged sessions table tells nothing of what was
  // removed.
  void report_unreadable_bodies(AuditReport& r) {
    for (const auto& [session, body] : unreadable_bodies_) {
      if (sessions_read_ && body.removed) {
        r.removed_while_auditing.push_back(session);
        continue;
      }
      damage_.push_back("session " + std::to_string(session) + ": " + std::to_string(body.events) +
                        " event(s) whose body octets cannot be read (" + body.first_reason + ")");
    }
  }

  // A part spoilt by damage is named in `unread_` by `key` (AuditReport::unread), so what the
  // report says of it is "not read", never "none".
  bool part(bool ok, const char* key, const char* what, std::string& error) {
    if (ok) return true;
    if (!reader_.last_failure_is_damage()) return false;
    unread_.emplace_back(key);
    damage_.push_back(std::string(what) + " could not be read to the end: " + error);
    error.clear();
    return true;
  }

  // The sessions, their outcomes, failures and TLS are set side by side, and must add up
  // while a proxy records: read from one snapshot. These reads are short (grouped in SQL, the
  // session rows alone; their text is scanned after), so the WAL is held back only briefly.
  // The scans of every stored octet before them are each one statement, as long as they take.
  bool totals(AuditReport& r, int expiry_days, std::string& error) {
    std::vector<storage::SessionRow> sessions;
    const bool read = reader_.in_one_snapshot(
        [&] {
          sessions_read_ = read_sessions(sessions, error) && unreadable_sessions_left(error);
          return part(sessions_read_, "sessions", "sessions", error) &&
                 part(failures(r, error), "failures", "the failure summary", error) &&
                 part(certificates(r, expiry_days, error), "tls", "the TLS summary", error);
        },
        error);
    if (!read) return false;
    scan_sessions(r, sessions);
    return true;
  }

  // Which sessions with an unreadable body the snapshot no longer holds (UnreadableBody::removed).
  bool unreadable_sessions_left(std::string& error) {
    for (auto& [session, body] : unreadable_bodies_) {
      bool still = false;
      if (!reader_.is_still_the_session(session, body.started_at, still, error)) return false;
      body.removed = !still;
    }
    return true;
  }

  bool integrity(AuditReport& r, std::string& error) {
    std::vector<std::string> rows;
    if (!reader_.integrity_check(rows, error)) return false;
    // SQLite may join several problems in one row with LFs: one line each.
    for (const std::string& row : rows) {
      std::size_t begin = 0;
      while (begin <= row.size()) {
        const std::size_t end = std::min(row.find('\n', begin), row.size());
        if (end > begin) r.integrity.push_back(row.substr(begin, end - begin));
        begin = end + 1;
      }
    }
    if (r.integrity.empty()) r.integrity.push_back("integrity_check returned nothing");
    return true;
  }

  // What scan_events carries from one event of a session to the next.
  struct SessionScan {
    explicit SessionScan(const CredentialScanOptions& scan) : body(scan) {}
    std::int64_t current = -1;
    // The client's body events of one transaction, as one stream: what crosses from one to
    // the next (a body is stored in pieces of up to 256 KiB).
    StreamCredentialScan body;
    std::uint64_t body_transaction = 0;
    std::uint64_t body_last_seq = 0;  // the body event the stream last took octets from
    // The client's DATA/BDAT bytes of the current session, read for smuggling shapes as they
    // come (a session's bodies may be gigabytes: they are never held joined).
    SmugglingShapeStream data;
    std::vector<SmugglingShape> data_shapes;
    std::string login_prompt;  // "Username:"/"Password:" after a 334, until the client answers
    bool after_auth = false;   // the client sent an AUTH line; no line with a verb since
    // The reply that ended that AUTH exchange (the first one after it but a 334), 0 until then.
    int auth_end_code = 0;
    // Shapes mailtap neutralised as they arrived ("\n.\n at offset 12"), from its rewrite
    // notes, each with its mail transaction (0 in recordings made before the notes named it);
    // older recordings kept the raw shapes in their DATA bytes, scanned as well.
    std::vector<std::pair<std::uint64_t, std::string>> noted_shapes;
    // The client's chunks whose BDAT replies have not come yet, oldest first (a recording made
    // before chunks went one reply at a time may pipeline them), each with its BDAT line's event.
    struct SentChunk {
      std::uint64_t bdat_seq = 0;
      ChunkCommandScan lines;
    };
    std::deque<SentChunk> chunks;
  };

  // A session's smuggling shapes, listed once the messages say which number each
  // transaction's message has.
  struct SessionShapes {
    std::int64_t session = 0;
    std::vector<std::pair<std::uint64_t, std::string>> noted;
    std::set<std::string> found;  // in the DATA bytes of old recordings
  };

  // The end of a session's events: keeps its smuggling shapes, noted and found in its DATA, and
  // what the end of its last body held.
  void finish_session(AuditReport& r, SessionScan& st) {
    if (st.current < 0) return;
    finish_body(r, st.current, st);
    SessionShapes shapes{st.current, std::move(st.noted_shapes), {}};
    st.data.finish(st.data_shapes);
    for (auto& s : st.data_shapes) shapes.found.insert(std::move(s.shape));
    if (!shapes.noted.empty() || !shapes.found.empty()) shapes_.push_back(std::move(shapes));
    st.data_shapes.clear();
    st.noted_shapes.clear();
    st.login_prompt.clear();
    st.after_auth = false;
    st.auth_end_code = 0;
    st.body_transaction = 0;
    st.chunks.clear();
  }

  // servers-F1: a chunk the server refused with a 5yz whose lines look like commands: a server
  // at its size limit may have read them as commands (Exim 4.96), a message no record shows.
  static void check_refused_chunk(AuditReport& r, std::int64_t session, std::uint64_t seq,
                                  const smtp::Event& e, SessionScan& st) {
    using smtp::EventKind;
    if (e.verb != "BDAT") return;
    if (e.direction == smtp::Direction::client_to_upstream && e.kind == EventKind::command) {
      st.chunks.push_back({seq, {}});
    } else if (e.direction == smtp::Direction::client_to_upstream &&
               e.kind == EventKind::bdat_chunk && !st.chunks.empty()) {
      st.chunks.back().lines.add(e.bytes);
    } else if (!smtp::from_client(e.direction) && e.kind == EventKind::reply &&
               !st.chunks.empty()) {
      const std::uint64_t bdat_seq = st.chunks.front().bdat_seq;
      std::set<std::string> found = st.chunks.front().lines.take();
      st.chunks.pop_front();
      if (e.reply_code < 500 || found.empty()) return;
      std::string lines;
      for (const std::string& f : found) lines += (lines.empty() ? "" : ", ") + f;
      r.refused_chunks.push_back(
          {session, "event " + std::to_string(bdat_seq) + ": the server refused a BDAT chunk (" +
                        std::to_string(e.reply_code) + ") that holds lines beginning " + lines +
                        ": a server at its size limit may have read them as commands (Exim "
                        "does), and a message they sent is in no record"});
    }
  }

  // A leak in a body, found when the stream had reached the piece `last_seq`.
  static void body_leak(AuditReport& r, std::int64_t session, StreamFinding& f,
                        std::uint64_t last_seq) {
    std::string where =
        "event " + std::to_string(f.piece) + " bytes at offset " + std::to_string(f.offset);
    if (f.piece != last_seq) where += ", on into event " + std::to_string(last_seq);
    r.leaks.push_back({session, std::move(where), std::move(f.what)});
  }

  // The body stream ended (its transaction, its session, or a piece that cannot be read): the
  // base64 run it ended with, held back in case the next piece went on with it, is judged.
  static void finish_body(AuditReport& r, std::int64_t session, SessionScan& st) {
    for (StreamFinding& f : st.body.finish()) body_leak(r, session, f, st.body_last_seq);
  }

  static void scan_body_piece(AuditReport& r, std::int64_t session, std::uint64_t seq,
                              const smtp::Event& e, SessionScan& st) {
    if (e.transaction != st.body_transaction) {
      finish_body(r, session, st);
      st.body_transaction = e.transaction;
    }
    for (StreamFinding& f : st.body.add(seq, e.bytes)) body_leak(r, session, f, seq);
    if (!e.bytes.empty()) st.body_last_seq = seq;
  }

  // "message 2: \n.\n at offset 24, \r.\r at offset 90; message 3: ...": the offsets are each
  // message's own, so each group names its message (as `show --message` numbers it).
  std::string describe_shapes(const SessionShapes& s) const {
    std::vector<std::pair<std::uint64_t, std::string>> groups;  // by first appearance
    for (const auto& noted : s.noted) {
      auto group = std::find_if(groups.begin(), groups.end(),
                                [&](const auto& g) { return g.first == noted.first; });
      if (group == groups.end()) {
        groups.emplace_back(noted.first, message_name(s.session, noted.first) + noted.second);
      } else {
        group->second += ", " + noted.second;
      }
    }
    std::string text;
    for (const auto& [transaction, group] : groups) text += (text.empty() ? "" : "; ") + group;
    for (const auto& shape : s.found) text += (text.empty() ? "" : ", ") + shape;
    return text;
  }

  // "message 2: ", or nothing for a note that names no transaction (an older recording).
  std::string message_name(std::int64_t session, std::uint64_t transaction) const {
    if (transaction == 0) return "";
    const auto m = message_numbers_.find({session, transaction});
    if (m == message_numbers_.end()) return "a message never ended (no message row): ";
    return "message " + std::to_string(m->second) + ": ";
  }

  static void note_rewrite(std::int64_t session, const smtp::Event& e, SessionScan& st,
                           std::map<std::int64_t, AuditRewrite>& rewrites) {
    if (e.note.rfind(smtp::smuggling_shape_note_prefix, 0) == 0) {
      const std::string shape = e.note.substr(smtp::smuggling_shape_note_prefix.size());
      st.noted_shapes.emplace_back(e.transaction, shape.substr(0, shape.find(" of the message")));
      return;
    }
    // The EHLO reply's filtering and --assist-auth's encoding are mailtap's designed work on
    // every such session, not a client's text that deserves a look.
    if (!smtp::is_client_text_rewrite_note(e.note)) return;
    auto& rw = rewrites[session];
    rw.session = session;
    if (rw.count++ == 0) rw.sample = e.note;
  }

  // AUTH LOGIN: the answer to a prompt that asks for the password ("334 UGFzc3dvcmQ6",
  // Password:, or any other holding "pass") must be redacted: the redactor's own rule.
  static void check_login_password(AuditReport& r, std::int64_t session, const std::string& where,
                                   const smtp::Event& e, SessionScan& st) {
    const bool from_client = smtp::from_client(e.direction);
    if (e.reply_code == 334 && !from_client) {
      std::string line = e.bytes.substr(0, e.bytes.find_first_of("\r\n"));
      std::string decoded;
      if (line.size() > 4) {
        if (auto d = smtp::base64_decode(line.substr(4))) decoded = *d;
      }
      st.login_prompt = decoded.empty() ? e.note : decoded;
    } else if (from_client && e.kind == smtp::EventKind::auth) {
      if (!e.redacted && smtp::login_prompt_asks_for_password(st.login_prompt)) {
        const std::string line = e.bytes.substr(0, e.bytes.find_first_of("\r\n"));
        if (looks_like_base64_text(line))
          r.leaks.push_back({session, where + " bytes",
                             "AUTH LOGIN password response recorded without redaction"});
      }
      st.login_prompt.clear();
    } else if (from_client) {
      st.login_prompt.clear();
    }
  }

  // Behind a refused AUTH, the client's next lines without a verb are its SASL responses (an
  // AUTH LOGIN user name and password pasted in one go) read as commands: the dialogue records
  // them redacted (docs/dialogue.md, "Sync points"). One stored as sent is a leak. Behind an
  // AUTH that succeeded (its exchange ended with a 2yz) such a line is only a stray line, which
  // the dialogue stores as sent. An AUTH whose ending reply was not recorded counts as refused.
  static void check_lines_after_auth(AuditReport& r, std::int64_t session, const std::string& where,
                                     const smtp::Event& e, SessionScan& st) {
    if (!smtp::from_client(e.direction)) {
      // The upstream's reply or mailtap's own: the first that is not a 334 ends the exchange.
      if (st.after_auth && st.auth_end_code == 0 && e.reply_code > 0 && e.reply_code != 334 &&
          (e.kind == smtp::EventKind::reply || e.kind == smtp::EventKind::local_reply ||
           e.kind == smtp::EventKind::auth))
        st.auth_end_code = e.reply_code;
      return;
    }
    if (e.kind == smtp::EventKind::auth) {
      st.after_auth = true;
      st.auth_end_code = 0;
      return;
    }
    if (e.kind != smtp::EventKind::command) return;
    const std::string line = e.bytes.substr(0, e.bytes.find_first_of("\r\n"));
    if (smtp::parse_command(line).id != smtp::Verb::other) {
      st.after_auth = false;
      st.auth_end_code = 0;
      return;
    }
    const bool auth_succeeded = st.auth_end_code / 100 == 2;
    if (st.after_auth && !auth_succeeded && !e.redacted && looks_like_base64_text(line))
      r.leaks.push_back({session, where + " bytes",
                         "base64 line after an AUTH line recorded without redaction (a SASL "
                         "response, such as an AUTH LOGIN password)"});
  }

  bool scan_events(AuditReport& r, std::string& error) {
    SessionScan st(scan_);
    std::map<std::int64_t, AuditRewrite> rewrites;
    const bool ok = reader_.for_each_event(
        [&](std::int64_t session, const storage::EventRow& row) {
          if (session != st.current) {
            finish_session(r, st);
            st.current = session;
          }
          const smtp::Event& e = row.event;
          const std::string where = "event " + std::to_string(row.seq);
          if (!row.unreadable.empty()) {
            auto& body = unreadable_bodies_[session];
            if (body.events++ == 0) {
              body.first_reason = row.unreadable;
              body.started_at = row.session_started_at;
            }
            finish_body(r, session, st);  // the stream has a hole here
          }
          using smtp::EventKind;
          // A body piece is scanned as part of its body, which knows what comes before it.
          if (smtp::from_client(e.direction) &&
              (e.kind == EventKind::data || e.kind == EventKind::bdat_chunk)) {
            st.data.add(e.bytes, st.data_shapes);
            scan_body_piece(r, session, row.seq, e, st);
          } else {
            scan(r, session, where + " bytes", e.bytes);
          }
          scan(r, session, where + " note", e.note);
          if (e.kind == EventKind::rewrite) note_rewrite(session, e, st, rewrites);
          check_login_password(r, session, where, e, st);
          check_lines_after_auth(r, session, where, e, st);
          check_refused_chunk(r, session, row.seq, e, st);
        },
        error);
    // What was read before a failure is reported all the same.
    finish_session(r, st);
    for (auto& [id, rw] : rewrites) r.rewrites.push_back(rw);
    return ok;
  }

  bool scan_messages(AuditReport& r, std::string& error) {
    const bool ok = reader_.for_each_message(
        [&](std::int64_t session, const storage::MessageRow& m) {
          const std::string where = "message " + std::to_string(m.seq);
          if (!m.unreadable.empty())
            damage_.push_back("session " + std::to_string(session) + " " + where + ": " +
                              escape_line(m.unreadable));
          if (m.message.transaction != 0)
            message_numbers_[{session, m.message.transaction}] = m.seq;
          scan(r, session, where + " mail_from", m.message.mail_from);
          // Recorded before schema v4 only; since, the body is its events, scanned above.
          for (auto& f : scan_for_credentials(m.message.body, scan_, 0, /*message_body=*/true))
            r.leaks.push_back(
                {session, where + " body at offset " + std::to_string(f.offset), f.what});
          scan(r, session, where + " final_reply", m.message.final_reply);
        },
        error);
    if (!ok) return false;
    return reader_.for_each_recipient(
        [&](const storage::RecordedRecipient& rc) {
          const std::string where = "message " + std::to_string(rc.message_seq) + " recipient " +
                                    std::to_string(rc.position);
          scan(r, rc.session_id, where + " command", rc.recipient.command);
          scan(r, rc.session_id, where + " reply", rc.recipient.reply);
        },
        error);
  }

  // Every session's row, by id.
  bool read_sessions(std::vector<storage::SessionRow>& sessions, std::string& error) {
    storage::SessionFilter all;
    all.newest_first = false;
    if (!reader_.list_sessions(all, sessions, error)) {
      sessions.clear();  // a part of them is not the sessions
      return false;
    }
    std::sort(sessions.begin(), sessions.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    return true;
  }

  // Every free-text column of every session: scanned for credentials; and which sessions ran
  // with --insecure or had their certificate refused.
  void scan_sessions(AuditReport& r, const std::vector<storage::SessionRow>& sessions) {
    for (const storage::SessionRow& s : sessions) {
      ++r.sessions;
      const std::pair<const char*, const std::string*> texts[] = {
          {"client_address", &s.client_address},
          {"listen_address", &s.listen_address},
          {"upstream_host", &s.upstream_host},
          {"resolved_address", &s.resolved_address},
          {"ehlo_name", &s.ehlo_name},
          {"sni", &s.sni},
          {"verified_name", &s.verified_name},
          {"verify_reason", &s.verify_reason},
          {"outcome_reason", &s.outcome_reason},
          {"auth_user", &s.auth_user},
          {"client_cert_subject", &s.client_cert_subject}};
      for (const auto& [column, text] : texts)
        scan(r, s.id, std::string("sessions.") + column, *text);
      // Its times read as the epoch (shown as unreadable, never pruned by age), or its length
      // is unreadable.
      if (!s.unreadable.empty())
        damage_.push_back("session " + std::to_string(s.id) + ": " + escape_line(s.unreadable));
      if (s.insecure) r.insecure.push_back(s.id);
      if (s.verify_status == storage::VerifyStatus::failed)
        r.verify_failures.emplace_back(s.id,
                                       smtp::verification_text(s.verify_status, s.verify_reason));
    }
  }

  // A session without an end is "cut" when its writer is gone, else "in_progress" (running,
  // or recorded before the schema told: as before).
  static std::string outcome_name(const storage::OutcomeCount& o) {
    if (o.outcome) return std::string(storage::to_string(*o.outcome));
    return o.record == storage::RecordState::cut ? "cut" : "in_progress";
  }

  // Counts of one name (running and unknown sessions are both in_progress) are added up, the
  // list staying most first.
  static void add_outcome(AuditReport& r, std::string name, std::int64_t sessions) {
    auto it = std::find_if(r.outcomes.begin(), r.outcomes.end(),
                           [&](const auto& o) { return o.first == name; });
    if (it == r.outcomes.end()) {
      r.outcomes.emplace_back(std::move(name), sessions);
    } else {
      it->second += sessions;
    }
    std::stable_sort(r.outcomes.begin(), r.outcomes.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
  }

  bool failures(AuditReport& r, std::string& error) {
    std::vector<storage::FailureReplyCount> failures;
    if (!reader_.failure_reply_counts(failures, error)) return false;
    for (const auto& f : failures)
      r.failures.push_back(
          {f.upstream_host, f.reply_code, f.enhanced_status, f.by_mailtap, f.replies, f.sessions});
    std::vector<storage::OutcomeCount> outcomes;
    if (!reader_.outcome_counts(outcomes, error)) return false;
    for (const auto& o : outcomes) add_outcome(r, outcome_name(o), o.sessions);
    return true;
  }

  bool certificates(AuditReport& r, int expiry_days, std::string& error) {
    std::vector<storage::TlsCount> tls;
    if (!reader_.tls_counts(tls, error)) return false;
    for (const auto& t : tls)
      r.tls.push_back({t.tls_version.empty() ? "none" : t.tls_version, t.cipher, t.sessions});
    std::vector<storage::CertificateSeen> seen;
    if (!reader_.certificates_seen(seen, error)) return false;
    const auto now = Clock::now();
    const auto soon = now + std::chrono::hours(24) * expiry_days;
    for (const auto& cert : seen) {
      AuditCertLine c{cert.sha256_hex,    cert.subject, cert.not_after, "",
                      cert.first_session, cert.sessions};
      const auto not_after = parse_time_spec(c.not_after, now);
      if (!not_after)
        c.state = "unreadable expiry date";
      else if (*not_after < now)
        c.state = "expired";
      else if (*not_after < soon)
        c.state = "expires within " + std::to_string(expiry_days) + " days";
      if (!c.state.empty()) r.certificates.push_back(std::move(c));
    }
    return true;
  }

  storage::Reader& reader_;
  const CredentialScanOptions& scan_;
  struct UnreadableBody {
    std::int64_t events = 0;
    std::string first_reason;
    std::string started_at;  // of the session whose event it was (EventRow::session_started_at)
    bool removed = false;    // that session is not in the totals' snapshot
  };
  std::map<std::int64_t, UnreadableBody> unreadable_bodies_;  // by session
  bool sessions_read_ = false;
  std::vector<SessionShapes> shapes_;
  // (session, mail_transaction) -> the message's number in its session
  std::map<std::pair<std::int64_t, std::uint64_t>, std::uint64_t> message_numbers_;
  std::vector<std::string> damage_;  // what else the damage spoiled
  std::vector<std::string> unread_;  // AuditReport::unread
};

}  // namespace

bool build_audit_report(storage::Reader& reader, const CredentialScanOptions& scan, int expiry_days,
                        AuditReport& out, std::string& error) {
  Auditor auditor(reader, scan);
  return auditor.run(out, expiry_days, error);
}

bool build_audit_report(const std::string& path, const CredentialScanOptions& scan, int expiry_days,
                        AuditReport& out, std::string& error) {
  std::unique_ptr<storage::Reader> reader = storage::Reader::open(path, error);
  if (!reader) return false;
  return build_audit_report(*reader, scan, expiry_days, out, error);
}

// Text from the record (a note, a host name, a verification reason, a certificate's subject)
// goes through write_bytes_member, as in export: base64 beside "<name>_encoding" when it is
// not UTF-8, so no octet is lost to U+FFFD.
namespace {
// An array of {"session": N, "<member>": text}.
void write_session_findings(JsonWriter& w, std::string_view key, std::string_view member,
                            const std::vector<AuditSmuggle>& findings) {
  w.key(key).begin_array();
  for (const auto& x : findings) {
    w.begin_object().key("session").value(x.session);
    write_bytes_member(w, member, x.shapes);
    w.end_object();
  }
  w.end_array();
}
}  // namespace

std::string audit_report_json(const AuditReport& r) {
  JsonWriter w;
  w.begin_object();
  w.key("ok").value(!r.problems());
  w.key("sessions").value(r.sessions);
  write_bytes_array_member(w, "integrity", r.integrity);
  w.key("unread").begin_array();
  for (const auto& part : r.unread) w.value(part);
  w.end_array();
  w.key("removed_while_auditing").begin_array();
  for (auto id : r.removed_while_auditing) w.value(id);
  w.end_array();
  w.key("credential_leaks").begin_array();
  for (const auto& l : r.leaks) {
    w.begin_object().key("session").value(l.session);
    write_bytes_member(w, "where", l.where);
    write_bytes_member(w, "what", l.what);
    w.end_object();
  }
  w.end_array();
  w.key("rewrites").begin_array();
  for (const auto& x : r.rewrites) {
    w.begin_object().key("session").value(x.session).key("count").value(x.count);
    write_bytes_member(w, "sample", x.sample);
    w.end_object();
  }
  w.end_array();
  write_session_findings(w, "smuggling_shapes", "shapes", r.smuggling);
  write_session_findings(w, "refused_chunks_with_commands", "what", r.refused_chunks);
  w.key("failures").begin_array();
  for (const auto& f : r.failures) {
    w.begin_object();
    write_bytes_member(w, "upstream", f.upstream);
    w.key("reply_code").value(f.code);
    write_bytes_member(w, "enhanced_status", f.status);
    w.key("by_mailtap").value(f.by_mailtap);
    w.key("count").value(f.count);
    w.key("sessions").value(f.sessions).key("meaning").value(explain_reply(f.code, f.status));
    w.end_object();
  }
  w.end_array();
  w.key("outcomes").begin_object();
  for (const auto& [o, n] : r.outcomes) w.key(o).value(n);
  w.end_object();
  w.key("tls").begin_object();
  w.key("versions").begin_array();
  for (const auto& t : r.tls) {
    w.begin_object();
    write_bytes_member(w, "version", t.version);
    write_bytes_member(w, "cipher", t.cipher);
    w.key("sessions").value(t.count).end_object();
  }
  w.end_array();
  w.key("insecure_sessions").begin_array();
  for (auto id : r.insecure) w.value(id);
  w.end_array();
  w.key("verify_failures").begin_array();
  for (const auto& [id, why] : r.verify_failures) {
    w.begin_object().key("session").value(id);
    write_bytes_member(w, "verify_result", why);
    w.end_object();
  }
  w.end_array();
  w.key("certificates").begin_array();
  for (const auto& c : r.certificates) {
    w.begin_object().key("sha256").value(c.sha256);
    write_bytes_member(w, "subject", c.subject);
    write_bytes_member(w, "not_after", c.not_after);
    w.key("state").value(c.state);
    w.key("first_session").value(c.first_session).key("sessions").value(c.sessions).end_object();
  }
  w.end_array();
  w.end_object();
  w.end_object();
  return w.take() + "\n";
}

}  // namespace mailtap::tools
