#include "tools/audit_report.hpp"

#include <map>
#include <set>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/event.hpp"
#include "tools/json_writer.hpp"
#include "tools/record_db.hpp"
#include "tools/reply_codes.hpp"
#include "tools/time_format.hpp"

namespace mailtap::tools {

namespace {

using storage::Statement;
using Report = AuditReport;

class Auditor {
 public:
  Auditor(storage::Database& db, CredentialScanOptions scan) : db_(db), scan_(std::move(scan)) {}

  bool run(Report& r, int expiry_days, std::string& error) {
    return integrity(r, error) && scan_events(r, error) && scan_messages(r, error) &&
           scan_sessions(r, error) && failures(r, error) && tls(r, expiry_days, error);
  }

 private:
  bool prepare(std::string_view sql, Statement& st, std::string& error) {
    if (auto s = db_.prepare(sql, st); !s.ok()) {
      error = s.message;
      return false;
    }
    return true;
  }

  void scan(Report& r, std::int64_t session, const std::string& where, std::string_view bytes) {
    for (auto& f : scan_for_credentials(bytes, scan_))
      r.leaks.push_back({session, where + " at offset " + std::to_string(f.offset), f.what});
  }

  bool integrity(Report& r, std::string& error) {
    Statement st;
    if (!prepare("PRAGMA integrity_check", st, error)) return false;
    while (st.step() == Statement::Step::row) r.integrity.push_back(st.column_text(0));
    if (r.integrity.empty()) r.integrity.push_back("integrity_check returned nothing");
    return true;
  }

  bool scan_events(Report& r, std::string& error) {
    Statement st;
    if (!prepare("SELECT session_id, seq, direction, kind, reply_code, bytes, note, redacted "
                 "FROM events ORDER BY session_id, seq",
                 st, error))
      return false;
    std::int64_t current = -1;
    std::string data;          // the client's DATA/BDAT bytes of the current session
    std::string login_prompt;  // "Username:"/"Password:" after a 334, until the client answers
    std::map<std::int64_t, AuditRewrite> rewrites;
    // Shapes mailtap neutralised as they arrived ("\n.\n at offset 12"), from its rewrite
    // notes; older recordings kept the raw shapes in their DATA bytes, scanned as well.
    std::vector<std::string> noted_shapes;
    auto flush = [&] {
      if (current < 0) return;
      std::set<std::string> distinct;
      for (const auto& s : find_smuggling_shapes(data)) distinct.insert(s.shape);
      std::string text;
      for (const auto& s : noted_shapes) text += (text.empty() ? "" : ", ") + s;
      for (const auto& s : distinct) text += (text.empty() ? "" : ", ") + s;
      if (!text.empty()) r.smuggling.push_back({current, text});
      data.clear();
      noted_shapes.clear();
      login_prompt.clear();
    };
    while (st.step() == Statement::Step::row) {
      const std::int64_t session = st.column_int(0);
      if (session != current) {
        flush();
        current = session;
      }
      const std::int64_t seq = st.column_int(1);
      const std::string direction = st.column_text(2);
      const std::string kind = st.column_text(3);
      const int code = static_cast<int>(st.column_int(4));
      const std::string bytes = st.column_blob(5);
      const std::string note = st.column_text(6);
      const bool redacted = st.column_int(7) != 0;
      const std::string where = "event " + std::to_string(seq);
      scan(r, session, where + " bytes", bytes);
      scan(r, session, where + " note", note);

      const bool from_client =
          direction == "client_to_upstream" || direction == "client_to_mailtap";
      if (from_client && (kind == "data" || kind == "bdat_chunk")) data += bytes;
      if (kind == "rewrite" && note.rfind(smtp::smuggling_shape_note_prefix, 0) == 0) {
        const std::string shape = note.substr(smtp::smuggling_shape_note_prefix.size());
        noted_shapes.push_back(shape.substr(0, shape.find(" of the message")));
      } else if (kind == "rewrite") {
        auto& rw = rewrites[session];
        rw.session = session;
        if (rw.count++ == 0) rw.sample = note;
      }
      // AUTH LOGIN: the answer to a "334 UGFzc3dvcmQ6" (Password:) must be redacted.
      if (code == 334 && !from_client) {
        std::string line = bytes.substr(0, bytes.find_first_of("\r\n"));
        std::string decoded;
        if (line.size() > 4) {
          if (auto d = smtp::base64_decode(line.substr(4))) decoded = *d;
        }
        login_prompt = decoded.empty() ? note : decoded;
      } else if (from_client && kind == "auth") {
        if (!redacted && (login_prompt == "Password:" || login_prompt == "password:")) {
          const std::string line = bytes.substr(0, bytes.find_first_of("\r\n"));
          if (looks_like_base64_text(line))
            r.leaks.push_back({session, where + " bytes",
                               "AUTH LOGIN password response recorded without redaction"});
        }
        login_prompt.clear();
      } else if (from_client) {
        login_prompt.clear();
      }
    }
    flush();
    for (auto& [id, rw] : rewrites) r.rewrites.push_back(rw);
    return true;
  }

