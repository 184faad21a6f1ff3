// `mailtap audit`: checks a database for damage (PRAGMA integrity_check) and for anything that
// should never be in it (credentials that escaped redaction), and summarises what deserves a
// look: bare-LF rewrites and smuggling-shaped DATA, failures by reply code and upstream, TLS
// versions, --insecure sessions and certificates near or past expiry.
// Exit status: 0 clean, 3 a leak or damage was found, 1 the audit could not run.
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "proxy/session/log.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/event.hpp"
#include "tools/commands.hpp"
#include "tools/credential_scan.hpp"
#include "tools/json_writer.hpp"
#include "tools/record_db.hpp"
#include "tools/reply_codes.hpp"
#include "tools/time_format.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

using storage::Statement;

constexpr int kExitFound = 3;

struct AuditArgs {
  ToolOptions common;
  std::string password_env;
  int expiry_days = 30;
};

struct Leak {
  std::int64_t session = 0;
  std::string where;  // "event 7 bytes", "message 1 body", "sessions.outcome_reason"
  std::string what;
};

struct Smuggle {
  std::int64_t session = 0;
  std::string shapes;
};

struct Rewrite {
  std::int64_t session = 0;
  std::int64_t count = 0;
  std::string sample;
};

struct Failure {
  std::string upstream;
  int code = 0;
  std::string status;
  std::int64_t count = 0;
  std::int64_t sessions = 0;
};

struct TlsLine {
  std::string version, cipher;
  std::int64_t count = 0;
};

struct CertLine {
  std::string sha256, subject, not_after, state;  // state: "expired" | "expires soon"
  std::int64_t first_session = 0, sessions = 0;
};

struct Report {
  std::vector<std::string> integrity;  // "ok" alone when healthy
  std::vector<Leak> leaks;
  std::vector<Rewrite> rewrites;
  std::vector<Smuggle> smuggling;
  std::vector<Failure> failures;
  std::vector<std::pair<std::string, std::int64_t>> outcomes;
  std::vector<TlsLine> tls;
  std::vector<std::int64_t> insecure;
  std::vector<std::pair<std::int64_t, std::string>> verify_failures;
  std::vector<CertLine> certificates;
  std::int64_t sessions = 0;
  bool integrity_ok() const { return integrity.size() == 1 && integrity[0] == "ok"; }
  bool problems() const { return !integrity_ok() || !leaks.empty(); }
};

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
    std::map<std::int64_t, Rewrite> rewrites;
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
      CertLine c{certs.column_text(0), certs.column_text(1), certs.column_text(2), "",
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

std::string render_json(const Report& r) {
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

std::string render_human(const Report& r, const Style& st) {
  std::string out;
  auto heading = [&](const std::string& h) { out += "\n" + st.bold(h) + "\n"; };
  out += st.bold("mailtap audit") + ": " + std::to_string(r.sessions) + " sessions\n";

  heading("Integrity (PRAGMA integrity_check)");
  if (r.integrity_ok())
    out += "  " + st.green("ok") + "\n";
  else
    for (const auto& line : r.integrity) out += "  " + st.red(line) + "\n";

  heading("Credentials in the record");
  if (r.leaks.empty()) out += "  " + st.green("none found") + "\n";
  for (const auto& l : r.leaks)
    out += "  " + st.red("LEAK") + " session " + std::to_string(l.session) + ", " + l.where + ": " +
           l.what + "\n";

  heading("Bare line ends and smuggling-shaped DATA");
  if (r.rewrites.empty() && r.smuggling.empty()) out += "  none\n";
  for (const auto& x : r.rewrites)
    out += "  session " + std::to_string(x.session) + ": " + std::to_string(x.count) +
           " rewrite(s) by mailtap, e.g. " + x.sample + "\n";
  for (const auto& x : r.smuggling)
    out += "  session " + std::to_string(x.session) + ": " +
           st.yellow("client DATA contains smuggling shapes: ") + x.shapes + "\n";

  heading("Outcomes");
  for (const auto& [o, n] : r.outcomes) out += "  " + std::to_string(n) + "  " + o + "\n";

  heading("Failure replies by code and upstream");
  if (r.failures.empty()) out += "  none\n";
  for (const auto& f : r.failures) {
    std::string code = std::to_string(f.code);
    if (!f.status.empty()) code += " " + f.status;
    out += "  " + std::to_string(f.count) + "x  " + code + "  " + f.upstream + "  (" +
           std::to_string(f.sessions) + " session" + (f.sessions == 1 ? "" : "s") + ")  " +
           explain_reply(f.code, f.status) + "\n";
  }

  heading("TLS");
  for (const auto& t : r.tls)
    out += "  " + std::to_string(t.count) + "  " + t.version +
           (t.cipher.empty() ? "" : " " + t.cipher) + "\n";
  if (!r.insecure.empty()) {
    out += "  " + st.yellow("--insecure sessions:");
    for (auto id : r.insecure) out += " " + std::to_string(id);
    out += "\n";
  }
  for (const auto& [id, why] : r.verify_failures)
    out += "  session " + std::to_string(id) + ": " + st.yellow("certificate not verified: ") +
           why + "\n";
  for (const auto& c : r.certificates)
    out += "  certificate " + c.sha256.substr(0, 16) + " " + c.subject + ": " + st.yellow(c.state) +
           " (" + c.not_after + "), seen in " + std::to_string(c.sessions) + " session(s) from " +
           std::to_string(c.first_session) + "\n";
  if (r.insecure.empty() && r.verify_failures.empty() && r.certificates.empty())
    out += "  no --insecure sessions, no verification failures, no certificate near expiry\n";

  out += "\n";
  out += r.problems() ? st.red("PROBLEMS FOUND") + " (exit status 3)\n" : st.green("clean") + "\n";
  return out;
}

int run_audit(const AuditArgs& a) {
  CredentialScanOptions scan;
  if (!a.password_env.empty()) {
    const char* pw = std::getenv(a.password_env.c_str());
    if (pw == nullptr || *pw == '\0') {
      log::error("audit: --password-env: $" + a.password_env + " is not set or empty");
      return 2;
    }
    scan.known_password = pw;
  }
  std::string error;
  const std::string path = a.common.database_path(error);
  if (path.empty()) {
    log::error("audit: no database path: " + error + " (give --db PATH)");
    return 1;
  }
  storage::Database db;
  if (!open_record_db(path, storage::OpenMode::read_only, db, error)) {
    log::error("audit: " + error);
    return 1;
  }
  Report report;
  Auditor auditor(db, std::move(scan));
  if (!auditor.run(report, a.expiry_days, error)) {
    log::error("audit: " + error);
    return 1;
  }
  const std::string out =
      a.common.json ? render_json(report) : render_human(report, a.common.stdout_style());
  if (!write_stdout(out)) return 1;
  return report.problems() ? kExitFound : 0;
}

}  // namespace

cli::Subcommand add_audit_command(CLI::App& parent) {
  auto args = std::make_shared<AuditArgs>();
  CLI::App* app = parent.add_subcommand(
      "audit",
      "Check the database for damage and leaked credentials; summarise failures and TLS "
      "(exit 3 if a leak or damage is found)");
  args->common.add_to(*app);
  args->common.add_color_to(*app);
  app->add_option("--password-env", args->password_env,
                  "name of an environment variable holding a password that must not appear "
                  "anywhere in the record (in clear, base64, or inside a PLAIN blob)");
  app->add_option("--expiry-days", args->expiry_days,
                  "warn about certificates expiring within this many days (default 30)");
  return {app, [args] { return run_audit(*args); }};
}

}  // namespace mailtap::tools