  bool scan_messages(Report& r, std::string& error) {
    Statement st;
    if (!prepare("SELECT session_id, seq, id, mail_from, body, final_reply FROM messages "
                 "ORDER BY session_id, seq",
                 st, error))
      return false;
    while (st.step() == Statement::Step::row) {
      const std::int64_t session = st.column_int(0);
      const std::string where = "message " + std::to_string(st.column_int(1));
      scan(r, session, where + " mail_from", st.column_text(3));
      scan(r, session, where + " body", st.column_blob(4));
      scan(r, session, where + " final_reply", st.column_text(5));
    }
    Statement rc;
    if (!prepare("SELECT m.session_id, m.seq, r.position, r.command, r.reply FROM recipients r "
                 "JOIN messages m ON m.id = r.message_id ORDER BY m.session_id, m.seq",
                 rc, error))
      return false;
    while (rc.step() == Statement::Step::row) {
      const std::string where = "message " + std::to_string(rc.column_int(1)) + " recipient " +
                                std::to_string(rc.column_int(2));
      scan(r, rc.column_int(0), where + " command", rc.column_text(3));
      scan(r, rc.column_int(0), where + " reply", rc.column_text(4));
    }
    return true;
  }

  bool scan_sessions(Report& r, std::string& error) {
    static constexpr const char* kColumns[] = {
        "client_address", "listen_address", "upstream_host", "resolved_address",
        "tls_mode",       "ehlo_name",      "sni",           "verified_name",
        "verify_result",  "outcome_reason", "auth_user"};
    std::string sql = "SELECT id";
    for (const char* c : kColumns) sql += std::string(", ") + c;
    sql += " FROM sessions ORDER BY id";
    Statement st;
    if (!prepare(sql, st, error)) return false;
    while (st.step() == Statement::Step::row) {
      ++r.sessions;
      for (int i = 0; i < static_cast<int>(std::size(kColumns)); ++i)
        scan(r, st.column_int(0), std::string("sessions.") + kColumns[i], st.column_text(i + 1));
    }
    return true;
  }

  bool failures(Report& r, std::string& error) {
    Statement st;
    if (!prepare("SELECT s.upstream_host, e.reply_code, coalesce(e.enhanced_status, ''), "
                 "count(*), count(DISTINCT e.session_id) FROM events e "
                 "JOIN sessions s ON s.id = e.session_id WHERE e.reply_code >= 400 AND "
                 "e.direction IN ('upstream_to_client', 'upstream_to_mailtap', "
                 "'mailtap_to_client') GROUP BY 1, 2, 3 ORDER BY 4 DESC, 2",
                 st, error))
      return false;
    while (st.step() == Statement::Step::row)
      r.failures.push_back({st.column_text(0), static_cast<int>(st.column_int(1)),
                            st.column_text(2), st.column_int(3), st.column_int(4)});
    Statement oc;
    if (!prepare("SELECT coalesce(outcome, 'in_progress'), count(*) FROM sessions "
                 "GROUP BY 1 ORDER BY 2 DESC",
                 oc, error))
      return false;
    while (oc.step() == Statement::Step::row)
      r.outcomes.emplace_back(oc.column_text(0), oc.column_int(1));
    return true;
  }

  bool tls(Report& r, int expiry_days, std::string& error) {
    Statement st;
    if (!prepare("SELECT coalesce(tls_version, 'none'), coalesce(cipher, ''), count(*) "
                 "FROM sessions GROUP BY 1, 2 ORDER BY 3 DESC",
                 st, error))
      return false;
    while (st.step() == Statement::Step::row)
      r.tls.push_back({st.column_text(0), st.column_text(1), st.column_int(2)});
    Statement ins;
    if (!prepare("SELECT id FROM sessions WHERE insecure = 1 ORDER BY id", ins, error))
      return false;
    while (ins.step() == Statement::Step::row) r.insecure.push_back(ins.column_int(0));
    Statement vf;
    if (!prepare("SELECT id, verify_result FROM sessions WHERE verify_result IS NOT NULL AND "
                 "verify_result NOT IN ('ok', 'skipped (--insecure)') ORDER BY id",
                 vf, error))
      return false;
    while (vf.step() == Statement::Step::row)
      r.verify_failures.emplace_back(vf.column_int(0), vf.column_text(1));
    Statement certs;
    if (!prepare("SELECT sha256, coalesce(subject, ''), coalesce(not_after, ''), "
                 "min(session_id), count(DISTINCT session_id) FROM certificates "
                 "GROUP BY sha256 ORDER BY 3",
                 certs, error))
      return false;
    const auto now = Clock::now();
    const auto soon = now + std::chrono::hours(24) * expiry_days;
    while (certs.step() == Statement::Step::row) {
      AuditCertLine c{certs.column_text(0), certs.column_text(1), certs.column_text(2), "",
                      certs.column_int(3),  certs.column_int(4)};
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

  storage::Database& db_;
  CredentialScanOptions scan_;
};

}  // namespace

bool build_audit_report(const std::string& path, CredentialScanOptions scan, int expiry_days,
                        AuditReport& out, std::string& error) {
  storage::Database db;
  if (!open_record_db(path, storage::OpenMode::read_only, db, error)) return false;
  Auditor auditor(db, std::move(scan));
  return auditor.run(out, expiry_days, error);
}

std::string audit_report_json(const AuditReport& r) {
  JsonWriter w;
  w.begin_object();
  w.key("ok").value(!r.problems());
  w.key("sessions").value(r.sessions);
  w.key("integrity").begin_array();
  for (const auto& line : r.integrity) w.value(line);
  w.end_array();
  w.key("credential_leaks").begin_array();
  for (const auto& l : r.leaks)
    w.begin_object()
        .key("session")
        .value(l.session)
        .key("where")
        .value(l.where)
        .key("what")
        .value(l.what)
        .end_object();
  w.end_array();
  w.key("rewrites").begin_array();
  for (const auto& x : r.rewrites)
    w.begin_object()
        .key("session")
        .value(x.session)
        .key("count")
        .value(x.count)
        .key("sample")
        .value(x.sample)
        .end_object();
  w.end_array();
  w.key("smuggling_shapes").begin_array();
  for (const auto& x : r.smuggling)
    w.begin_object().key("session").value(x.session).key("shapes").value(x.shapes).end_object();
  w.end_array();
  w.key("failures").begin_array();
  for (const auto& f : r.failures) {
    w.begin_object().key("upstream").value(f.upstream).key("reply_code").value(f.code);
    w.key("enhanced_status").value(f.status).key("count").value(f.count);
    w.key("sessions").value(f.sessions).key("meaning").value(explain_reply(f.code, f.status));
    w.end_object();
  }
  w.end_array();
  w.key("outcomes").begin_object();
  for (const auto& [o, n] : r.outcomes) w.key(o).value(n);
  w.end_object();
  w.key("tls").begin_object();
  w.key("versions").begin_array();
  for (const auto& t : r.tls)
    w.begin_object()
        .key("version")
        .value(t.version)
        .key("cipher")
        .value(t.cipher)
        .key("sessions")
        .value(t.count)
        .end_object();
  w.end_array();
  w.key("insecure_sessions").begin_array();
  for (auto id : r.insecure) w.value(id);
  w.end_array();
  w.key("verify_failures").begin_array();
  for (const auto& [id, why] : r.verify_failures)
    w.begin_object().key("session").value(id).key("verify_result").value(why).end_object();
  w.end_array();
  w.key("certificates").begin_array();
  for (const auto& c : r.certificates) {
    w.begin_object().key("sha256").value(c.sha256).key("subject").value(c.subject);
    w.key("not_after").value(c.not_after).key("state").value(c.state);
    w.key("first_session").value(c.first_session).key("sessions").value(c.sessions).end_object();
  }
  w.end_array();
  w.end_object();
  w.end_object();
  return w.take() + "\n";
}

}  // namespace mailtap::tools
